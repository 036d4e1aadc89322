"""Normalization schemes and the channel-name mapping."""

import numpy as np
import pytest

from segkit.planning.errors import PlansError
from segkit.planning.normalization import Scheme, normalize, scheme_for_channel


def test_channel_names_map_like_nnunet():
    assert scheme_for_channel("CT") is Scheme.CT
    assert scheme_for_channel("noNorm") is Scheme.NONE
    assert scheme_for_channel("rescale_to_0_1") is Scheme.RESCALE_0_1
    assert scheme_for_channel("RGB_to_0_1") is Scheme.RGB_0_1
    assert scheme_for_channel("T2") is Scheme.ZSCORE and scheme_for_channel("MRI") is Scheme.ZSCORE


def test_ct_clips_then_standardizes():
    stats = {"mean": 10.0, "std": 5.0, "percentile_00_5": -100.0, "percentile_99_5": 100.0}
    out = normalize(np.array([-1000.0, 10.0, 1000.0]), Scheme.CT, stats=stats)
    assert out.dtype == np.float32 and np.allclose(out, [-22.0, 0.0, 18.0])
    with pytest.raises(PlansError, match="statistics"):
        normalize(np.zeros(3), Scheme.CT)


def test_zscore_masked_and_unmasked():
    image = np.array([0.0, 0.0, 2.0, 4.0, 6.0])
    assert np.allclose(normalize(image, Scheme.ZSCORE), (image - image.mean()) / image.std())
    mask = image > 0
    out = normalize(image, Scheme.ZSCORE, mask=mask)
    assert np.allclose(out[mask], [-1.2247449, 0.0, 1.2247449]) and np.all(out[~mask] == 0)


def test_rescale_rgb_none():
    assert np.allclose(normalize(np.array([2.0, 4.0, 6.0]), Scheme.RESCALE_0_1), [0, 0.5, 1])
    assert np.allclose(normalize(np.array([0, 255], np.uint8), Scheme.RGB_0_1), [0, 1])
    assert normalize(np.array([3], np.int16), Scheme.NONE).dtype == np.float32
    with pytest.raises(PlansError, match="0..255"):
        normalize(np.array([300.0]), Scheme.RGB_0_1)
