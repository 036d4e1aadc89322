"""ArchitectureSpec: lossless JSON round trip and one-line errors that say expected vs found."""

from __future__ import annotations

import json

import pytest

from segkit.nets.errors import ArchitectureSpecError
from segkit.nets.spec import ArchitectureSpec, Block, Norm


def _spec_dict(**changes) -> dict:
    base = {"dims": 3, "features_per_stage": [8, 16, 32], "kernel_sizes": [[1, 3, 3], [3, 3, 3], [3, 3, 3]],
            "strides": [[1, 1, 1], [2, 2, 1], [2, 2, 2]], "blocks_per_stage": [1, 2, 2],
            "blocks_per_stage_decoder": [1, 1]}
    base.update(changes)
    return base


def test_json_round_trip_is_lossless() -> None:
    spec = ArchitectureSpec.from_dict(_spec_dict(block="residual", norm="group", stem_channels=4,
                                                 negative_slope=0.02))
    text = json.dumps(spec.to_dict())
    again = ArchitectureSpec.from_dict(json.loads(text))
    assert again == spec
    assert again.to_dict() == json.loads(text)
    assert spec.block is Block.RESIDUAL and spec.norm is Norm.GROUP
    assert spec.kernel_sizes[0] == (1, 3, 3) and spec.num_stages == 3


def test_defaults_match_nnunet() -> None:
    spec = ArchitectureSpec.from_dict(_spec_dict())
    assert (spec.network, spec.block, spec.norm, spec.deep_supervision) == ("unet", Block.PLAIN, Norm.INSTANCE, True)
    assert spec.conv_bias and spec.negative_slope == 0.01 and spec.norm_eps == 1e-5


@pytest.mark.parametrize(("changes", "message"), [
    ({"strides": [[1, 1, 1], [2, 2, 2]]}, r"'strides': expected 3 entries for 3 stages, found 2"),
    ({"blocks_per_stage_decoder": [1, 1, 1]}, r"'blocks_per_stage_decoder': expected 2 entries for 3 stages, found 3"),
    ({"kernel_sizes": [[3, 3], [3, 3, 3], [3, 3, 3]]}, r"'kernel_sizes'\[0\]: expected 3 entries"),
    ({"kernel_sizes": [[2, 3, 3], [3, 3, 3], [3, 3, 3]]}, r"odd"),
    ({"dims": 4}, r"'dims': expected 2 or 3, found 4"),
    ({"block": "dense"}, r"'block': unknown value 'dense'; valid: 'plain', 'residual', 'rep'"),
    ({"norm": "layer"}, r"'norm': unknown value 'layer'"),
    ({"block": "rep", "norm": "instance"}, r"block 'rep' needs 'batch'"),
    ({"norm": "group", "group_norm_groups": 3}, r"must divide every width"),
    ({"features_per_stage": [8, 0, 32]}, r"positive integers"),
    ({"deep_supervision": "yes"}, r"'deep_supervision': expected true or false"),
    ({"colour": "red"}, r"unknown key 'colour'"),
])
def test_bad_specs_raise_one_line_errors(changes: dict, message: str) -> None:
    with pytest.raises(ArchitectureSpecError, match=message) as info:
        ArchitectureSpec.from_dict(_spec_dict(**changes))
    assert "\n" not in str(info.value)


def test_missing_key() -> None:
    data = _spec_dict()
    del data["strides"]
    with pytest.raises(ArchitectureSpecError, match="missing key 'strides'"):
        ArchitectureSpec.from_dict(data)
