"""Networks by name: `build_network` looks the spec's ``network`` key up in a registry users can extend."""

from __future__ import annotations

from collections.abc import Callable
from itertools import chain

import torch
from torch import nn

from segkit.nets.errors import ArchitectureSpecError, WeightsMismatchError
from segkit.nets.spec import ArchitectureSpec
from segkit.nets.unet import UNet

NetworkBuilder = Callable[[ArchitectureSpec, int, int], nn.Module]

_REGISTRY: dict[str, NetworkBuilder] = {"unet": UNet}


def register_network(name: str, builder: NetworkBuilder, *, replace: bool = False) -> None:
    """Register `builder(spec, in_channels, num_classes) -> nn.Module` under `name`.

    Args:
        name: the value of the spec's ``network`` key that selects this builder.
        builder: a class or function taking (spec, in_channels, num_classes).
        replace: allow overwriting an existing name.

    Raises:
        ArchitectureSpecError: `name` is taken and `replace` is false.
    """
    if name in _REGISTRY and not replace:
        raise ArchitectureSpecError(f"network name {name!r} is already registered; pass replace=True to override")
    _REGISTRY[name] = builder


def registered_networks() -> list[str]:
    """Return the registered network names, sorted."""
    return sorted(_REGISTRY)


def build_network(spec: ArchitectureSpec, in_channels: int, num_classes: int) -> nn.Module:
    """Build the network named by ``spec.network`` for `in_channels` inputs and `num_classes` outputs.

    Example:
        >>> spec = ArchitectureSpec(dims=2, features_per_stage=[4, 8], kernel_sizes=[[3, 3], [3, 3]],
        ...     strides=[[1, 1], [2, 2]], blocks_per_stage=[1, 1], blocks_per_stage_decoder=[1])
        >>> build_network(spec, 1, 3).num_classes
        3

    Raises:
        ArchitectureSpecError: unknown network name (the message lists the registered ones) or bad counts.
    """
    if in_channels < 1 or num_classes < 1:
        raise ArchitectureSpecError(
            f"expected in_channels >= 1 and num_classes >= 1, found {in_channels}, {num_classes}")
    builder = _REGISTRY.get(spec.network)
    if builder is None:
        raise ArchitectureSpecError(
            f"unknown network {spec.network!r}; registered: {', '.join(registered_networks())}"
        )
    return builder(spec, in_channels, num_classes)


def build_with_weights(spec: ArchitectureSpec, in_channels: int, num_classes: int, state: dict[str, torch.Tensor],
                       *, source_keys: dict[str, str] | None = None) -> nn.Module:
    """Build the network for ``spec`` holding the tensors of ``state`` (float32, eval mode).

    The network is built without memory (on the meta device) and takes copies of the tensors, so no random
    initialization is computed only to be overwritten (0.2 s for TotalSegmentator's 3 mm CT U-Net). A builder
    whose network keeps tensors outside its state dict is built the usual way.

    Args:
        spec, in_channels, num_classes: as for `build_network`.
        state: the weights by segkit key (any floating dtype; stored as float32).
        source_keys: segkit key -> the key in the source file, for error messages.

    Raises:
        WeightsMismatchError: a key is missing, extra, or of another shape than the architecture's.
    """
    tensors = {k: v.to(torch.float32 if v.is_floating_point() else v.dtype, memory_format=torch.contiguous_format,
                       copy=True) for k, v in state.items()}  # copies: the network never shares the caller's
    with torch.device("meta"):
        model = build_network(spec, in_channels, num_classes)
    check_state_dict(model, tensors, source_keys=source_keys or {})
    model.load_state_dict(tensors, assign=True)
    if any(t.is_meta for t in chain(model.parameters(), model.buffers())):
        model = build_network(spec, in_channels, num_classes)
        model.load_state_dict(tensors)
    return model.eval()


def check_state_dict(model: nn.Module, state: dict[str, torch.Tensor], *, source_keys: dict[str, str]) -> None:
    """Raise `WeightsMismatchError` naming the first key whose presence or shape differs from `model`."""
    expected = model.state_dict()
    for key, value in expected.items():
        name = source_keys.get(key, key)
        if key not in state:
            raise WeightsMismatchError(f"checkpoint lacks key {name!r} (shape {tuple(value.shape)}) that the "
                                       f"architecture needs; was it trained with other plans?")
        if tuple(state[key].shape) != tuple(value.shape):
            raise WeightsMismatchError(f"checkpoint key {name!r} has shape {tuple(state[key].shape)}, the "
                                       f"architecture expects {tuple(value.shape)}")
    extra = [k for k in state if k not in expected]
    if extra:
        raise WeightsMismatchError(f"checkpoint key {source_keys.get(extra[0], extra[0])!r} does not exist in the "
                                   f"architecture (shape {tuple(state[extra[0]].shape)})")
