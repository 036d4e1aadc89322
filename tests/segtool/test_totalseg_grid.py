"""TotalSegmentator-style resampling: scan to the model grid and labels back, exactly onto the input grid."""

import numpy as np

from segkit.io import read_image
from segtool.totalseg_grid import labels_to_scan, to_model_grid


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2 * (a & b).sum() / (a.sum() + b.sum())


def test_dicom_series_to_3mm_and_labels_back(ct_dir):
    scan = read_image(ct_dir / "example_ct_dicom")
    truth = read_image(ct_dir / "example_seg_dicom.nii.gz")
    assert truth.same_grid(scan, tolerance=1e-3) and scan.axis_codes != ("R", "A", "S")

    canonical, resampled = to_model_grid(scan, 3.0)
    assert canonical.axis_codes == ("R", "A", "S") and resampled.array.dtype == np.int32
    np.testing.assert_allclose(resampled.spacing, (3.0, 3.0, 3.0), atol=1e-9)
    expected = np.round(np.multiply(canonical.spatial_shape, canonical.spacing) / 3.0).astype(int)
    assert resampled.spatial_shape == tuple(expected)
    np.testing.assert_allclose(resampled.origin, canonical.origin, atol=1e-6)  # corner-aligned: first voxel kept
    assert abs(resampled.array.mean() - canonical.array.mean()) < 5  # linear interpolation keeps the HU level

    # the reference labels taken to the model grid (nearest voxel, corner-aligned) come back onto the scan
    codes = truth.to_canonical().array
    index = [np.round(np.linspace(0, n - 1, m)).astype(int)
             for n, m in zip(codes.shape, resampled.spatial_shape, strict=True)]
    back = labels_to_scan(codes[np.ix_(*index)], canonical, scan)
    assert back.shape == scan.spatial_shape
    big = [v for v in np.unique(truth.array)[1:] if (truth.array == v).sum() > 2000]
    assert len(big) >= 5
    for value in big:
        assert dice(back == value, truth.array == value) > 0.8, value

    # labels already on the canonical grid are only re-laid into the scan's orientation
    assert np.array_equal(labels_to_scan(codes, canonical, scan), truth.array)


def test_a_spacing_per_axis_is_one_per_axis_of_the_canonical_scan(ct_dir):
    # TotalSegmentator's sub-tasks give their resampling per axis of the RAS scan (lung vessels: 0.703 x 0.703 x 1)
    scan = read_image(ct_dir / "example_ct_dicom")  # LAS: its first axis runs the other way in RAS
    canonical, resampled = to_model_grid(scan, (1.5, 2.0, 4.0))
    np.testing.assert_allclose(resampled.spacing, (1.5, 2.0, 4.0), atol=1e-9)
    extent = np.multiply(canonical.spatial_shape, canonical.spacing)
    assert resampled.spatial_shape == tuple(np.round(extent / (1.5, 2.0, 4.0)).astype(int))
    np.testing.assert_allclose(resampled.origin, canonical.origin, atol=1e-6)
    assert resampled.axis_codes == ("R", "A", "S")
    labels = (resampled.array > 0).astype(np.uint8)
    assert labels_to_scan(labels, canonical, scan).shape == scan.spatial_shape
    isotropic = to_model_grid(scan, 3.0)[1]
    assert np.array_equal(to_model_grid(scan, (3.0, 3.0, 3.0))[1].array, isotropic.array)


def test_scan_at_model_spacing_is_used_as_it_is(ct_dir):
    scan = read_image(ct_dir / "example_ct.nii.gz")
    canonical, resampled = to_model_grid(scan, 3.0)
    assert resampled is canonical and np.array_equal(canonical.array, scan.to_canonical().array)


def test_a_float_scan_keeps_its_fractional_intensities(ct_dir):
    scan = read_image(ct_dir / "example_mr_sm.nii.gz")  # 3 mm MR, int16
    scaled = scan.with_array(scan.array / np.float32(scan.array.max()))  # as an MR stored in [0, 1]
    _, resampled = to_model_grid(scaled, 6.0)
    _, resampled_int = to_model_grid(scan, 6.0)
    assert resampled_int.array.dtype == np.int32 and resampled.array.dtype == np.float32
    assert 0 < resampled.array.max() <= 1 and resampled.array.mean() > 0.01
    np.testing.assert_allclose(resampled.array * scan.array.max(), resampled_int.array, atol=1.001)  # int32 truncates


def test_resampling_order_is_the_spline_order_of_totalsegmentators_zoom(ct_dir):
    scan = read_image(ct_dir / "example_ct_dicom")  # 0.68 mm pixels, 3 mm slices: a 4.4x zoom out in-plane
    values = np.unique(scan.array)
    nearest, linear, cubic = (to_model_grid(scan, 3.0, order)[1].array for order in (0, 1, 3))
    assert nearest.shape == linear.shape == cubic.shape
    assert np.isin(nearest, values).all()  # order 0 picks voxels: no new intensities
    assert not np.isin(linear, values).all() and values[0] <= linear.min() and linear.max() <= values[-1]
    assert cubic.min() < values[0] or cubic.max() > values[-1]  # a cubic spline overshoots at air/bone edges
    assert abs(cubic.mean() - linear.mean()) < 2 and abs(nearest.mean() - linear.mean()) < 10
