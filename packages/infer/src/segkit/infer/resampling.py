"""Resampling network-grid predictions back to the input grid, built on segkit.planning.resampling.

Label maps of linear (or nearest) resampling interpolate logits only near label boundaries
(`boundary_argmax`). Region maps, label maps of cubic resampling and probabilities are exported a slab of
output rows at a time (`SlabResampler`), with all classes of the slab resampled together and used right away,
so the resampled class channels of the whole grid (gigabytes for the 118 classes of a whole-body CT) never
exist at once.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import torch
import torch.nn.functional as F

from segkit.infer.boundary_argmax import boundary_argmax, linear_orders
from segkit.planning.interpolation import interpolation_matrix, resize_axis
from segkit.planning.plans import Resampling
from segkit.planning.resampling import resample_labels, separate_z_axis


def _common(to_shape: Sequence[int], from_spacing: Sequence[float], to_spacing: Sequence[float],
            options: Resampling) -> dict:
    return {"to_shape": tuple(int(s) for s in to_shape), "from_spacing": tuple(from_spacing),
            "to_spacing": tuple(to_spacing), "order_z": options.order_z, "separate_z": options.force_separate_z}


def _slab_axis(to_shape: Sequence[int], from_spacing: Sequence[float], to_spacing: Sequence[float],
               options: Resampling) -> int:
    # walk along the separate z axis when there is one, else along the first axis
    z_axis = separate_z_axis(from_spacing, to_spacing, force=options.force_separate_z)
    return 0 if z_axis is None or len(to_shape) < 2 else z_axis


def _axis_orders(to_shape: Sequence[int], from_spacing: Sequence[float], to_spacing: Sequence[float],
                 options: Resampling) -> tuple[int, ...]:
    # the interpolation order of each axis: a separate z axis has its own (order_z)
    z_axis = separate_z_axis(from_spacing, to_spacing, force=options.force_separate_z)
    return tuple(options.order_z if a == z_axis and len(to_shape) > 1 else options.order_probabilities
                 for a in range(len(to_shape)))


def _resize_plane(x: torch.Tensor, plane: tuple[int, ...], orders: tuple[int, ...]) -> torch.Tensor:
    # x: (rows, classes, *plane_in) float32
    if set(orders) == {1} and len(plane) in (1, 2):
        if len(plane) == 2:
            x = x.contiguous(memory_format=torch.channels_last)  # vectorised over classes
        return F.interpolate(x, size=plane, mode="bilinear" if len(plane) == 2 else "linear", align_corners=False)
    for axis, (size, order) in enumerate(zip(plane, orders, strict=True)):
        x = resize_axis(x, axis + 2, size, order=order)
    return x


class SlabResampler:
    """Resample all classes of ``(classes, *spatial)`` logits to ``to_shape``, any range of output rows along one
    axis at a time, so that the resampled classes of the whole grid never exist at once.

    ``axis`` defaults to the separate z axis if there is one, else the first axis.
    """

    def __init__(self, logits: torch.Tensor, to_shape: Sequence[int], *, from_spacing: Sequence[float],
                 to_spacing: Sequence[float], options: Resampling, axis: int | None = None) -> None:
        shape = tuple(int(s) for s in to_shape)
        orders = _axis_orders(shape, from_spacing, to_spacing, options)
        self.axis = _slab_axis(shape, from_spacing, to_spacing, options) if axis is None else axis
        self.length = shape[self.axis]
        self.plane = tuple(s for a, s in enumerate(shape) if a != self.axis)
        self.plane_orders = tuple(o for a, o in enumerate(orders) if a != self.axis)
        self.identity = tuple(logits.shape[1:]) == shape
        self.matrix = interpolation_matrix(logits.shape[self.axis + 1], self.length, order=orders[self.axis],
                                           device=logits.device)
        self.source = logits.movedim(self.axis + 1, 0)  # (in rows, classes, *plane_in)

    def rows_within(self, budget_bytes: int) -> int:
        """How many output rows of all classes fit in ``budget_bytes`` of float32 (at least 1)."""
        return max(1, budget_bytes // (self.source.shape[1] * math.prod(self.plane) * 4))

    def rows(self, start: int, stop: int) -> torch.Tensor:
        """Float32 ``(stop - start, classes, *other axes)`` logits of output rows ``start:stop`` (a new tensor)."""
        if self.identity:
            return self.source[start:stop].to(torch.float32, copy=True)
        weights = self.matrix[start:stop]
        used = torch.nonzero(weights.abs().sum(0)).flatten()
        lo, hi = int(used[0]), int(used[-1]) + 1
        part = self.source[lo:hi].float()
        blended = (weights[:, lo:hi] @ part.reshape(hi - lo, -1)).view(-1, *part.shape[1:])
        return _resize_plane(blended, self.plane, self.plane_orders)


def resampled_slabs(logits: torch.Tensor, to_shape: Sequence[int], *, from_spacing: Sequence[float],
                    to_spacing: Sequence[float], options: Resampling,
                    budget_bytes: int = 1 << 28) -> Iterator[tuple[slice, int, torch.Tensor]]:
    """Resample all classes of ``(classes, *spatial)`` logits a slab of output rows at a time (`SlabResampler`).

    Yields ``(rows, axis, resampled)``: the slab is ``rows`` of ``to_shape`` along ``axis``, and
    ``resampled`` its float32 ``(n, classes, *other axes)`` logits. All classes of a voxel come together
    (an argmax needs nothing else), and only about ``budget_bytes`` of them at once.
    """
    resampler = SlabResampler(logits, to_shape, from_spacing=from_spacing, to_spacing=to_spacing, options=options)
    step = resampler.rows_within(budget_bytes)
    for start in range(0, resampler.length, step):
        stop = min(start + step, resampler.length)
        yield slice(start, stop), resampler.axis, resampler.rows(start, stop)


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
