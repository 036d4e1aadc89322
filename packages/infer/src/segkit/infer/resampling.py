"""Resampling network-grid predictions back to the input grid, built on segkit.planning.resampling.

Label maps of linear (or nearest) resampling interpolate logits only near label boundaries
(`boundary_argmax`). Region maps, and label maps of cubic resampling, are exported a slab of output rows at
a time, with all classes of the slab resampled together and decided right away, so the resampled class
channels of the whole grid (gigabytes for the 118 classes of a whole-body CT) never exist at once.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import torch
import torch.nn.functional as F

from segkit.infer.boundary_argmax import boundary_argmax, linear_orders
from segkit.planning.interpolation import interpolation_matrix, resize_axis
from segkit.planning.plans import Resampling
from segkit.planning.resampling import resample_labels, resample_logits, separate_z_axis


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


def _slab_axis(to_shape: Sequence[int], from_spacing: Sequence[float], to_spacing: Sequence[float],
               options: Resampling) -> tuple[int, int]:
    # walk along the separate z axis when there is one (its own order), else along the first axis
    z_axis = separate_z_axis(from_spacing, to_spacing, force=options.force_separate_z)
    if z_axis is None or len(to_shape) < 2:
        return 0, options.order_probabilities
    return z_axis, options.order_z


def _axis_orders(to_shape: Sequence[int], from_spacing: Sequence[float], to_spacing: Sequence[float],
                 options: Resampling) -> tuple[int, ...]:
    # the interpolation order of each axis: the slab axis has its own (order_z on a separate z axis)
    axis, order_axis = _slab_axis(to_shape, from_spacing, to_spacing, options)
    return tuple(order_axis if a == axis else options.order_probabilities for a in range(len(to_shape)))


def _resize_plane(x: torch.Tensor, plane: tuple[int, ...], order: int) -> torch.Tensor:
    # x: (rows, classes, *plane_in) float32
    if order == 1 and len(plane) in (1, 2):
        if len(plane) == 2:
            x = x.contiguous(memory_format=torch.channels_last)  # vectorised over classes
        return F.interpolate(x, size=plane, mode="bilinear" if len(plane) == 2 else "linear", align_corners=False)
    for axis, size in enumerate(plane):
        x = resize_axis(x, axis + 2, size, order=order)
    return x


def resampled_slabs(logits: torch.Tensor, to_shape: Sequence[int], *, from_spacing: Sequence[float],
                    to_spacing: Sequence[float], options: Resampling,
                    budget_bytes: int = 1 << 28) -> Iterator[tuple[slice, int, torch.Tensor]]:
    """Resample all classes of ``(classes, *spatial)`` logits a slab of output rows at a time.

    Yields ``(rows, axis, resampled)``: the slab is ``rows`` of ``to_shape`` along ``axis``, and
    ``resampled`` its float32 ``(n, classes, *other axes)`` logits. All classes of a voxel come together
    (an argmax needs nothing else), and only about ``budget_bytes`` of them at once.
    """
    shape = tuple(int(s) for s in to_shape)
    axis, order_axis = _slab_axis(shape, from_spacing, to_spacing, options)
    matrix = interpolation_matrix(logits.shape[axis + 1], shape[axis], order=order_axis, device=logits.device)
    source = logits.movedim(axis + 1, 0)  # (in rows, classes, *plane_in)
    plane = tuple(s for a, s in enumerate(shape) if a != axis)
    step = max(1, budget_bytes // (logits.shape[0] * math.prod(plane) * 4))
    for start in range(0, shape[axis], step):
        weights = matrix[start:start + step]
        used = torch.nonzero(weights.abs().sum(0)).flatten()
        lo, hi = int(used[0]), int(used[-1]) + 1
        part = source[lo:hi].float()
        blended = (weights[:, lo:hi] @ part.reshape(hi - lo, -1)).view(-1, *part.shape[1:])
        yield slice(start, start + len(weights)), axis, _resize_plane(blended, plane, options.order_probabilities)


def argmax_on_grid(logits: torch.Tensor, to_shape: Sequence[int], *, from_spacing: Sequence[float],
                   to_spacing: Sequence[float], options: Resampling) -> torch.Tensor:
    """Return the class index of the largest resampled logit per voxel, ``to_shape`` int64.

    Args:
        logits: ``(classes, *spatial)`` on the network grid.
        to_shape: the target spatial shape.
        from_spacing: spacing of ``logits`` (mm).
        to_spacing: spacing of the target grid (mm).
        options: interpolation orders (``order_probabilities``, ``order_z``, ``force_separate_z``).
    """
    if tuple(logits.shape[1:]) == tuple(to_shape):
        return best_class(logits, 0)
    orders = _axis_orders(to_shape, from_spacing, to_spacing, options)
    if linear_orders(orders):
        return boundary_argmax(logits, to_shape, orders)
    labels = torch.empty(tuple(int(s) for s in to_shape), dtype=torch.int64, device=logits.device)
    for rows, axis, resampled in resampled_slabs(logits, to_shape, from_spacing=from_spacing,
                                                 to_spacing=to_spacing, options=options):
        # nnU-Net keeps resampled logits in the precision they were accumulated in (half); deciding on the
        # same rounded values resolves near-ties as it does (the first class wins a tie)
        labels.movedim(axis, 0)[rows] = best_class(resampled.to(logits.dtype), 1)
    return labels


def best_class(scores: torch.Tensor, dim: int) -> torch.Tensor:
    """Index of the largest score along ``dim``, the first one on ties (``argmax``'s result).

    ``max(dim).indices`` gives the same indices and runs 4-7x faster than ``argmax`` on half-precision CPU
    tensors (118 classes of a CT: 0.64 s -> 0.17 s).
    """
    return scores.max(dim).indices


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
                    to_spacing: Sequence[float], options: Resampling) -> torch.Tensor:
    """Resample region logits a slab at a time and `paint_regions` them on ``to_shape`` (int64 class indices)."""
    labels = torch.zeros(tuple(int(s) for s in to_shape), dtype=torch.int64, device=logits.device)
    for rows, axis, resampled in resampled_slabs(logits, to_shape, from_spacing=from_spacing,
                                                 to_spacing=to_spacing, options=options):
        paint_regions(resampled.movedim(1, 0), 0, labels.movedim(axis, 0)[rows])
    return labels


def labels_to_grid(labels: torch.Tensor, to_shape: Sequence[int], *, from_spacing: Sequence[float],
                   to_spacing: Sequence[float], options: Resampling) -> torch.Tensor:
    """Resample an ``(*spatial)`` label map to ``to_shape`` by nearest neighbour (fast export)."""
    return resample_labels(labels, order=0, **_common(to_shape, from_spacing, to_spacing, options))
