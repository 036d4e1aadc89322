"""Torch resampling: round trips on real labels, separate-z handling, no label bleeding."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
import torch
from scipy.ndimage import zoom

from segkit.planning.errors import PreprocessingError
from segkit.planning.interpolation import interpolation_matrix, resize_axis
from segkit.planning.resampling import resample_image, resample_labels, resample_logits, separate_z_axis


def _dice(a: np.ndarray, b: np.ndarray, value: int) -> float:
    x, y = a == value, b == value
    return 2 * np.logical_and(x, y).sum() / (x.sum() + y.sum())


def test_hippocampus_labels_survive_resample_and_back(hippocampus):
    for case in hippocampus.training[:5]:
        labels = np.asanyarray(nib.load(case.label_file).dataobj).astype(np.int16)
        fine = resample_labels(labels, from_spacing=(1, 1, 1), to_spacing=(0.6, 0.7, 0.5))
        back = resample_labels(fine, to_shape=labels.shape).numpy()
        assert back.shape == labels.shape and back.dtype == np.int16
        for value in (1, 2):
            assert _dice(back, labels, value) > 0.99


def test_anisotropic_ct_labels_survive_resample_and_back(ct_dir):
    labels = np.asanyarray(nib.load(ct_dir / "example_seg.nii.gz").dataobj).astype(np.int16)
    spacing = (1.0, 1.0, 5.0)  # treat the 3 mm scan as thick-sliced so separate-z handling is used
    assert separate_z_axis(spacing, (0.5, 0.5, 2.5)) == 2
    fine = resample_labels(labels, from_spacing=spacing, to_spacing=(0.5, 0.5, 2.5))
    back = resample_labels(fine, to_shape=labels.shape, from_spacing=(0.5, 0.5, 2.5), to_spacing=spacing).numpy()
    present = [v for v in np.unique(labels) if v > 0 and (labels == v).sum() > 500]
    assert len(present) > 5
    assert min(_dice(back, labels, v) for v in present) > 0.99


def test_no_label_bleeding():
    labels = np.zeros((8, 8, 8), np.int16)
    labels[4:] = 2
    out = resample_labels(labels, to_shape=(13, 11, 9)).numpy()
    assert set(np.unique(out)) == {0, 2}  # linear interpolation of values would create 1s
    assert set(np.unique(resample_labels(labels, to_shape=(3, 3, 3), order=0).numpy())) <= {0, 2}


def test_separate_z_is_nearest_along_coarse_axis():
    rng = np.random.default_rng(0)
    image = rng.random((1, 16, 16, 6)).astype(np.float32)
    out = resample_image(image, from_spacing=(1, 1, 5), to_spacing=(0.5, 0.5, 2.5)).numpy()
    assert out.shape == (1, 32, 32, 12)
    for k in range(12):  # every output slice is an in-plane resampled input slice
        in_plane = resample_image(image[..., k // 2 : k // 2 + 1], to_shape=(32, 32, 1)).numpy()
        assert np.allclose(out[..., k], in_plane[..., 0], atol=1e-6)


def test_cubic_round_trip_of_smooth_image_and_range_clip():
    i, j, k = np.meshgrid(*(np.linspace(0, np.pi, n) for n in (20, 24, 16)), indexing="ij")
    image = (np.sin(i) * np.cos(j) + k)[None].astype(np.float32)
    up = resample_image(image, from_spacing=(1, 1, 1), to_spacing=(0.5, 0.5, 0.5))
    back = resample_image(up, to_shape=image.shape[1:]).numpy()
    assert np.abs(back - image)[:, 2:-2, 2:-2, 2:-2].max() < 0.02
    assert up.min() >= image.min() and up.max() <= image.max()
    constant = resample_image(np.full((2, 5, 6, 7), 3.0), to_shape=(9, 4, 11))
    assert torch.allclose(constant, torch.tensor(3.0))


def test_cubic_is_nnunets_bspline_resize_on_real_ct(ct_dir):
    # nnU-Net resizes images with skimage's resize(order=3, mode="edge", anti_aliasing=False),
    # which is scipy's zoom with a cubic B-spline, clipped to the input's value range
    image = np.asanyarray(nib.load(ct_dir / "example_ct.nii.gz").dataobj)[:60, :50, :40].astype(np.float64)
    shape = (90, 31, 55)
    expected = zoom(image, np.divide(shape, image.shape), order=3, mode="nearest", grid_mode=True)
    expected = expected.clip(image.min(), image.max())
    ours = resample_image(image[None].astype(np.float32), to_shape=shape, separate_z=False).numpy()[0]
    assert np.abs(ours - expected).max() < 0.01  # HU; float32 against float64
    # separate z: each slice resized and clipped to its own range, then nearest along z
    out = resample_image(image[None].astype(np.float32), to_shape=(90, 31, 80), from_spacing=(1, 1, 5)).numpy()[0]
    for k in (0, 17, 79):
        plane = image[..., k // 2]
        slice_expected = zoom(plane, np.divide((90, 31), plane.shape), order=3, mode="nearest", grid_mode=True)
        assert np.abs(out[..., k] - slice_expected.clip(plane.min(), plane.max())).max() < 0.01


def test_logits_linear_and_same_grid_copy():
    logits = torch.randn(3, 6, 6, 6)
    same = resample_logits(logits, to_shape=(6, 6, 6))
    assert torch.equal(same, logits)
    out = resample_logits(logits, to_shape=(12, 9, 3), device="cpu")
    assert out.shape == (3, 12, 9, 3) and out.dtype == torch.float32


def test_interpolation_matrix_rows_sum_to_one():
    for order in (0, 1, 3):
        matrix = interpolation_matrix(7, 19, order=order)
        assert torch.allclose(matrix.sum(1), torch.ones(19))
    x = torch.arange(12.0).view(3, 4)
    assert torch.allclose(resize_axis(x, 0, 6, order=1), resize_axis(x.T.contiguous(), 1, 6, order=1).T)


def test_bad_targets_are_errors():
    with pytest.raises(PreprocessingError, match="to_shape"):
        resample_image(np.zeros((1, 2, 2, 2)))
    with pytest.raises(PreprocessingError, match="cannot resample"):
        resample_labels(np.zeros((2, 2, 2), np.int16), to_shape=(0, 2, 2))
    with pytest.raises(PreprocessingError, match="order 0 or 1"):
        resample_labels(np.zeros((4, 4, 4), np.int16), to_shape=(5, 5, 5), order=3)


def test_fused_linear_path_equals_separable_taps():
    # order 1 runs through torch's fused (tri/bi)linear kernel; it must sample where the taps do
    from segkit.planning.interpolation import resize_axis

    x = torch.randn(3, 17, 23, 9, generator=torch.Generator().manual_seed(0))
    for shape, z_axis in (((40, 11, 9), None), ((40, 46, 20), 2), ((30, 46, 4), 2), ((30, 46, 9), 0)):
        expected = x
        for axis in range(3):
            expected = resize_axis(expected, axis + 1, shape[axis], order=0 if axis == z_axis else 1)
        spacing = [1.0, 1.0, 1.0]
        if z_axis is not None:
            spacing[z_axis] = 5.0
        out = resample_logits(x, to_shape=shape, from_spacing=spacing, to_spacing=spacing)
        assert torch.allclose(out, expected, atol=1e-5), shape
