import numpy as np
import pytest
import torch

from segkit.io import read_image
from segkit.train.augment import Augmenter, Brightness, Contrast, Gamma, GaussianBlur, GaussianNoise, LowResolution
from segkit.train.config import AugmentConfig


@pytest.fixture(scope="module")
def batch(hippocampus_dir):
    img = np.asarray(read_image(hippocampus_dir / "imagesTr" / "hippocampus_003_0000.nii.gz").array, np.float32)
    seg = np.asarray(read_image(hippocampus_dir / "labelsTr" / "hippocampus_003.nii.gz").array, np.int64)
    img = (img - img.mean()) / img.std()
    def batch(array):
        return torch.from_numpy(array)[None, None].repeat(2, 1, 1, 1, 1)
    return batch(img), batch(seg)


TRANSFORMS = [GaussianNoise(p=1.0), GaussianBlur(p=1.0, p_per_channel=1.0), Brightness(p=1.0), Contrast(p=1.0),
              LowResolution(p=1.0, p_per_channel=1.0), Gamma(p=1.0), Gamma(p=1.0, invert=True)]


@pytest.mark.parametrize("transform", TRANSFORMS, ids=lambda t: type(t).__name__)
def test_intensity_transforms_change_image_deterministically(batch, transform):
    image, _ = batch
    params = transform.sample(2, 1, torch.Generator().manual_seed(3))
    out = transform.apply(image, params)
    assert out.shape == image.shape and torch.isfinite(out).all()
    assert not torch.allclose(out, image)
    assert torch.equal(out, transform.apply(image, params))


def test_gamma_keeps_mean_and_std(batch):
    image, _ = batch
    out = Gamma(p=1.0).apply(image, Gamma(p=1.0).sample(2, 1, torch.Generator().manual_seed(0)))
    assert float(out.mean()) == pytest.approx(float(image.mean()), abs=1e-3)
    assert float(out.std()) == pytest.approx(float(image.std()), rel=1e-3)


def test_low_resolution_ignores_the_coarse_axis(batch):
    image, _ = batch
    t = LowResolution(p=1.0, p_per_channel=1.0, ignore_axes=(0, 1))
    out = t.apply(image, {"chosen": torch.ones(2, 1, dtype=torch.bool), "scale": torch.full((2, 1), 0.5)})
    # only axis 2 is resampled: rows along axis 2 change, but every (i, j) line is still a function of itself
    assert not torch.allclose(out, image)
    assert torch.allclose(out[0, 0, 5, 5], torch.nn.functional.interpolate(
        image[0, 0, 5, 5][None, None, ::2], size=image.shape[-1], mode="linear")[0, 0], atol=0.5)


def test_full_pipeline_keeps_labels_aligned(batch):
    image, seg = batch
    encoded = torch.cat([(seg == c).float() for c in range(3)], 1)
    config = AugmentConfig(p_rotation=1.0, p_scaling=1.0, p_noise=0, p_blur=0, p_brightness=0, p_contrast=0,
                           p_lowres=0, p_gamma_inverted=0, p_gamma=0)
    aug = Augmenter.build(config, (24, 32, 24), (1.0, 1.0, 1.0))
    out_image, out_seg = aug(encoded, seg, torch.Generator().manual_seed(5))
    assert out_image.shape == (2, 3, 24, 32, 24) and out_seg.shape == (2, 1, 24, 32, 24)
    assert float((out_image.argmax(1, keepdim=True) == out_seg).float().mean()) > 0.99
    again = aug(encoded, seg, torch.Generator().manual_seed(5))
    assert torch.equal(again[1], out_seg)


def test_default_pipeline_runs_and_keeps_label_values(batch):
    image, seg = batch
    aug = Augmenter.build(AugmentConfig(), (24, 32, 24), (1.0, 1.0, 5.0))
    assert aug.spatial.rotation_axes == (2,) and aug.intensity[4].ignore_axes == (2,)
    out_image, out_seg = aug(image, seg, torch.Generator().manual_seed(1))
    assert set(out_seg.unique().tolist()) <= {0, 1, 2} and torch.isfinite(out_image).all()
