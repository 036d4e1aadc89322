"""Resampling images, label maps and logits between grids, with torch (CPU threads or a GPU).

All functions take ``(c, i, j, k)`` arrays or tensors (labels also ``(i, j, k)``) and return
torch tensors on ``device``. The target grid is either a spacing (the shape is rounded from
it) or an explicit shape; resampling back with ``to_shape`` = the original shape lands on
the original grid exactly, so preprocessing and inference share these functions.

Anisotropic data (one axis over 3x coarser than the finest) is handled as nnU-Net does:
interpolation in-plane only, and ``order_z`` (default nearest) along the coarse axis.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from scipy.ndimage import find_objects

from segkit.planning.errors import PreprocessingError
from segkit.planning.interpolation import apply_taps, resize_axis, taps, window_taps
from segkit.planning.spacing import ANISOTROPY_THRESHOLD, compute_new_shape

Array = np.ndarray | torch.Tensor


def separate_z_axis(
    from_spacing: Sequence[float] | None,
    to_spacing: Sequence[float] | None,
    *,
    force: bool | None = None,
) -> int | None:
    """Return the coarse axis to treat separately, or None (nnU-Net's rule).

    The source spacing decides first, then the target spacing: an axis is separate when the
    largest spacing is over 3x the smallest and exactly one axis has it. ``force=False``
    never separates; ``force=True`` uses the source's coarsest axis.
    """
    if force is False:
        return None
    for spacing in (from_spacing, to_spacing):
        if spacing is None:
            continue
        values = np.asarray(spacing, dtype=np.float64)
        if force or values.max() / values.min() > ANISOTROPY_THRESHOLD:
            coarse = np.flatnonzero(values == values.max())
            return int(coarse[0]) if len(coarse) == 1 else None
    return None


def _as_tensor(array: Array, device: torch.device | str | None) -> torch.Tensor:
    tensor = array if isinstance(array, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(array))
    return tensor.to(device) if device is not None else tensor


def _target_shape(spatial, from_spacing, to_spacing, to_shape) -> tuple[int, ...]:
    if to_shape is not None:
        shape = tuple(int(s) for s in to_shape)
    elif from_spacing is not None and to_spacing is not None:
        shape = compute_new_shape(spatial, from_spacing, to_spacing)
    else:
        raise PreprocessingError("resampling needs to_shape, or both from_spacing and to_spacing")
    if len(shape) != len(spatial) or min(shape) < 1:
        raise PreprocessingError(f"cannot resample shape {tuple(spatial)} to {shape}")
    return shape


def _resize(x: torch.Tensor, shape: Sequence[int], *, order: int, order_z: int, z_axis: int | None) -> torch.Tensor:
    # x: (c, *spatial)
    spatial = tuple(x.shape[1:])
    if order == 1 and x.is_floating_point() and len(shape) in (2, 3):
        return _resize_linear(x, tuple(shape), order_z=order_z, z_axis=z_axis)
    # separable passes; shrink the most-reduced axes first so later passes touch fewer voxels
    axes = sorted(range(len(shape)), key=lambda a: shape[a] / spatial[a])
    for axis in axes:
        x = resize_axis(x, axis + 1, shape[axis], order=order_z if axis == z_axis else order)
    return x


def _resize_linear(x: torch.Tensor, shape: tuple[int, ...], *, order_z: int, z_axis: int | None) -> torch.Tensor:
    # torch's (bi/tri)linear interpolation with align_corners=False samples exactly where
    # `interpolation.taps` does (pixel centres, edge clamping), in one fused pass
    spatial = tuple(x.shape[1:])
    mode = "trilinear" if len(shape) == 3 else "bilinear"
    if z_axis is None or order_z == 1 or spatial[z_axis] == shape[z_axis]:
        return F.interpolate(x[None], size=shape, mode=mode, align_corners=False)[0]
    # in-plane linear, then order_z along the coarse axis: the coarse axis becomes the batch axis
    plane = tuple(s for a, s in enumerate(shape) if a != z_axis)
    batched = x.movedim(z_axis + 1, 0)
    planar = F.interpolate(batched, size=plane, mode="bilinear" if len(plane) == 2 else "linear", align_corners=False)
    return resize_axis(planar, 0, shape[z_axis], order=order_z).movedim(0, z_axis + 1).contiguous()


def resample_image(
    image: Array,
    *,
    to_shape: Sequence[int] | None = None,
    from_spacing: Sequence[float] | None = None,
    to_spacing: Sequence[float] | None = None,
    order: int = 3,
    order_z: int = 0,
    separate_z: bool | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Resample an image with cubic B-spline interpolation, clipped to its value range (as nnU-Net).

    Args:
        image: ``(c, i, j, k)`` array or tensor.
        to_shape: target spatial shape; or give ``from_spacing`` and ``to_spacing`` (mm).
        from_spacing: spacing of ``image`` (also decides separate-z handling).
        to_spacing: target spacing.
        order: in-plane interpolation order (0, 1 or 3).
        order_z: order along the coarse axis when it is handled separately.
        separate_z: None decides from the spacings (nnU-Net's rule); True/False forces it.
        device: where to compute (default: where ``image`` is; numpy -> CPU).

    Returns:
        float32 tensor ``(c, *target shape)`` on ``device``.

    Example:
        >>> resample_image(np.ones((1, 4, 4, 2)), to_shape=(8, 8, 4)).shape
        torch.Size([1, 8, 8, 4])
    """
    x = _as_tensor(image, device).float()
    shape = _target_shape(x.shape[1:], from_spacing, to_spacing, to_shape)
    z_axis = separate_z_axis(from_spacing, to_spacing, force=separate_z)
    if tuple(x.shape[1:]) == shape:
        return x.clone() if x is image else x
    out = torch.empty((x.shape[0], *shape), dtype=x.dtype, device=x.device)
    for c in range(x.shape[0]):
        channel = x[c : c + 1]
        if order > 1:
            out[c : c + 1] = _resize_clipped(channel, shape, order=order, order_z=order_z, z_axis=z_axis)
        else:
            out[c : c + 1] = _resize(channel, shape, order=order, order_z=order_z, z_axis=z_axis)
    return out


def _resize_clipped(x: torch.Tensor, shape: Sequence[int], *, order: int, order_z: int, z_axis: int | None):
    # A cubic spline overshoots; skimage's resize clips its output to the input's range. With a
    # separate z axis nnU-Net resizes (and so clips) slice by slice before resampling along z.
    if z_axis is None:
        return _resize(x, shape, order=order, order_z=order_z, z_axis=None).clamp_(x.min(), x.max())
    planar_shape = [*shape]
    planar_shape[z_axis] = x.shape[z_axis + 1]
    planar = _resize(x, planar_shape, order=order, order_z=order_z, z_axis=None)
    plane_dims = tuple(d for d in range(x.ndim) if d != z_axis + 1)
    planar = planar.clamp(x.amin(dim=plane_dims, keepdim=True), x.amax(dim=plane_dims, keepdim=True))
    return resize_axis(planar, z_axis + 1, shape[z_axis], order=order_z)


def resample_logits(
    logits: Array,
    *,
    to_shape: Sequence[int] | None = None,
    from_spacing: Sequence[float] | None = None,
    to_spacing: Sequence[float] | None = None,
    order: int = 1,
    order_z: int = 0,
    separate_z: bool | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Resample logits or probabilities ``(c, i, j, k)`` (linear by default, no clipping).

    Arguments as `resample_image`. Returns float32 ``(c, *target shape)`` on ``device``
    (half-precision input stays half precision).
    """
    x = _as_tensor(logits, device)
    if not x.is_floating_point():
        x = x.float()
    shape = _target_shape(x.shape[1:], from_spacing, to_spacing, to_shape)
    z_axis = separate_z_axis(from_spacing, to_spacing, force=separate_z)
    if tuple(x.shape[1:]) == shape:
        return x
    # one channel at a time: the temporaries stay small, only the output is large
    out = torch.empty((x.shape[0], *shape), dtype=x.dtype, device=x.device)
    for c in range(x.shape[0]):
        out[c : c + 1] = _resize(x[c : c + 1], shape, order=order, order_z=order_z, z_axis=z_axis)
    return out


def resample_labels(
    labels: Array,
    *,
    to_shape: Sequence[int] | None = None,
    from_spacing: Sequence[float] | None = None,
    to_spacing: Sequence[float] | None = None,
    order: int = 1,
    order_z: int = 0,
    separate_z: bool | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Resample a label map without label bleeding.

    With ``order`` 1 (default) each label's one-hot mask is interpolated linearly and every
    voxel takes the label of largest membership (ties go to the smaller label), so labels
    never mix into values that exist in neither neighbour. ``order`` 0 is nearest neighbour.

    Args:
        labels: ``(i, j, k)`` or ``(1, i, j, k)`` integer labels (negative values allowed).
        Others as `resample_image`.

    Returns:
        Tensor of the input's dtype and number of dimensions, on ``device``.
    """
    if order not in (0, 1) or (order == 1 and order_z not in (0, 1)):  # order 0 is nearest along every axis
        raise PreprocessingError(f"label maps are resampled with order 0 or 1, got order {order}, order_z {order_z}")
    x = _as_tensor(labels, device)
    squeeze = x.ndim == 3
    x = x[None] if squeeze else x
    shape = _target_shape(x.shape[1:], from_spacing, to_spacing, to_shape)
    z_axis = separate_z_axis(from_spacing, to_spacing, force=separate_z)
    if tuple(x.shape[1:]) == shape:
        out = x.clone()
    elif order == 0:
        out = _resize(x, shape, order=0, order_z=0, z_axis=None)
    else:
        out = _one_hot_resize(x, shape, order=order, order_z=order_z, z_axis=z_axis)
    return out[0] if squeeze else out


def _one_hot_resize(x: torch.Tensor, shape, *, order: int, order_z: int, z_axis: int | None) -> torch.Tensor:
    # Each label's one-hot mask is interpolated only over its bounding box (and the output
    # region it influences); the most frequent label is implicit: its membership is one minus
    # the others' (the interpolation weights sum to one), so it is never resized at all.
    spatial = x.shape[1:]
    axis_taps = [taps(spatial[a], shape[a], order_z if a == z_axis else order, x.device) for a in range(len(shape))]
    values, counts = torch.unique(x, return_counts=True)
    implicit = values[counts.argmax()]
    best = torch.zeros((1, *shape), dtype=torch.float32, device=x.device)
    total = torch.zeros_like(best)
    out = torch.full((1, *shape), int(implicit), dtype=x.dtype, device=x.device)
    boxes = _label_boxes(x[0])
    for value in values.tolist():
        if value == int(implicit):
            continue
        box = boxes[value]
        membership = (x[0][tuple(slice(lo, hi) for lo, hi in box)] == value).float()
        region = []
        for axis, (lo, hi) in enumerate(box):
            rows, restricted = window_taps(axis_taps[axis], lo, hi)
            membership = apply_taps(membership, axis, restricted)
            region.append(rows)
        target = (0, *region)
        best_here, out_here = best[target], out[target]  # views: updated in place
        out_here.masked_fill_(membership > best_here, value)
        torch.maximum(best_here, membership, out=best_here)
        total[target] += membership
    rest = 1 - total
    wins = (rest > best) | ((rest == best) & (implicit < out))
    out[wins] = implicit
    return out


def _label_boxes(labels: torch.Tensor) -> dict[int, list[tuple[int, int]]]:
    # bounding box of every label value, in one pass (scipy's find_objects)
    array = labels.cpu().numpy()
    low = int(array.min())
    objects = find_objects(array.astype(np.int64) - low + 1)
    return {index + low: [(s.start, s.stop) for s in box] for index, box in enumerate(objects) if box is not None}
