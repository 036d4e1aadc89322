import math

import numpy as np
import pytest
import torch

from segkit.io import read_image
from segkit.train.augment import Mirror, SpatialTransform, center_crop, initial_patch_size


@pytest.fixture(scope="module")
def case(hippocampus_dir):
    """A real label map (1, 1, i, j, k) and an image that encodes it: channel c = (label == c)."""
    seg = np.asarray(read_image(hippocampus_dir / "labelsTr" / "hippocampus_003.nii.gz").array, dtype=np.int64)
    seg = torch.from_numpy(seg)[None, None]
    image = torch.cat([(seg == c).float() for c in range(3)], 1)
    return image, seg


def agreement(image, seg):
    """Fraction of voxels where the transformed label equals the argmax of the transformed encoding image."""
    return float((image.argmax(1, keepdim=True) == seg).float().mean())


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_rotation_and_scaling_keep_image_and_labels_aligned(case, seed):
    image, seg = case
    t = SpatialTransform((24, 32, 24), p_rotation=1.0, p_scaling=1.0)
    params = t.sample(1, torch.Generator().manual_seed(seed))
    assert bool(params["apply"][0]) and not torch.allclose(params["matrices"][0], torch.eye(3, dtype=torch.float64))
    new_image, new_seg = t.apply(image, seg, params)
    assert new_image.shape == (1, 3, 24, 32, 24) and new_seg.shape == (1, 1, 24, 32, 24)
    assert agreement(new_image, new_seg) > 0.99
    assert (new_seg > 0).any()


def test_identity_is_a_centre_crop(case):
    image, seg = case
    t = SpatialTransform((24, 32, 24), p_rotation=0.0, p_scaling=0.0)
    params = t.sample(1, torch.Generator().manual_seed(0))
    params = {"apply": torch.tensor([True]), "matrices": torch.eye(3, dtype=torch.float64)[None]}
    new_image, new_seg = t.apply(image, seg, params)
    assert torch.allclose(new_image, center_crop(image, (24, 32, 24)), atol=1e-5)
    assert torch.equal(new_seg, center_crop(seg, (24, 32, 24)))


def test_rotation_by_90_degrees_matches_rot90(case):
    image, seg = case
    size = (32, 32, 32)
    crop_img = center_crop(torch.nn.functional.pad(image, (0, 0, 0, 0, 0, 0)), size)
    t = SpatialTransform(size)
    from segkit.train.augment.spatial import rotation_matrix
    m = rotation_matrix((0.0, 0.0, math.pi / 2))[None]
    new_image, new_seg = t.apply(crop_img, center_crop(seg, size), {"apply": torch.tensor([True]), "matrices": m})
    expected = torch.rot90(center_crop(seg, size), 1, dims=(2, 3))
    same = (new_seg == expected).float().mean()
    same_t = (new_seg == torch.rot90(center_crop(seg, size), -1, dims=(2, 3))).float().mean()
    assert max(float(same), float(same_t)) > 0.999
    assert agreement(new_image, new_seg) > 0.999


def test_mirror_flips_both(case):
    image, seg = case
    m = Mirror((0, 1, 2))
    params = {"flips": torch.tensor([[True, False, True]])}
    new_image, new_seg = m.apply(image, seg, params)
    assert torch.equal(new_seg, seg.flip([2, 4])) and torch.equal(new_image, image.flip([2, 4]))
    assert agreement(new_image, new_seg) == 1.0


def test_initial_patch_size_grows_with_rotation():
    assert initial_patch_size((40, 56, 40), 0.0, (0, 1, 2)) == tuple(math.ceil(v / 0.85) for v in (40, 56, 40))
    big = initial_patch_size((40, 56, 40), math.pi / 6, (0, 1, 2))
    assert all(b > s for b, s in zip(big, (40, 56, 40), strict=False))
    in_plane = initial_patch_size((10, 56, 40), math.pi / 6, (0,))
    assert in_plane[0] == math.ceil(10 / 0.85)


def test_label_values_are_uniques_sorted_values(case):
    from segkit.train.augment.spatial import label_values

    _, seg = case
    outside = torch.where(seg[..., :10] == 0, -1, seg[..., :10])  # nnU-Net's -1 outside the nonzero mask
    for labels in (seg, outside, seg[..., :2] * 0 + 2):
        assert torch.equal(label_values(labels), torch.unique(labels))
