"""Planner presets and their GPU calibration."""

import pytest

from segkit.planning.architecture import Block
from segkit.planning.errors import PlansError
from segkit.planning.presets import get_preset


def test_presets_scale_with_memory():
    default, gb = get_preset("default")
    assert gb == 8 and default.block is Block.PLAIN and default.reference(3, 16) == 2 * default.reference(3, 8)
    large, gb = get_preset("resenc_l")
    assert gb == 24 and large.block is Block.RESIDUAL and large.max_dataset_covered == 1.0
    assert large.reference(3, 24) == 2100e6 and large.reference_batch(2) == 12


def test_unknown_preset_lists_valid():
    with pytest.raises(PlansError, match="valid: default, resenc_m, resenc_l, resenc_xl"):
        get_preset("resenc_xxl")
