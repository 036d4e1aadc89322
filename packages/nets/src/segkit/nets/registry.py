"""Networks by name: `build_network` looks the spec's ``network`` key up in a registry users can extend."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from segkit.nets.errors import ArchitectureSpecError
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
