"""Parameter, FLOP and activation counts of networks and specs (no real computation: meta tensors)."""

from __future__ import annotations

import math

import torch
from torch import nn

from segkit.nets.errors import ArchitectureSpecError
from segkit.nets.registry import build_network
from segkit.nets.spec import ArchitectureSpec


def count_parameters(model: nn.Module, *, trainable_only: bool = False) -> int:
    """Return the number of parameters (weights and biases; buffers such as running stats excluded)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def _check_patch(spec: ArchitectureSpec, patch_size: tuple[int, ...]) -> tuple[int, ...]:
    patch = tuple(int(v) for v in patch_size)
    if len(patch) != spec.dims:
        raise ArchitectureSpecError(f"patch size: expected {spec.dims} entries, found {len(patch)}")
    total = [math.prod(s[a] for s in spec.strides) for a in range(spec.dims)]
    bad = [a for a in range(spec.dims) if patch[a] % total[a]]
    if bad:
        raise ArchitectureSpecError(
            f"patch size {list(patch)}: axis {bad[0]} must be a multiple of {total[bad[0]]} (product of strides)"
        )
    return patch


def count_conv_macs(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    """Return the multiply-accumulates of all (transposed) convs for one forward of `input_shape`.

    The forward runs on meta tensors (no memory, no arithmetic); `model` is moved to the meta device
    only if it already lives there, so pass a meta-built model for big shapes.
    """
    total = 0

    def hook(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        nonlocal total
        k = math.prod(module.kernel_size)
        if isinstance(module, nn.modules.conv._ConvTransposeNd):
            total += inputs[0].numel() * module.out_channels * k // module.groups
        else:
            total += output.numel() * module.in_channels * k // module.groups

    device = next(model.parameters()).device
    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.modules.conv._ConvNd)]
    try:
        with torch.no_grad():
            model(torch.empty(input_shape, device=device))
    finally:
        for h in handles:
            h.remove()
    return total


def estimate_flops(spec: ArchitectureSpec, patch_size: tuple[int, ...], *, in_channels: int = 1,
                   num_classes: int = 2) -> int:
    """Return the conv FLOPs (2 x multiply-accumulates) of one forward pass of one patch.

    Args:
        spec: the architecture.
        patch_size: spatial size in segkit's axis order, a multiple of the product of strides per axis.
        in_channels: input channels.
        num_classes: output channels.

    Returns:
        FLOPs of convolutions and transposed convolutions for batch size 1 (norms and nonlinearities,
        a few percent more, are not counted).
    """
    patch = _check_patch(spec, patch_size)
    with torch.device("meta"):
        model = build_network(spec, in_channels, num_classes).eval()
    return 2 * count_conv_macs(model, (1, in_channels, *patch))


def feature_map_size(spec: ArchitectureSpec, patch_size: tuple[int, ...], *, in_channels: int = 1,
                     num_classes: int = 2) -> int:
    """Return channels x voxels written by all convs for one patch (nnU-Net's planning quantity)."""
    patch = _check_patch(spec, patch_size)
    with torch.device("meta"):
        model = build_network(spec, in_channels, num_classes)
    return int(model.feature_map_size(patch))
