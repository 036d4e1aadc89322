"""compile_for_inference: the compiled fused network computes the same function."""

from __future__ import annotations

import torch

from segkit.nets.compiling import compile_for_inference
from segkit.nets.fusion import fuse
from segkit.nets.registry import build_network

from .test_unet import small_spec


def test_compiled_matches_eager() -> None:
    torch.manual_seed(3)
    # two stages: inductor compiles C++ kernels for each step (cold, on 2 cores: 39 s, three stages 65 s)
    spec = small_spec(2, "plain", "instance", features_per_stage=[8, 16], kernel_sizes=[[3, 1], [3, 3]],
                      strides=[[1, 1], [2, 1]], blocks_per_stage=[1, 1], blocks_per_stage_decoder=[1])
    model = fuse(build_network(spec, 1, 2))
    compiled = compile_for_inference(model)
    x = torch.randn(1, 1, 12, 5)
    with torch.no_grad():
        assert (compiled(x) - model(x)).abs().max().item() < 1e-4
    assert not torch._inductor.config.freezing  # the option applied to this compilation only
