"""2D models (nnU-Net's ``2d`` configuration) predict a volume slice by slice, on real hippocampus scans."""

import numpy as np
import pytest
import torch

from segkit.infer import PredictOptions, Predictor
from segkit.infer.sliding_window import WindowOptions, predict_sliding_window
from segkit.infer.tiling import shift_offsets, shifted_pad_amounts, tile_starts
from segkit.io import read_image

from .conftest import write_small_model_folder

HALF = {"rtol": 2e-3, "atol": 2e-3}


@pytest.mark.parametrize(("slice_axis", "tta", "shift"), [(2, True, 0), (0, False, 3)])
def test_2d_model_predicts_each_slice_like_a_2d_sliding_window(hippocampus_dir, tmp_path, slice_axis, tta, shift):
    """Each slice as a 2D image, with the model's mirroring and translation TTA in the plane only."""
    labels = {"background": 0, "Anterior": 1, "Posterior": 2}
    folder = write_small_model_folder(tmp_path / "model", configuration="2d", patch_size=[24, 32], labels=labels,
                                      slice_axis=slice_axis)
    predictor = Predictor.from_model_folder(folder, options=PredictOptions(tta=tta, shift_tta=shift, precision="fp32"))
    scan = read_image(hippocampus_dir / "imagesTr" / "hippocampus_001_0000.nii.gz")
    image = scan.crop(tuple(slice(12, 18) if axis == slice_axis else slice(None) for axis in range(3)))  # 6 slices
    logits, case = predictor.predict_logits(image)
    assert logits.shape[1:] == case.data.shape[1:] == image.spatial_shape  # 1 mm scans: no resampling

    network_2d = predictor.networks[0].network
    window = WindowOptions(tile_size=(24, 32), mirror_axes=(0, 1) if tta else (), shift=shift, batch_size=1)
    slices = [predict_sliding_window(network_2d, case.data.select(1 + slice_axis, s), window, num_classes=3)
              for s in range(case.data.shape[1 + slice_axis])]
    expected = torch.stack(slices, 1 + slice_axis)
    torch.testing.assert_close(logits, expected, **HALF)
    plane = np.delete(case.data.shape[1:], slice_axis)
    tiles = sum(len(tile_starts([n + sum(pad) for n, pad in zip(plane, shifted_pad_amounts(plane, (24, 32), offset),
                                                                 strict=True)], (24, 32), 0.5))
                for offset in shift_offsets(shift, (24, 32)))
    passes = len(slices) * tiles * (4 if tta else 1)
    assert predictor.clock.calls == passes  # each slice once, each tile once per flip (batch 1 on the CPU)

    labels = predictor.predict(image)
    assert labels.spatial_shape == image.spatial_shape and np.allclose(labels.affine, image.affine)
    assert set(np.unique(labels.array)) <= {0, 1, 2}
