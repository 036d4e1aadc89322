"""Blending tile outputs into an image: running Gaussian-weighted means, in half precision where they are logits."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

#: voxels per step of averaging one placement of translation TTA into the others (all channels: 118 x 2**18 float32
#: values, 124 MB)
AVERAGE_SLAB_VOXELS = 2**18


def accumulators(channels: int, shape: Sequence[int], device: torch.device, *, dtype: torch.dtype,
                 channels_last: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Return zeroed buffers for the running blended mean of the tile outputs and its weight sums (float32).

    Logits are kept in half precision, as nnU-Net keeps them; that halves the largest buffer of a many-class
    prediction (118 classes on a 3 mm CT: 651 -> 325 MB). Blended features stay float32, in the layout of the
    network's output: blending channels-last tiles into the usual layout transposed them (0.3 s per CT tile).
    """
    weights = torch.zeros(tuple(shape), dtype=torch.float32, device=device)
    if channels_last:
        return torch.zeros((*shape, channels), dtype=dtype, device=device).movedim(-1, 0), weights
    return torch.zeros((channels, *shape), dtype=dtype, device=device), weights


def blend(mean: torch.Tensor, values: torch.Tensor, ratio: torch.Tensor | float) -> None:
    """Move the running weighted ``mean`` towards ``values`` (float32) by ``ratio`` = weight / total.

    Keeping the weighted mean instead of the weighted sum gives the same result (sum / weights) while the stored
    numbers stay at the logits' scale, so half precision does not underflow where Gaussian weights are tiny
    (tile corners: ~1e-11); only logits beyond the half-precision range (65504) overflow, and are reported.
    A half-precision step is computed in float32 (mixed half/float arithmetic ran 2.4x slower on the CPU).
    """
    if mean.dtype == torch.float32:
        mean.lerp_(values, ratio)
    else:
        mean.copy_(mean.float().lerp_(values, ratio))


def average_in(mean: torch.Tensor, values: torch.Tensor, ratio: float) -> None:
    """Move ``mean`` towards ``values`` (same shape) by ``ratio``, a slab of the first spatial axis at a time, so that
    the float32 copies `blend` makes stay small (118 half-precision classes of a 3 mm CT: 650 MB each whole)."""
    step = max(1, AVERAGE_SLAB_VOXELS // math.prod(mean.shape[2:]))
    for start in range(0, mean.shape[1], step):
        blend(mean[:, start:start + step], values[:, start:start + step].float(), ratio)


def blend_tiles(mean: torch.Tensor, weights: torch.Tensor, outputs: torch.Tensor, starts: Sequence[Sequence[int]],
                gaussian: torch.Tensor, pads: Sequence[tuple[int, int]]) -> None:
    """Blend the ``(tiles, channels, *tile)`` outputs of the tiles at ``starts`` into ``mean``, tile after tile, as if
    each were blended alone; ``weights`` sums the Gaussian weights per voxel."""
    for start, out in zip(starts, outputs, strict=True):
        inside, target = tile_overlap(start, gaussian.shape, pads, weights.shape)
        weights[target] += gaussian[inside]
        blend(mean[(slice(None), *target)], out[(slice(None), *inside)], gaussian[inside] / weights[target])


def tile_overlap(start: Sequence[int], tile: Sequence[int], pads: Sequence[tuple[int, int]],
                 spatial: Sequence[int]) -> tuple[tuple[slice, ...], tuple[slice, ...]]:
    """Return the part of a tile (at ``start`` in the padded image) inside the image: its slices in the tile and in
    the image."""
    inside, target = [], []
    for s, t, (before, _), n in zip(start, tile, pads, spatial, strict=True):
        low, high = max(s, before), min(s + t, before + n)
        inside.append(slice(low - s, high - s))
        target.append(slice(low - before, high - before))
    return tuple(inside), tuple(target)
