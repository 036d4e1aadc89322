"""Preprocessing one case, and mapping it back to the original grid."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from segkit.io import read_channels, read_image
from segkit.planning.cropping import uncrop
from segkit.planning.planner import plan_dataset
from segkit.planning.plans import Plans
from segkit.planning.preprocessing import class_locations, configuration_spacing, preprocess_arrays
from segkit.planning.resampling import resample_labels


@pytest.fixture(scope="module")
def plans(hippocampus, hippocampus_fingerprint) -> Plans:
    data = plan_dataset(hippocampus_fingerprint, hippocampus.info).to_dict()
    data["configurations"]["3d_fine"] = {"inherits_from": "3d_fullres", "spacing": [0.8, 0.7, 0.9]}
    return Plans.from_dict(data)


def _read(case):
    image = read_channels(case.image_files)
    return image, np.asarray(read_image(case.label_file).array).astype(np.int16)


def test_fullres_case_is_cropped_and_zscored(hippocampus, plans):
    image, labels = _read(hippocampus.training[0])
    config = plans.configuration("3d_fullres")
    out = preprocess_arrays(
        image.array,
        labels,
        spacing=image.spacing,
        configuration=config,
        intensity_properties=plans.foreground_intensity_properties_per_channel,
    )
    assert out.data.shape[1:] == out.shape_after_crop and out.data.dtype == np.float32
    assert abs(out.data.mean()) < 1e-4 and abs(out.data.std() - 1) < 1e-4
    assert np.array_equal(uncrop(out.seg[0], out.crop_box, labels.shape), labels)


def test_resampled_case_maps_back_to_original_grid(hippocampus, plans):
    case = hippocampus.training[1]
    image, labels = _read(case)
    config = plans.configuration("3d_fine")
    out = preprocess_arrays(
        image.array,
        labels,
        spacing=image.spacing,
        configuration=config,
        intensity_properties=plans.foreground_intensity_properties_per_channel,
    )
    expected = tuple(round(s * 1.0 / t) for s, t in zip(out.shape_after_crop, (0.8, 0.7, 0.9), strict=True))
    assert out.data.shape[1:] == expected and out.spacing == (0.8, 0.7, 0.9)
    back = resample_labels(out.seg, to_shape=out.shape_after_crop).numpy()[0]
    restored = uncrop(np.maximum(back, 0), out.crop_box, labels.shape)
    for value in (1, 2):
        a, b = restored == value, labels == value
        assert 2 * (a & b).sum() / (a.sum() + b.sum()) > 0.99


def test_ct_normalization_clips_to_percentiles(ct_dataset, ct_fingerprint):
    plans = plan_dataset(ct_fingerprint, ct_dataset.info)
    config = plans.configuration("3d_fullres")
    case = ct_dataset.training[1]
    image = read_channels(case.image_files)
    out = preprocess_arrays(
        image.array,
        None,
        spacing=image.spacing,
        configuration=config,
        intensity_properties=plans.foreground_intensity_properties_per_channel,
    )
    stats = plans.foreground_intensity_properties_per_channel[0]
    low = (stats["percentile_00_5"] - stats["mean"]) / stats["std"]
    high = (stats["percentile_99_5"] - stats["mean"]) / stats["std"]
    assert out.data.min() >= low - 1e-4 and out.data.max() <= high + 1e-4
    assert out.data.min() == pytest.approx(low, abs=1e-4)  # air is clipped to the low percentile
    raw = np.asanyarray(nib.load(case.image_files[0]).dataobj)
    assert out.seg.shape == (1, *out.data.shape[1:]) and out.shape_after_crop == raw.shape


def test_two_d_configuration_keeps_slice_spacing(plans):
    config = plans.configuration("2d")
    assert configuration_spacing(config, (1.0, 1.0, 2.5))[config.slice_axis] == 2.5


def test_class_locations_sample_each_label():
    seg = np.zeros((1, 40, 40, 40), np.int16)
    seg[0, :30] = 1  # 48000 voxels -> 10000 sampled
    seg[0, 35, 5, 5] = 2
    locations = class_locations(seg, (1, 2, 3))
    assert locations[1].shape == (10000, 3) and len(np.unique(locations[1], axis=0)) == 10000
    assert np.all(seg[0][tuple(locations[1].T)] == 1)
    assert locations[2].tolist() == [[35, 5, 5]] and locations[3].shape == (0, 3)
    big = np.ones((1, 120, 100, 100), np.int16)  # 1.2M voxels -> 1% = 12000 sampled
    assert class_locations(big, (1,))[1].shape == (12000, 3)


def test_revert_to_original_grid_inverts_preprocessing(hippocampus, plans):
    from segkit.planning.preprocessing import revert_to_original_grid

    image, labels = _read(hippocampus.training[2])
    out = preprocess_arrays(
        image.array,
        labels,
        spacing=image.spacing,
        configuration=plans.configuration("3d_fine"),
        intensity_properties=plans.foreground_intensity_properties_per_channel,
    )
    geometry = {"crop_box": out.crop_box, "shape_after_crop": out.shape_after_crop, "original_shape": labels.shape}
    restored = revert_to_original_grid(np.maximum(out.seg[0], 0), is_labels=True, **geometry)
    assert restored.shape == labels.shape and restored.dtype == np.int16
    assert (restored == labels).mean() > 0.99
    one_hot = np.stack([out.seg[0] == v for v in (0, 1, 2)]).astype(np.float32)
    probabilities = revert_to_original_grid(one_hot, is_labels=False, **geometry)
    assert probabilities.shape == (3, *labels.shape) and (probabilities.argmax(0) == labels).mean() > 0.98
