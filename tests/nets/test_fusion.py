"""fuse(): batch-norm folding and branch merging are exact; heads dropped; instance norm left alone."""

from __future__ import annotations

import pytest
import torch
from torch.nn.modules.batchnorm import _BatchNorm

from segkit.nets.blocks import RepBlock
from segkit.nets.errors import NetsError
from segkit.nets.fusion import fuse
from segkit.nets.registry import build_network

from .test_unet import VARIANTS, small_spec


def _randomize_norms(model: torch.nn.Module) -> None:
    """Give every batch norm non-trivial statistics and affine parameters, as after training."""
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, _BatchNorm):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.3, 0.3)


@pytest.mark.parametrize("dims", [2, 3])
@pytest.mark.parametrize(("block", "norm"), VARIANTS)
def test_fused_equals_unfused(dims: int, block: str, norm: str) -> None:
    torch.manual_seed(1)
    model = build_network(small_spec(dims, block, norm), 2, 3)
    _randomize_norms(model)
    model.eval()
    fused = fuse(model)
    x = torch.randn(2, 2, *((12, 6, 5) if dims == 3 else (12, 5)))
    with torch.no_grad():
        reference = model(x)[0]
        out = fused(x)
    assert isinstance(out, torch.Tensor) and out.shape == reference.shape
    assert (out - reference).abs().max().item() < 1e-4
    assert model.deep_supervision  # the original is untouched
    remaining_bn = [m for m in fused.modules() if isinstance(m, _BatchNorm)]
    assert not remaining_bn if norm == "batch" else True
    if block == "rep":
        assert all(m.merged is not None for m in fused.modules() if isinstance(m, RepBlock))
    in_place = fuse(model, in_place=True)  # for a caller that owns the network: no copy, the same result
    assert in_place is model and not model.deep_supervision
    with torch.no_grad():
        assert torch.equal(in_place(x), out)


def test_fused_model_is_single_output_and_smaller() -> None:
    model = build_network(small_spec(3, "rep", "batch"), 1, 4)
    fused = fuse(model)
    assert not fused.training and not fused.deep_supervision and len(fused.decoder.heads) == 1
    with pytest.raises(NetsError, match="deep supervision cannot be turned on"):
        fused.deep_supervision = True
    n_model = sum(p.numel() for p in model.parameters())
    n_fused = sum(p.numel() for p in fused.parameters())
    assert n_fused < n_model


def test_instance_norm_is_kept() -> None:
    model = build_network(small_spec(3, "plain", "instance"), 1, 2)
    fused = fuse(model)
    assert sum(isinstance(m, torch.nn.InstanceNorm3d) for m in fused.modules()) == \
        sum(isinstance(m, torch.nn.InstanceNorm3d) for m in model.modules())
