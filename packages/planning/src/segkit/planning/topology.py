"""Network topology from spacing and patch size: pooling per stage, kernel sizes, divisibility.

These are nnU-Net's rules, applied to axes in any order: an axis is pooled while its
feature map stays at least twice the minimum bottleneck edge and its spacing is within 2x
of the finest; a kernel is 3 along an axis once that axis's spacing is within 2x of the
finest (1 before), and the bottleneck always uses 3.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

MIN_BOTTLENECK_EDGE = 4
ANISOTROPY_FACTOR = 2.0


@dataclass(frozen=True)
class Topology:
    """Strides and kernel sizes per stage (per axis), and the patch size made divisible."""

    strides: tuple[tuple[int, ...], ...]
    kernel_sizes: tuple[tuple[int, ...], ...]
    patch_size: tuple[int, ...]
    pools_per_axis: tuple[int, ...]

    @property
    def num_stages(self) -> int:
        """Number of resolution stages (encoder stages)."""
        return len(self.strides)

    @property
    def divisor(self) -> tuple[int, ...]:
        """What each patch edge must be divisible by (``2 ** pools``)."""
        return tuple(2**p for p in self.pools_per_axis)


def pad_to_multiple(shape: Sequence[int], divisor: Sequence[int]) -> tuple[int, ...]:
    """Round each edge up to a multiple of its divisor (an exact multiple stays).

    Example:
        >>> pad_to_multiple((35, 50, 36), (8, 8, 8))
        (40, 56, 40)
    """
    return tuple(int(math.ceil(s / d) * d) for s, d in zip(shape, divisor, strict=True))


def plan_topology(
    spacing: Sequence[float],
    patch_size: Sequence[int],
    *,
    min_edge: int = MIN_BOTTLENECK_EDGE,
) -> Topology:
    """Decide pooling and kernel sizes for a patch at a spacing (nnU-Net's rules).

    Args:
        spacing: voxel spacing per axis (mm).
        patch_size: wanted patch size per axis (voxels).
        min_edge: minimum edge of the bottleneck feature map.

    Returns:
        The topology; its ``patch_size`` is ``patch_size`` padded to the divisor.

    Example:
        >>> t = plan_topology((1.0, 1.0, 1.0), (35, 50, 36))
        >>> t.num_stages, t.patch_size
        (4, (40, 56, 40))
    """
    dim = len(spacing)
    current_spacing = [float(s) for s in spacing]
    current_size = [float(s) for s in patch_size]
    pools = [0] * dim
    kernel = [1] * dim
    strides: list[tuple[int, ...]] = [(1,) * dim]
    kernels: list[tuple[int, ...]] = []
    while True:
        valid = [a for a in range(dim) if current_size[a] >= 2 * min_edge]
        if not valid:
            break
        finest_valid = min(current_spacing[a] for a in valid)
        valid = [a for a in valid if current_spacing[a] / finest_valid < ANISOTROPY_FACTOR]
        if len(valid) == 1 and current_size[valid[0]] < 3 * min_edge:
            break
        if not valid:
            break
        finest = min(current_spacing)
        for a in range(dim):
            if kernel[a] != 3 and current_spacing[a] / finest < ANISOTROPY_FACTOR:
                kernel[a] = 3
        for a in valid:
            pools[a] += 1
            current_spacing[a] *= 2
            current_size[a] = math.ceil(current_size[a] / 2)
        strides.append(tuple(2 if a in valid else 1 for a in range(dim)))
        kernels.append(tuple(kernel))
    kernels.append((3,) * dim)
    divisor = [2**p for p in pools]
    return Topology(tuple(strides), tuple(kernels), pad_to_multiple(patch_size, divisor), tuple(pools))
