"""Mergeable moments, sampling, and nnU-Net's intensity properties."""

import math

import numpy as np
import pytest

from segkit.planning.intensity import Moments, intensity_properties, sample_values


def test_moments_merge_equals_whole():
    rng = np.random.default_rng(0)
    a, b = rng.normal(5, 3, 1000), rng.normal(-2, 1, 333)
    merged = Moments.of(a).merge(Moments.of(b))
    whole = np.concatenate([a, b])
    assert merged.mean == pytest.approx(whole.mean()) and merged.std == pytest.approx(whole.std())
    assert merged.count == 1333 and Moments().merge(Moments.of(a)) == Moments.of(a)


def test_sampling_and_properties():
    values = np.arange(1000, dtype=np.float32)
    assert sample_values(values, 2000) is values
    sampled = sample_values(values, 100)
    assert sampled.size == 100 and np.unique(sampled).size == 100
    props = intensity_properties(Moments.of(values), values)
    assert props["percentile_00_5"] == pytest.approx(np.percentile(values, 0.5)) and props["max"] == 999
    empty = intensity_properties(Moments(), np.zeros(0))
    assert all(math.isnan(v) for v in empty.values())
