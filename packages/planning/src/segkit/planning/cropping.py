"""Cropping to the nonzero region of an image, and undoing it with the remembered box."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.ndimage import binary_fill_holes

OUTSIDE_LABEL = -1
"""Label written into the segmentation where the image is zero (outside the nonzero mask)."""

Box = tuple[tuple[int, int], ...]
"""A bounding box: one ``(start, stop)`` pair per spatial axis (stop exclusive)."""


def nonzero_mask(data: np.ndarray) -> np.ndarray:
    """Return where any channel is nonzero, with holes filled.

    Args:
        data: ``(c, i, j, k)`` (or ``(c, i, j)``) image.

    Returns:
        Boolean mask of the spatial shape.
    """
    mask = np.any(data != 0, axis=0)
    return binary_fill_holes(mask)


def nonzero_box(data: np.ndarray) -> Box:
    """Return the box of the nonzero region of a ``(c, *spatial)`` image (the box of `nonzero_mask`: filling holes
    never widens a box)."""
    return bounding_box(np.any(data != 0, axis=0))


def crop_nonzero_box(data: np.ndarray) -> tuple[np.ndarray, Box]:
    """Return ``(view of data inside its nonzero box, box)`` for a ``(c, *spatial)`` image."""
    box = nonzero_box(data)
    return data[(slice(None), *box_slices(box))], box


def bounding_box(mask: np.ndarray) -> Box:
    """Return the smallest box holding every true voxel of ``mask`` (the whole array if none).

    Example:
        >>> m = np.zeros((4, 5), bool); m[1:3, 2] = True
        >>> bounding_box(m)
        ((1, 3), (2, 3))
    """
    box = []
    for axis in range(mask.ndim):
        other = tuple(a for a in range(mask.ndim) if a != axis)
        hits = np.flatnonzero(np.any(mask, axis=other))
        if hits.size == 0:
            return tuple((0, s) for s in mask.shape)
        box.append((int(hits[0]), int(hits[-1]) + 1))
    return tuple(box)


def box_slices(box: Box) -> tuple[slice, ...]:
    """Return the slices selecting ``box``."""
    return tuple(slice(start, stop) for start, stop in box)


def crop_to_nonzero(data: np.ndarray, seg: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, Box]:
    """Crop an image (and its segmentation) to the box of its nonzero region.

    Inside the box, segmentation voxels that are background and outside the nonzero mask
    get `OUTSIDE_LABEL` (-1), as nnU-Net does, so normalization can be masked and patch
    sampling can tell padding from background.

    Args:
        data: ``(c, i, j, k)`` image.
        seg: ``(i, j, k)`` or ``(1, i, j, k)`` integer labels on the same grid, or None.

    Returns:
        ``(cropped data, cropped seg, box)``; the seg is int16 with the shape of ``seg``
        (``(1, ...)`` when ``seg`` was None: 0 inside the mask, -1 outside).
    """
    cropped, box = crop_nonzero_box(data)
    # the whole image's filled mask inside the box: outside it all is zero, so a hole never touches the box's faces
    mask = nonzero_mask(cropped)
    if seg is None:
        out = np.where(mask, np.int16(0), np.int16(OUTSIDE_LABEL))[None]
    else:
        lead = (slice(None),) * (seg.ndim - mask.ndim)
        out = np.array(seg[(*lead, *box_slices(box))], dtype=np.int16)
        out[(out == 0) & np.broadcast_to(~mask, out.shape)] = OUTSIDE_LABEL
    return cropped, out, box


def uncrop(array: np.ndarray, box: Box, shape: Sequence[int], *, fill: float = 0) -> np.ndarray:
    """Place a cropped array back into the full grid ``shape`` (inverse of the crop).

    Args:
        array: ``(..., i, j, k)`` array covering ``box``; leading axes are kept.
        box: the box returned by `crop_to_nonzero`.
        shape: the full spatial shape before cropping.
        fill: value outside the box (0 for images and labels).

    Returns:
        ``(..., *shape)`` array of the same dtype: ``array`` itself when the box is the whole grid (no copy of,
        say, 118 classes of probabilities).
    """
    lead = array.shape[: array.ndim - len(shape)]
    if tuple(array.shape[len(lead):]) == tuple(shape):
        return array
    out = np.full((*lead, *shape), fill, dtype=array.dtype)
    out[(..., *box_slices(box))] = array
    return out
