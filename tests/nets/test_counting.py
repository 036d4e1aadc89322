"""Parameter, FLOP and feature-map counts."""

from __future__ import annotations

import pytest

from segkit.nets.counting import count_parameters, estimate_flops, feature_map_size
from segkit.nets.errors import ArchitectureSpecError
from segkit.nets.fusion import fuse
from segkit.nets.registry import build_network
from segkit.nets.spec import ArchitectureSpec


def _one_stage(**changes) -> ArchitectureSpec:
    values = {"dims": 3, "features_per_stage": [4], "kernel_sizes": [[3, 3, 1]], "strides": [[1, 1, 1]],
              "blocks_per_stage": [1], "blocks_per_stage_decoder": []}
    values.update(changes)
    return ArchitectureSpec.from_dict(values)


def test_flops_of_single_stage_by_hand() -> None:
    # one 3x3x1 conv 2 -> 4 channels, then (no decoder stage, so no head): 2 * voxels * 4 * 2 * 9
    spec = _one_stage()
    assert estimate_flops(spec, (8, 6, 5), in_channels=2, num_classes=3) == 2 * (8 * 6 * 5) * 4 * 2 * 9


def test_flops_two_stages_by_hand() -> None:
    spec = ArchitectureSpec(dims=2, features_per_stage=[4, 8], kernel_sizes=[[3, 3], [3, 3]],
                            strides=[[1, 1], [2, 2]], blocks_per_stage=[1, 1], blocks_per_stage_decoder=[1],
                            deep_supervision=False)
    full, half = 8 * 8, 4 * 4
    macs = (full * 4 * 1 * 9 + half * 8 * 4 * 9  # encoder
            + half * 4 * 8 * 4  # transposed conv 2x2: input voxels x out x in x 4
            + full * 4 * 8 * 9  # decoder conv on the concatenation (8 channels)
            + full * 2 * 4)  # head
    assert estimate_flops(spec, (8, 8), in_channels=1, num_classes=2) == 2 * macs
    expected = full * 4 + half * 8 + half * 0 + full * 4 + full * 4 + full * 2
    assert feature_map_size(spec, (8, 8), num_classes=2) == expected


def test_patch_must_fit_strides() -> None:
    spec = ArchitectureSpec(dims=2, features_per_stage=[4, 8], kernel_sizes=[[3, 3], [3, 3]],
                            strides=[[1, 1], [2, 1]], blocks_per_stage=[1, 1], blocks_per_stage_decoder=[1])
    with pytest.raises(ArchitectureSpecError, match="axis 0 must be a multiple of 2"):
        estimate_flops(spec, (7, 7))
    assert estimate_flops(spec, (8, 7)) > 0


def test_parameter_counts_of_fused_rep_model() -> None:
    spec = _one_stage(block="rep", norm="batch", features_per_stage=[4, 4], kernel_sizes=[[3, 3, 3]] * 2,
                      strides=[[1, 1, 1], [2, 2, 2]], blocks_per_stage=[2, 1], blocks_per_stage_decoder=[1])
    model = build_network(spec, 4, 2)
    fused = fuse(model)
    # a fused rep block is one 3x3x3 conv with bias; count the model's convs by hand
    expected = (4 * 4 * 27 + 4) * 2 + (4 * 4 * 27 + 4)  # encoder: 2 blocks at stage 0, 1 at stage 1
    expected += 4 * 4 * 8 + 4  # transposed conv
    expected += 4 * 8 * 27 + 4  # decoder rep block on 8 channels
    expected += 2 * 4 + 2  # the single remaining head
    assert count_parameters(fused) == expected
    assert count_parameters(model) > expected
