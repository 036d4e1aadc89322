"""Resampling network-grid predictions back to the input grid, built on segkit.planning.resampling.

Logits are resampled a few classes at a time with a running maximum, so exporting a label map never holds
all resampled class channels at once (118 classes of a whole-body CT would need gigabytes).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from segkit.planning.plans import Resampling
from segkit.planning.resampling import resample_labels, resample_logits


def _common(to_shape: Sequence[int], from_spacing: Sequence[float], to_spacing: Sequence[float],
            options: Resampling) -> dict:
    return {"to_shape": tuple(int(s) for s in to_shape), "from_spacing": tuple(from_spacing),
            "to_spacing": tuple(to_spacing), "order_z": options.order_z, "separate_z": options.force_separate_z}


def logits_to_grid(logits: torch.Tensor, to_shape: Sequence[int], *, from_spacing: Sequence[float],
                   to_spacing: Sequence[float], options: Resampling) -> torch.Tensor:
    """Resample ``(classes, *spatial)`` logits to ``to_shape`` (no-op when the shape is unchanged)."""
    if tuple(logits.shape[1:]) == tuple(to_shape):
        return logits
    return resample_logits(logits, order=options.order_probabilities,
                           **_common(to_shape, from_spacing, to_spacing, options))


def argmax_on_grid(logits: torch.Tensor, to_shape: Sequence[int], *, from_spacing: Sequence[float],
                   to_spacing: Sequence[float], options: Resampling, chunk: int = 8) -> torch.Tensor:
    """Return the class index of the largest resampled logit per voxel, ``to_shape`` int64.

    Args:
        logits: ``(classes, *spatial)`` on the network grid.
        to_shape: the target spatial shape.
        from_spacing: spacing of ``logits`` (mm).
        to_spacing: spacing of the target grid (mm).
        options: interpolation orders (``order_probabilities``, ``order_z``, ``force_separate_z``).
        chunk: classes resampled at once.
    """
    if tuple(logits.shape[1:]) == tuple(to_shape):
        return logits.argmax(0)
    shape = tuple(int(s) for s in to_shape)
    best = torch.full(shape, float("-inf"), device=logits.device)
    labels = torch.zeros(shape, dtype=torch.int64, device=logits.device)
    for first in range(0, logits.shape[0], chunk):
        part = logits_to_grid(logits[first:first + chunk], shape, from_spacing=from_spacing, to_spacing=to_spacing,
                              options=options)
        value, index = part.float().max(dim=0)
        better = value > best
        best = torch.where(better, value, best)
        labels = torch.where(better, index + first, labels)
    return labels


def paint_regions(logits: torch.Tensor, first: int = 0, labels: torch.Tensor | None = None, *,
                  threshold: float = 0.0) -> torch.Tensor:
    """Class indices of region logits: output c paints index ``first + c + 1`` where its sigmoid exceeds 0.5.

    Later regions paint over earlier ones (nnU-Net's ``regions_class_order``); 0 is background. Pass
    probabilities with ``threshold=0.5`` (sigmoid(x) > 0.5 <=> x > 0).
    """
    if labels is None:
        labels = torch.zeros(logits.shape[1:], dtype=torch.int64, device=logits.device)
    for channel in range(logits.shape[0]):
        labels[logits[channel] > threshold] = first + channel + 1
    return labels


def regions_on_grid(logits: torch.Tensor, to_shape: Sequence[int], *, from_spacing: Sequence[float],
                    to_spacing: Sequence[float], options: Resampling, chunk: int = 8) -> torch.Tensor:
    """Resample region logits a few at a time and `paint_regions` them on ``to_shape`` (int64 class indices)."""
    labels = torch.zeros(tuple(int(s) for s in to_shape), dtype=torch.int64, device=logits.device)
    for first in range(0, logits.shape[0], chunk):
        part = logits_to_grid(logits[first:first + chunk], to_shape, from_spacing=from_spacing,
                              to_spacing=to_spacing, options=options)
        paint_regions(part, first, labels)
    return labels


def labels_to_grid(labels: torch.Tensor, to_shape: Sequence[int], *, from_spacing: Sequence[float],
                   to_spacing: Sequence[float], options: Resampling) -> torch.Tensor:
    """Resample an ``(*spatial)`` label map to ``to_shape`` by nearest neighbour (fast export)."""
    return resample_labels(labels, order=0, **_common(to_shape, from_spacing, to_spacing, options))
