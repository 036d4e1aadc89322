"""Per-class statistics against TotalSegmentator's on the same segmentation."""

import numpy as np
import pytest

from segkit.io import read_image
from segtool.errors import SegtoolError
from segtool.registry import load_registry
from segtool.statistics import BORDER_VOXELS, EXTRA_METRICS, StatisticsOptions, class_statistics

#: The classes that TotalSegmentator 2.18's statistics measure on its own `--fast` segmentation of example_ct
#: (`get_basic_statistics`); it reports the 23 other classes found there as 0 because they reach the scan's edges.
TOTALSEG_MEASURED = {
    "adrenal_gland_left", "aorta", "gluteus_maximus_left", "iliac_vena_left",
    "iliac_vena_right", "kidney_left", "rib_right_5", "rib_right_9",
    "subclavian_artery_left", "subclavian_artery_right", "thyroid_gland", "vertebrae_L5",
    "vertebrae_T9",
}


def test_statistics_match_totalsegmentator_and_skip_cut_off_classes(ct_dir, nnunet_reference_dir):
    labels = read_image(nnunet_reference_dir / "predictions" / "totalseg_fast_example_ct.nii.gz").array
    scan = read_image(ct_dir / "example_ct.nii.gz")
    names = load_registry().task("total").labels
    stats = class_statistics(labels, names, scan.array, scan.spacing)
    assert set(stats) == set(names.values())
    assert {name for name, s in stats.items() if s["volume"] > 0} == TOTALSEG_MEASURED
    # TotalSegmentator's numbers for two of them
    assert stats["aorta"] == {"volume": 54.0, "intensity": -47.5}
    assert stats["kidney_left"] == {"volume": 324.0, "intensity": 1334.16667}

    everything = class_statistics(labels, names, scan.array, scan.spacing, StatisticsOptions(include_incomplete=True))
    present = {names[v] for v in np.unique(labels) if v}
    assert {name for name, s in everything.items() if s["volume"] > 0} == present and len(present) == 36
    cord = labels == next(v for v, n in names.items() if n == "spinal_cord")
    ends = cord[:, :, :BORDER_VOXELS].any() and cord[:, :, -BORDER_VOXELS:].any()
    assert stats["spinal_cord"] == {"volume": 0.0, "intensity": 0.0} and ends  # it runs through the whole scan
    assert everything["spinal_cord"]["volume"] == cord.sum() * np.prod(scan.spacing)
    assert everything["spinal_cord"]["intensity"] == round(float(scan.array[cord].mean()), 5)


def test_median_intensity_matches_totalsegmentator(ct_dir, nnunet_reference_dir):
    labels = read_image(nnunet_reference_dir / "predictions" / "totalseg_fast_example_ct.nii.gz").array
    scan = read_image(ct_dir / "example_ct.nii.gz")
    names = load_registry().task("total").labels
    median = class_statistics(labels, names, scan.array, scan.spacing, StatisticsOptions(aggregation="median"))
    mean = class_statistics(labels, names, scan.array, scan.spacing)
    # TotalSegmentator 2.18's get_basic_statistics(..., metric="median") on the same files
    assert median["kidney_left"] == {"volume": 324.0, "intensity": 491.5}  # mean 1334.16667
    assert median["rib_right_9"] == {"volume": 1053.0, "intensity": 28.0}
    assert median["vertebrae_L5"] == {"volume": 27.0, "intensity": -699.0}
    assert {n: s["volume"] for n, s in median.items()} == {n: s["volume"] for n, s in mean.items()}
    everything = class_statistics(labels, names, scan.array, scan.spacing,
                                  StatisticsOptions(include_incomplete=True, aggregation="median"))
    cord = labels == next(v for v, n in names.items() if n == "spinal_cord")
    assert everything["spinal_cord"]["intensity"] == round(float(np.median(scan.array[cord])), 5)


def test_extra_metrics_match_totalsegmentator(ct_dir, nnunet_reference_dir):
    labels = read_image(nnunet_reference_dir / "predictions" / "totalseg_fast_example_ct.nii.gz").array
    scan = read_image(ct_dir / "example_ct.nii.gz")
    names = load_registry().task("total").labels
    extra = class_statistics(labels, names, scan.array, scan.spacing, StatisticsOptions(extra=True))
    # TotalSegmentator 2.18's get_basic_statistics(..., extra_metrics=True) on the same files
    assert extra["kidney_left"] == {
        "volume": 324.0, "intensity": 1334.16667, "n_voxels": 12, "intensity_std": 1206.54133,
        "intensity_min": 15.0, "intensity_max": 3168.0, "centroid_vox": [33.08, 39.5, 17.08],
        "bbox_vox": [[19, 98], [30, 48], [3, 107]]}
    assert extra["aorta"]["bbox_vox"] == [[22, 27], [37, 43], [3, 5]]
    assert extra["aorta"]["centroid_vox"] == [24.5, 40.0, 4.0]
    assert extra["spinal_cord"] == {"volume": 0.0, "intensity": 0.0, **EXTRA_METRICS}  # cut off
    assert extra["liver"] == {"volume": 0.0, "intensity": 0.0, **EXTRA_METRICS}  # absent
    everything = class_statistics(labels, names, scan.array, scan.spacing,
                                  StatisticsOptions(include_incomplete=True, extra=True))
    assert everything["spinal_cord"] == {
        "volume": 68175.0, "intensity": 361.96634, "n_voxels": 2525, "intensity_std": 555.59082,
        "intensity_min": -980.0, "intensity_max": 3163.0, "centroid_vox": [53.57, 40.02, 33.35],
        "bbox_vox": [[7, 105], [13, 81], [1, 109]]}
    plain = class_statistics(labels, names, scan.array, scan.spacing)
    assert {n: {k: s[k] for k in ("volume", "intensity")} for n, s in extra.items()} == plain


def test_statistics_options():
    assert StatisticsOptions.requested(False) is None
    assert StatisticsOptions.requested(False, include_incomplete=True) == StatisticsOptions(include_incomplete=True)
    assert StatisticsOptions.requested(True, aggregation="median").aggregation == "median"
    assert StatisticsOptions.requested(False, extra=True) == StatisticsOptions(extra=True)
    with pytest.raises(SegtoolError, match="mean or median, got 'mode'"):
        StatisticsOptions.requested(False, aggregation="mode")
