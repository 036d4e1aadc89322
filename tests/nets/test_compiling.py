"""compile_for_inference: the compiled fused network computes the same function."""

from __future__ import annotations

import torch

from segkit.nets.compiling import compile_for_inference
from segkit.nets.fusion import fuse
from segkit.nets.registry import build_network

from .test_unet import small_spec


def test_compiled_matches_eager() -> None:
    torch.manual_seed(3)
    model = fuse(build_network(small_spec(2, "plain", "instance"), 1, 2))
    compiled = compile_for_inference(model)
    x = torch.randn(1, 1, 12, 5)
    with torch.no_grad():
        assert (compiled(x) - model(x)).abs().max().item() < 1e-4
    assert not torch._inductor.config.freezing  # the option applied to this compilation only
