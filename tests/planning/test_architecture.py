"""The architecture spec contract."""

import pytest

from segkit.planning.architecture import ArchitectureSpec, Block, Norm
from segkit.planning.errors import PlansError


def _spec(**changes):
    base = dict(
        features_per_stage=(32, 64),
        kernel_sizes=((3, 3, 3), (3, 3, 3)),
        strides=((1, 1, 1), (2, 2, 2)),
        blocks_per_stage=(2, 2),
        blocks_per_stage_decoder=(2,),
    )
    return ArchitectureSpec(**{**base, **changes})


def test_round_trip_and_enums():
    spec = _spec(block="residual", norm="batch")
    assert spec.block is Block.RESIDUAL and spec.norm is Norm.BATCH and spec.dims == 3 and spec.num_stages == 2
    assert ArchitectureSpec.from_dict(spec.to_dict()) == spec


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"strides": ((2, 2, 2), (2, 2, 2))}, "first stage's stride must be all 1"),
        ({"blocks_per_stage": (2,)}, "blocks_per_stage needs 2 entries"),
        ({"kernel_sizes": ((3, 3), (3, 3))}, "2 or 3 axes"),
        ({"block": "dense"}, "valid: plain, residual, rep"),
        ({"network": "vnet"}, "valid: unet"),
    ],
)
def test_bad_specs(changes, message):
    with pytest.raises(PlansError, match=message):
        _spec(**changes)


def test_dims_must_match_kernels():
    with pytest.raises(PlansError, match="dims is 2"):
        ArchitectureSpec.from_dict({**_spec().to_dict(), "dims": 2})
