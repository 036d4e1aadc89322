"""Separable 1D interpolation along one axis of a torch tensor (the kernel of resampling).

Sample positions follow the pixel-centre convention of skimage's ``resize`` and nnU-Net
(``source = (target + 0.5) * in / out - 0.5``) with edge clamping, so order 0 is nearest
neighbour, order 1 linear and order 3 Keys' cubic convolution (a = -0.5), which is
interpolating and third-order accurate.
"""

from __future__ import annotations

import torch

CUBIC_A = -0.5


def _cubic_weights(t: torch.Tensor) -> list[torch.Tensor]:
    # weights of the taps at offsets -1, 0, 1, 2 for fractional position t in [0, 1)
    a = CUBIC_A

    def near(x):  # |x| <= 1
        return ((a + 2) * x - (a + 3)) * x * x + 1

    def far(x):  # 1 < |x| < 2
        return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a

    return [far(1 + t), near(t), near(1 - t), far(2 - t)]


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
    if order == 3:
        weights = _cubic_weights(t)
        return [((base + offset).clamp(0, in_len - 1), w) for offset, w in zip((-1, 0, 1, 2), weights, strict=True)]
    raise ValueError(f"interpolation order must be 0, 1 or 3, got {order}")


def interpolation_matrix(in_len: int, out_len: int, *, order: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """Return the ``(out_len, in_len)`` float32 matrix that resizes a signal (rows sum to 1)."""
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
    if axis == x.ndim - 1 and x.is_floating_point():
        # gathers along the innermost axis are slow; a (banded) matrix product is fast
        matrix = interpolation_matrix(in_len, size, order=order, device=x.device).to(x.dtype)
        return torch.matmul(x, matrix.T)
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
