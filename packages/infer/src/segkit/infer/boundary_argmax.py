"""The argmax of linearly resampled logits, interpolated only where the winner is in doubt.

Linear (or nearest) interpolation makes each output value a convex combination of the ``2^d`` source
voxels around it (its corners). Where one class leads every other at all corners by more than rounding
can undo, it leads at the output voxel too, so that voxel takes the class without interpolating anything.
That holds away from label boundaries: for 85% of the 1.5 mm CT example's voxels, even with the barely
trained fixture model. At the remaining voxels only the classes that can win are interpolated: a class
whose largest corner value is below another class's smallest corner value cannot.

The result is the label map of resampling all classes, rounding back to the logits' precision (as nnU-Net
stores them) and taking the first largest class. The doubtful voxels are interpolated in float64, so they
round as the exact values do; a dense float32 resampling can differ from that where a value lies halfway
between two steps of half precision.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import torch

from segkit.planning.interpolation import taps


def linear_orders(orders: Sequence[int]) -> bool:
    """True when every axis interpolates with order 0 or 1 (a convex combination of corners)."""
    return all(order in (0, 1) for order in orders)


def boundary_argmax(logits: torch.Tensor, to_shape: Sequence[int], orders: Sequence[int], *,
                    chunk_values: int = 1 << 24) -> torch.Tensor:
    """Return the class index per voxel of ``logits`` resampled to ``to_shape`` (int64).

    Args:
        logits: ``(classes, *spatial)`` on the source grid (half precision or float32).
        to_shape: the target spatial shape.
        orders: interpolation order per spatial axis, each 0 or 1 (see `linear_orders`).
        chunk_values: about how many gathered logit values one step holds.
    """
    shape = tuple(int(s) for s in to_shape)
    axes = [_Taps.of(n, out, order, logits.device)
            for n, out, order in zip(logits.shape[1:], shape, orders, strict=True)]
    margin = _rounding_margin(logits)
    rows, best, lead = _rows_and_lead(logits)
    clear = torch.where(lead > margin, best, -1).to(torch.int16 if logits.shape[0] < 2 ** 15 else torch.int32)
    del best, lead
    low, high = _corner_range(clear.view(logits.shape[1:]), axes)
    labels = low.long()
    doubtful = torch.nonzero((low != high) | (low < 0))
    if len(doubtful):
        labels[tuple(doubtful.T)] = _decide(rows, doubtful, axes, margin, chunk_values)
    return labels


class _Taps:
    """Per output sample along one axis: the lower and upper source index and their weights."""

    def __init__(self, low: torch.Tensor, high: torch.Tensor, weight_high: torch.Tensor, size: int) -> None:
        self.low, self.high, self.size = low, high, size
        self.weights = (1 - weight_high, weight_high)

    @classmethod
    def of(cls, in_len: int, out_len: int, order: int, device: torch.device) -> _Taps:
        pairs = taps(in_len, out_len, order, device)
        if order == 0:
            (index, _), = pairs
            return cls(index, index, torch.zeros(out_len, dtype=torch.float64, device=device), in_len)
        (low, _), (high, weight_high) = pairs
        return cls(low, high, weight_high, in_len)


#: voxels per block of `_rows_and_lead` (118 half-precision classes: about 1 MB)
ROW_BLOCK = 4096


def _rows_and_lead(logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(source voxels, classes)`` rows of ``logits`` (a voxel's classes together), and per voxel the first largest
    class and by how much it leads the next (float32).

    A block of voxels at a time: the transposing copy runs twice as fast as one whole-array copy, and the lead is
    taken from the block while it is in cache.
    """
    classes = logits.shape[0]
    flat = logits.reshape(classes, -1)
    rows = torch.empty((flat.shape[1], classes), dtype=logits.dtype, device=logits.device)
    best = torch.empty(flat.shape[1], dtype=torch.int64, device=logits.device)
    lead = torch.full((flat.shape[1],), float("inf"), device=logits.device)
    for start in range(0, flat.shape[1], ROW_BLOCK):
        block = rows[start:start + ROW_BLOCK]
        block.copy_(flat[:, start:start + ROW_BLOCK].T)
        values = block.to(torch.float32, copy=True)  # changed below: never a view of the rows
        top = values.max(1)
        best[start:start + ROW_BLOCK] = top.indices
        if classes > 1:
            values.scatter_(1, top.indices[:, None], float("-inf"))
            lead[start:start + ROW_BLOCK] = top.values - values.amax(1)
    return rows, best, lead


def _rounding_margin(logits: torch.Tensor) -> float:
    # rounding back to the logits' dtype moves each value by at most half a step at the largest magnitude, so
    # a larger lead survives it; the rest is slack for float32 logits
    low, high = torch.aminmax(logits)
    largest = max(-float(low), float(high), 1e-30)
    step = torch.finfo(logits.dtype).eps * 2.0 ** math.floor(math.log2(largest))
    return 2 * step + 8 * torch.finfo(torch.float32).eps * largest


def _corner_range(clear: torch.Tensor, axes: list[_Taps]) -> tuple[torch.Tensor, torch.Tensor]:
    """Smallest and largest of ``clear`` over each output voxel's corners (separable, output-sized)."""
    low = high = clear
    for axis in reversed(range(len(axes))):  # the innermost axis's slow gathers on the smallest array: 0.3 -> 0.1 s
        t = axes[axis]
        low = torch.minimum(low.index_select(axis, t.low), low.index_select(axis, t.high))
        high = torch.maximum(high.index_select(axis, t.low), high.index_select(axis, t.high))
    return low, high


_KEPT = 16  # classes ranked per cell; a voxel with more candidates interpolates every class


def _decide(rows: torch.Tensor, voxels: torch.Tensor, axes: list[_Taps], margin: float,
            chunk_values: int) -> torch.Tensor:
    """Class index at the doubtful ``voxels`` (``(n, d)`` output indices), interpolating candidates only.

    The two classes with the largest corner values in a voxel's cell are interpolated first. The winner's value is at
    least the better of the two, so a class whose largest corner value is below that (by more than rounding can
    undo) cannot win; where no other class is left, the pair decides. The classes left are a prefix of the cell's
    ranking by largest corner value.
    """
    classes = rows.shape[1]
    strides = [math.prod(t.size for t in axes[a + 1:]) for a in range(len(axes))]
    cells, cell_of = torch.unique(_cell_index(voxels, axes, strides), return_inverse=True)
    reach, ranked = _ranked_reach(rows, cells, axes, strides, chunk_values)
    labels = torch.empty(len(voxels), dtype=torch.int64, device=rows.device)
    count = torch.empty(len(voxels), dtype=torch.int64, device=rows.device)
    # parts as small as a group of 16 classes: per voxel, its cell's ranked reach and its corners' offsets are held
    parts = torch.arange(len(voxels), device=rows.device).split(max(1, chunk_values // (_KEPT * 2 ** len(axes))))
    for part in parts:
        pair = ranked[cell_of[part], :2].sort(dim=1).values  # ascending, so that a tie goes to the lower class
        values = _interpolate(rows, voxels[part], pair, axes, strides)
        labels[part] = _first_largest(values, pair, rows.dtype)
        bound = values.max(1).values - margin
        count[part] = (reach[cell_of[part]] >= bound[:, None]).sum(1)
    count[count == ranked.shape[1]] = classes  # every ranked class can win: so may unranked ones
    # interpolate a power of two of candidates per voxel, so that voxels go in a few uniform groups
    width = torch.clamp(2 ** torch.ceil(torch.log2(count.float())), max=classes).long()
    width[width > ranked.shape[1]] = classes
    for k in torch.unique(width[width > 2]).tolist():
        group = torch.nonzero(width == k).flatten()
        for part in group.split(max(1, chunk_values // (k * 2 ** len(axes)))):
            if k == classes:
                chosen = torch.arange(classes, device=rows.device).expand(len(part), classes)
            else:
                chosen = ranked[cell_of[part], :k].sort(dim=1).values
            values = _interpolate(rows, voxels[part], chosen, axes, strides)
            labels[part] = _first_largest(values, chosen, rows.dtype)
    return labels


def _cell_index(voxels: torch.Tensor, axes: list[_Taps], strides: list[int]) -> torch.Tensor:
    # a voxel's cell: its lower corner; the cell spans that corner and the next source index on each axis
    return sum(t.low[voxels[:, a]] * s for a, (t, s) in enumerate(zip(axes, strides, strict=True)))


def _ranked_reach(rows: torch.Tensor, cells: torch.Tensor, axes: list[_Taps], strides: list[int],
                  chunk_values: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per cell, the classes with the largest corner values, and those values (both ``(cells, kept)``, descending)."""
    corners, classes = 2 ** len(axes), rows.shape[1]
    kept = min(_KEPT, classes)
    reach = torch.empty(len(cells), kept, dtype=torch.float32, device=rows.device)
    ranked = torch.empty(len(cells), kept, dtype=torch.int64, device=rows.device)
    for part in torch.arange(len(cells), device=rows.device).split(max(1, chunk_values // (classes * corners))):
        values = rows.index_select(0, _cell_corners(cells[part], axes, strides).flatten()).view(-1, corners, classes)
        reach[part], ranked[part] = values.amax(1).float().topk(kept, dim=1)
    return reach, ranked


def _cell_corners(cells: torch.Tensor, axes: list[_Taps], strides: list[int]) -> torch.Tensor:
    index = [(cells // s) % t.size for t, s in zip(axes, strides, strict=True)]
    offsets = [(i * s, torch.clamp(i + 1, max=t.size - 1) * s) for i, t, s in zip(index, axes, strides, strict=True)]
    return torch.stack([sum(choice) for choice in itertools.product(*offsets)], dim=1)


def _interpolate(rows: torch.Tensor, voxels: torch.Tensor, classes: torch.Tensor, axes: list[_Taps],
                 strides: list[int]) -> torch.Tensor:
    """The values of ``classes`` (``(n, k)``) interpolated at ``voxels``, in float64."""
    # float64, as scipy's zoom (so nnU-Net) interpolates: the sum is exact enough that a value halfway between
    # two steps of the logits' precision rounds as the exact value does
    total = torch.zeros(classes.shape, dtype=torch.float64, device=rows.device)
    per_axis = [((t.low[v] * s, t.weights[0][v]), (t.high[v] * s, t.weights[1][v]))
                for t, s, v in zip(axes, strides, voxels.T, strict=True)]
    for corner in itertools.product(*per_axis):
        source = sum(offset for offset, _ in corner)
        weight = math.prod(w for _, w in corner)
        total.addcmul_(rows.take(source[:, None] * rows.shape[1] + classes).double(), weight[:, None])
    return total


def _first_largest(values: torch.Tensor, classes: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """The class of ``classes`` (``(n, k)``, ascending) whose value is largest after rounding to ``dtype``; the
    first one on a tie."""
    best = values.to(dtype).max(1).indices
    return classes.gather(1, best[:, None]).squeeze(1)
