"""UNet shapes for every block, norm and dimensionality, deep supervision, registry, feature-map sizes."""

from __future__ import annotations

import pytest
import torch

from segkit.nets.errors import ArchitectureSpecError
from segkit.nets.registry import build_network, register_network, registered_networks
from segkit.nets.spec import ArchitectureSpec


def small_spec(dims: int, block: str = "plain", norm: str = "instance", **changes) -> ArchitectureSpec:
    """Three anisotropic stages; the last axis is never strided, so it may have any (odd) size."""
    if dims == 3:
        kernels = [[3, 3, 1], [3, 3, 3], [3, 3, 3]]
        strides = [[1, 1, 1], [2, 2, 1], [2, 1, 1]]
    else:
        kernels = [[3, 1], [3, 3], [3, 3]]
        strides = [[1, 1], [2, 1], [2, 1]]
    values = {"dims": dims, "features_per_stage": [8, 16, 24], "kernel_sizes": kernels, "strides": strides,
              "blocks_per_stage": [1, 2, 2], "blocks_per_stage_decoder": [1, 2], "block": block, "norm": norm}
    values.update(changes)
    return ArchitectureSpec.from_dict(values)


VARIANTS = [(b, n) for b in ("plain", "residual") for n in ("instance", "batch", "group")] + [("rep", "batch")]


@pytest.mark.parametrize("dims", [2, 3])
@pytest.mark.parametrize(("block", "norm"), VARIANTS)
def test_output_shapes_with_and_without_deep_supervision(dims: int, block: str, norm: str) -> None:
    torch.manual_seed(0)
    model = build_network(small_spec(dims, block, norm), 2, 3)
    size = (20, 10, 7) if dims == 3 else (20, 7)
    half = (10, 5, 7) if dims == 3 else (10, 7)
    x = torch.randn(2, 2, *size)
    outputs = model(x)
    assert isinstance(outputs, list) and len(outputs) == 2
    assert outputs[0].shape == (2, 3, *size)
    assert outputs[1].shape == (2, 3, *half)
    model.deep_supervision = False
    model.eval()
    single = model(x)
    assert isinstance(single, torch.Tensor) and single.shape == (2, 3, *size)


def test_residual_stem_and_skip_projection_layout() -> None:
    model = build_network(small_spec(3, "residual", stem_channels=4), 1, 2)
    keys = set(model.state_dict())
    assert "encoder.stem.conv.weight" in keys
    assert "encoder.stages.0.0.skip_proj.conv.weight" in keys  # 4 -> 8 channels
    assert "encoder.stages.1.0.skip_proj.conv.bias" not in keys  # projections have no bias, as nnU-Net
    assert "encoder.stages.1.1.skip_proj.conv.weight" not in keys  # same width, no stride: identity skip


def test_registry_builds_user_network() -> None:
    class Tiny(torch.nn.Module):
        def __init__(self, spec: ArchitectureSpec, in_channels: int, num_classes: int):
            super().__init__()
            self.conv = torch.nn.Conv3d(in_channels, num_classes, 1)

    register_network("test-tiny", Tiny, replace=True)
    model = build_network(small_spec(3, network="test-tiny"), 2, 5)
    assert isinstance(model, Tiny) and model.conv.out_channels == 5
    assert "unet" in registered_networks()
    with pytest.raises(ArchitectureSpecError, match="already registered"):
        register_network("test-tiny", Tiny)
    with pytest.raises(ArchitectureSpecError, match=r"unknown network 'nope'; registered: .*unet"):
        build_network(small_spec(3, network="nope"), 1, 2)


def test_feature_map_size_matches_nnunet_planning_numbers() -> None:
    """nnU-Net's compute_conv_feature_map_size for the same networks (computed once with the peer venv)."""
    plain = ArchitectureSpec(dims=3, features_per_stage=[32, 64, 128, 256], kernel_sizes=[[3, 3, 3]] * 4,
                             strides=[[1, 1, 1]] + [[2, 2, 2]] * 3, blocks_per_stage=[2] * 4,
                             blocks_per_stage_decoder=[2] * 3)
    model = build_network(plain, 1, 3)
    assert model.feature_map_size((40, 56, 40)) == 19212200
    model.deep_supervision = False
    assert model.feature_map_size((40, 56, 40)) == 19174400
    # ResEnc, anisotropic; nnU-Net's (z, y, x) lists reversed into our order
    resenc = ArchitectureSpec(
        dims=3, features_per_stage=[16, 32, 64, 128, 160], block="residual",
        kernel_sizes=[[3, 3, 1], [3, 3, 3], [3, 3, 3], [3, 3, 3], [3, 3, 3]],
        strides=[[1, 1, 1], [2, 2, 1], [2, 2, 2], [2, 2, 2], [2, 2, 1]], blocks_per_stage=[1, 3, 4, 6, 6],
        blocks_per_stage_decoder=[1, 1, 1, 1])
    model = build_network(resenc, 1, 4)
    assert model.feature_map_size((48, 64, 16)) == 9273600
    assert sum(p.numel() for p in model.parameters()) == 15607920


@pytest.mark.parametrize("fused", [False, True])
def test_features_then_head_in_parts_equal_forward(fused: bool) -> None:
    from segkit.nets import fuse

    torch.manual_seed(0)
    model = build_network(small_spec(3), 1, 7)
    model.deep_supervision = False
    model = fuse(model) if fused else model.eval()
    x = torch.randn(2, 1, 20, 10, 7)
    with torch.no_grad():
        whole = model(x)
        features = model.forward_features(x)
        parts = torch.cat([model.head_logits(features, slice(a, a + 3)) for a in range(0, 7, 3)], 1)
    assert features.shape == (2, 8, 20, 10, 7)
    torch.testing.assert_close(parts, whole, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dims", [2, 3])
def test_instance_norm_keeps_a_channels_last_sample_channels_last(dims):
    """One sample goes through batch norm's kernel: PyTorch's instance-norm values and gradients, layout kept."""
    from segkit.nets.layers import InstanceNorm2d, InstanceNorm3d

    ours, theirs = (InstanceNorm2d, torch.nn.InstanceNorm2d) if dims == 2 else (InstanceNorm3d, torch.nn.InstanceNorm3d)
    layout = torch.channels_last if dims == 2 else torch.channels_last_3d
    torch.manual_seed(0)
    norm, reference = ours(6, affine=True), theirs(6, affine=True)
    with torch.no_grad():
        norm.weight.uniform_(0.5, 2.0)
        norm.bias.uniform_(-1.0, 1.0)
    reference.load_state_dict(norm.state_dict())
    x = (torch.randn(1, 6, *(5,) * dims) * 3 + 1).to(memory_format=layout)
    grad = torch.randn(1, 6, *(5,) * dims)
    results = []
    for layer in (norm, reference):
        inp = x.clone().requires_grad_()
        out = layer(inp)
        out.backward(grad)
        results.append((out, inp.grad, layer.weight.grad, layer.bias.grad))
    assert results[0][0].is_contiguous(memory_format=layout)
    for got, expected in zip(results[0], results[1], strict=True):
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    batch = torch.randn(3, 6, *(5,) * dims)  # several samples: PyTorch's own instance norm
    torch.testing.assert_close(norm(batch), reference(batch), rtol=0, atol=0)
