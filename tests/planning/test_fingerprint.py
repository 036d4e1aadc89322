"""Fingerprints of the real datasets against values computed here independently, and nnU-Net's."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from segkit.planning.fingerprint import Fingerprint, fingerprint_case


def _foreground_values(case) -> np.ndarray:
    image = np.asanyarray(nib.load(case.image_files[0]).dataobj)
    label = np.asanyarray(nib.load(case.label_file).dataobj)
    return image[label > 0].astype(np.float64)


def test_hippocampus_intensities_match_independent_numbers(hippocampus, hippocampus_fingerprint):
    values = np.concatenate([_foreground_values(c) for c in hippocampus.training])
    props = hippocampus_fingerprint.intensity_properties[0]
    assert props["mean"] == pytest.approx(values.mean(), rel=1e-9)
    assert props["std"] == pytest.approx(values.std(), rel=1e-9)
    assert props["min"] == values.min() and props["max"] == values.max()
    low, median, high = np.percentile(values, (0.5, 50, 99.5))
    # every foreground voxel fits the sample budget here, so percentiles are exact (float32 samples)
    assert props["median"] == pytest.approx(median, rel=1e-6)
    assert props["percentile_00_5"] == pytest.approx(low, rel=1e-6)
    assert props["percentile_99_5"] == pytest.approx(high, rel=1e-6)


def test_hippocampus_intensities_close_to_nnunet(hippocampus_fingerprint, hippocampus_reference_fingerprint):
    ours = hippocampus_fingerprint.intensity_properties[0]
    theirs = hippocampus_reference_fingerprint["foreground_intensity_properties_per_channel"]["0"]
    # nnU-Net samples the same number of voxels per case (cases weigh equally); we use every voxel
    assert ours["min"] == theirs["min"] and ours["max"] == theirs["max"]
    for key, rel in (
        ("mean", 0.03),
        ("std", 0.03),
        ("median", 0.01),
        ("percentile_00_5", 0.01),
        ("percentile_99_5", 0.01),
    ):
        assert ours[key] == pytest.approx(theirs[key], rel=rel), key


def test_hippocampus_geometry_equals_nnunet_reversed(hippocampus_fingerprint, hippocampus_reference_fingerprint):
    theirs = hippocampus_reference_fingerprint
    assert [list(s) for s in hippocampus_fingerprint.shapes_after_crop] == [
        s[::-1] for s in theirs["shapes_after_crop"]
    ]
    assert np.allclose(hippocampus_fingerprint.spacings, [s[::-1] for s in theirs["spacings"]])
    assert hippocampus_fingerprint.median_relative_size_after_cropping == theirs["median_relative_size_after_cropping"]
    assert hippocampus_fingerprint.median_shape_after_crop == (35.0, 50.0, 36.0)


def test_hippocampus_class_counts(hippocampus, hippocampus_fingerprint):
    counts = np.zeros(3, np.int64)
    for case in hippocampus.training[:]:
        counts += np.bincount(np.asanyarray(nib.load(case.label_file).dataobj).astype(np.int64).ravel(), minlength=3)
    assert hippocampus_fingerprint.class_voxel_counts == {0: counts[0], 1: counts[1], 2: counts[2]}


def test_ct_fingerprint(ct_dataset, ct_fingerprint, totalseg_reference):
    theirs = totalseg_reference["dataset_fingerprint"]
    assert [list(s) for s in ct_fingerprint.shapes_after_crop] == [s[::-1] for s in theirs["shapes_after_crop"]]
    assert np.allclose(ct_fingerprint.spacings, [s[::-1] for s in theirs["spacings"]])
    values = np.concatenate([_foreground_values(c) for c in ct_dataset.training])
    ours = ct_fingerprint.intensity_properties[0]
    assert ours["mean"] == pytest.approx(values.mean(), rel=1e-9)
    assert ours["percentile_00_5"] == pytest.approx(np.percentile(values, 0.5))
    assert (ours["min"], ours["max"]) == (
        theirs["foreground_intensity_properties_per_channel"]["0"]["min"],
        theirs["foreground_intensity_properties_per_channel"]["0"]["max"],
    )
    # most of TotalSegmentator's 117 labels are absent from these two scans, and counted as 0
    assert sum(ct_fingerprint.class_voxel_counts.values()) == sum(np.prod(s) for s in ct_fingerprint.shapes)


def test_json_round_trip(tmp_path, hippocampus_fingerprint):
    path = tmp_path / "fingerprint.json"
    hippocampus_fingerprint.save(path)
    assert Fingerprint.load(path) == hippocampus_fingerprint


def test_sample_limit_subsamples_without_changing_moments(hippocampus):
    case = hippocampus.training[0]
    full = fingerprint_case(case)
    small = fingerprint_case(case, sample_limit=100)
    assert small.samples[0].size == 100 and full.samples[0].size == full.moments[0].count
    assert small.moments == full.moments
