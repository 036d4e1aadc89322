"""Full-volume validation after training: a plain Gaussian-weighted sliding window and per-case Dice.

This is train's own small sliding window (segkit.train must not import segkit.infer); it predicts in the
preprocessed grid and scores against the preprocessed labels.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F


def window_starts(size: int, tile: int, step: float = 0.5) -> list[int]:
    """Evenly spaced tile starts covering `size` with overlap (nnU-Net's rule: step = tile * `step` at most)."""
    if size <= tile:
        return [0]
    count = int(np.ceil((size - tile) / (tile * step))) + 1
    return [int(round(i * (size - tile) / (count - 1))) for i in range(count)]


def gaussian_weights(tile: tuple[int, ...], sigma_scale: float = 0.125) -> torch.Tensor:
    """Gaussian importance map of `tile` size (max 1, no zeros)."""
    grids = torch.meshgrid(*[torch.arange(t, dtype=torch.float32) for t in tile], indexing="ij")
    sq = sum(((g - (t - 1) / 2) / (t * sigma_scale)) ** 2 for g, t in zip(grids, tile, strict=False))
    w = torch.exp(-0.5 * sq)
    w = w / w.max()
    return w.clamp_min(w[w > 0].min())


@torch.no_grad()
def sliding_window(predict: Callable[[torch.Tensor], torch.Tensor], image: torch.Tensor, tile: tuple[int, ...],
                   num_outputs: int, *, tiles_per_batch: int = 4) -> torch.Tensor:
    """Return (num_outputs, *spatial) Gaussian-averaged logits of `predict` over overlapping tiles.

    Args:
        predict: maps (N, C, *tile) to (N, num_outputs, *tile).
        image: (C, *spatial); smaller than `tile` along an axis = zero-padded, then cropped back.
        tile: tile size (the training patch size).
        num_outputs: output channels.
        tiles_per_batch: tiles per `predict` call.
    """
    spatial = tuple(image.shape[1:])
    pad = [max(0, t - s) for s, t in zip(spatial, tile, strict=False)]
    padding = []
    for p in reversed(pad):
        padding += [p // 2, p - p // 2]
    padded = F.pad(image, padding) if any(pad) else image
    shape = tuple(padded.shape[1:])
    weights = gaussian_weights(tile).to(image.device)
    acc = torch.zeros((num_outputs, *shape), device=image.device)
    norm = torch.zeros(shape, device=image.device)
    regions = [tuple(slice(s, s + t) for s, t in zip(starts, tile, strict=False))
               for starts in itertools.product(*[window_starts(s, t) for s, t in zip(shape, tile, strict=False)])]
    for first in range(0, len(regions), tiles_per_batch):
        group = regions[first:first + tiles_per_batch]
        outs = predict(torch.stack([padded[(slice(None), *region)] for region in group])).float()
        for region, out in zip(group, outs, strict=False):
            acc[(slice(None), *region)] += out * weights
            norm[region] += weights
    acc /= norm
    crop = tuple(slice(p // 2, p // 2 + s) for p, s in zip(pad, spatial, strict=False))
    return acc[(slice(None), *crop)]


def dice_per_class(pred: np.ndarray, truth: np.ndarray, classes: list[int | tuple[int, ...]], *,
                   ignore_label: int | None = None) -> dict[str, float | None]:
    """Dice of each class or region (a tuple of label values), keyed by its string form.

    A class absent from both maps gets None; voxels equal to `ignore_label` are left out.
    """
    mask = truth != ignore_label if ignore_label is not None else np.ones(truth.shape, bool)
    out: dict[str, float | None] = {}
    for c in classes:
        values = list(c) if isinstance(c, tuple) else [c]
        p, t = np.isin(pred, values) & mask, np.isin(truth, values) & mask
        denom = int(p.sum() + t.sum())
        key = str(c) if not isinstance(c, tuple) else str(list(c))
        out[key] = None if denom == 0 else 2.0 * int((p & t).sum()) / denom
    return out
