"""Separable 1D interpolation along one axis of a torch tensor (the kernel of resampling).

Sample positions follow the pixel-centre convention of skimage's ``resize`` and nnU-Net
(``source = (target + 0.5) * in / out - 0.5``) with edge clamping. Order 0 is nearest
neighbour, order 1 linear, and order 3 the interpolating cubic B-spline that skimage's
``resize`` (and so nnU-Net) uses: scipy's ``zoom`` with edge extension. A B-spline sample
depends on every input sample (through the spline prefilter), so order 3 is applied as a
dense ``(out, in)`` matrix product, the matrix taken from scipy itself.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch
from scipy import ndimage


def taps(in_len: int, out_len: int, order: int, device: torch.device) -> list[tuple[torch.Tensor, torch.Tensor | None]]:
    """Return, per tap, the source index and weight (None for nearest) of every output sample."""
    position = (torch.arange(out_len, device=device, dtype=torch.float64) + 0.5) * (in_len / out_len) - 0.5
    if order == 0:
        index = torch.floor(position + 0.5).long().clamp_(0, in_len - 1)
        return [(index, None)]
    base = torch.floor(position)
    t = position - base
    base = base.long()
    if order == 1:
        return [(base.clamp(0, in_len - 1), 1 - t), ((base + 1).clamp(0, in_len - 1), t)]
    raise ValueError(f"interpolation taps exist for order 0 or 1, got {order}")


#: B-spline weights below this are dropped: their products with any input above 1e-18 stay normal float32 numbers
NEGLIGIBLE_WEIGHT = 1e-20


@lru_cache(maxsize=64)
def _bspline_matrix(in_len: int, out_len: int) -> torch.Tensor:
    # column j is scipy's zoom of the unit impulse at j: exact by linearity and separability
    impulses = np.eye(in_len)
    matrix = ndimage.zoom(impulses, (out_len / in_len, 1.0), order=3, mode="nearest", grid_mode=True)
    if matrix.shape != (out_len, in_len):
        raise ValueError(f"cannot build a {in_len} -> {out_len} B-spline matrix")
    # the spline's weights fall by a factor 0.27 per sample; far below float32's resolution they change no sum
    # but slow the product down 10x as denormal numbers (a 244 -> 122 CT axis: 0.27 -> 0.02 s)
    matrix[np.abs(matrix) < NEGLIGIBLE_WEIGHT] = 0.0
    return torch.from_numpy(matrix)


def interpolation_matrix(in_len: int, out_len: int, *, order: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """Return the ``(out_len, in_len)`` float32 matrix that resizes a signal (rows sum to 1)."""
    if order == 3:
        return _bspline_matrix(in_len, out_len).to(device=device, dtype=torch.float32)
    matrix = torch.zeros(out_len, in_len, dtype=torch.float64, device=device)
    rows = torch.arange(out_len, device=device)
    for index, weight in taps(in_len, out_len, order, torch.device(device)):
        values = torch.ones(out_len, dtype=torch.float64, device=device) if weight is None else weight
        matrix.index_put_((rows, index), values, accumulate=True)
    return matrix.float()


def resize_axis(x: torch.Tensor, axis: int, size: int, *, order: int) -> torch.Tensor:
    """Resize ``x`` along ``axis`` to ``size`` samples with interpolation ``order`` (0, 1 or 3).

    Args:
        x: float tensor of any shape (integer tensors only with order 0).
        axis: the axis to resize.
        size: new length of that axis.
        order: 0 nearest, 1 linear, 3 cubic.

    Returns:
        A new tensor (or ``x`` itself when the length is unchanged).
    """
    axis = axis % x.ndim
    in_len = x.shape[axis]
    if in_len == size:
        return x
    if x.is_floating_point() and (order == 3 or axis == x.ndim - 1):
        # order 3 needs the dense matrix; along the innermost axis gathers are slow and a
        # (banded) matrix product is fast
        matrix = interpolation_matrix(in_len, size, order=order, device=x.device).to(x.dtype)
        if axis == x.ndim - 1:
            return torch.matmul(x, matrix.T)
        lead, trail = math.prod(x.shape[:axis]), math.prod(x.shape[axis + 1 :])
        out = torch.matmul(matrix, x.reshape(lead, in_len, trail))
        return out.reshape(*x.shape[:axis], size, *x.shape[axis + 1 :])
    if axis == x.ndim - 1:
        return resize_axis(x.movedim(axis, 0).contiguous(), 0, size, order=order).movedim(0, axis)
    return apply_taps(x, axis, taps(in_len, size, order, x.device))


def apply_taps(x: torch.Tensor, axis: int, weights: list[tuple[torch.Tensor, torch.Tensor | None]]) -> torch.Tensor:
    """Return ``sum_t weight_t * x.index_select(axis, index_t)`` (the output length is the taps' length)."""
    axis = axis % x.ndim
    if axis == x.ndim - 1 and x.ndim > 1:
        # gathers along the innermost axis are slow: gather along the outermost instead
        return apply_taps(x.movedim(axis, 0).contiguous(), 0, weights).movedim(0, axis)
    shape = [1] * x.ndim
    shape[axis] = -1
    out = None
    for index, weight in weights:
        picked = x.index_select(axis, index)
        if weight is None:
            return picked
        term = picked.mul_(weight.to(x.dtype).view(shape))
        out = term if out is None else out.add_(term)
    return out


def window_taps(
    weights: list[tuple[torch.Tensor, torch.Tensor | None]], lo: int, hi: int
) -> tuple[slice, list[tuple[torch.Tensor, torch.Tensor]]]:
    """Restrict taps to a source window ``[lo, hi)`` that holds all nonzero input.

    Returns the output rows the window influences and their taps, indexing into the window
    (taps outside it get weight 0), so a cropped signal resizes exactly like the full one.
    """
    inside = []
    for index, weight in weights:
        w = torch.ones_like(index, dtype=torch.float64) if weight is None else weight
        inside.append(((index >= lo) & (index < hi) & (w != 0), index, w))
    hit = torch.nonzero(torch.stack([m for m, _, _ in inside]).any(0)).flatten()
    rows = slice(int(hit[0]), int(hit[-1]) + 1)
    restricted = [((index[rows] - lo).clamp(0, hi - lo - 1), w[rows] * mask[rows]) for mask, index, w in inside]
    return rows, restricted
