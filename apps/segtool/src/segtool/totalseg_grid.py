"""TotalSegmentator's resampling, used for its weights so that their networks see the same voxels.

TotalSegmentator brings the scan, in its closest canonical orientation, to the model's spacing with
scipy's linear zoom (corner-aligned, edges repeated) and stores the result as int32; it predicts on
that grid and zooms the label map back to the canonical shape by nearest neighbour. A scan already at
the model's spacing is used as it is. A float scan stays float here: int32 would round away intensities
such as an MR scan's scaled to [0, 1] (TotalSegmentator itself rounds them). Another interpolation
shifts intensities by a few HU, which for a briefly trained model visibly changes the masks (Dice 0.62
on the DICOM example, see RESULTS.md). A huge scan of a multi-part task, or any scan with ``--force_split``, is
predicted in three overlapping slabs along z, as TotalSegmentator splits it.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from segkit.io import Image
from segtool.errors import SegtoolError

#: spline orders of TotalSegmentator's ``--resampling_order`` (its default: 1, linear)
RESAMPLING_ORDERS = range(6)
#: TotalSegmentator predicts a multi-part task's scan in three overlapping slabs along z when, on the model grid, it has
#: more voxels than this and more than `SPLIT_MIN_SLICES` slices (or always, with ``force_split``)
SPLIT_VOXELS = 512 * 512 * 900
SPLIT_MIN_SLICES = 200
SPLIT_MARGIN = 20  #: slices a slab reaches past its third (19 before it), as TotalSegmentator's


def to_model_grid(image: Image, spacing_mm: float | tuple[float, float, float], order: int = 1) -> tuple[Image, Image]:
    """Return ``(canonical, resampled)``: the scan in RAS+ order and on the model's grid (``spacing_mm``: one
    spacing, or one per RAS axis), interpolated with splines of ``order`` (see `RESAMPLING_ORDERS`)."""
    canonical = image.to_canonical()
    spacing = np.asarray(canonical.spacing, dtype=np.float64)
    target = np.broadcast_to(np.asarray(spacing_mm, dtype=np.float64), 3)
    if np.array_equal(spacing, target):
        return canonical, canonical
    zoom = spacing / target
    data = ndimage.zoom(np.asarray(canonical.array, dtype=np.float64), zoom, order=order, mode="nearest")
    affine = canonical.affine.copy()
    affine[:3, :3] /= zoom  # each axis' direction vector scaled to the new spacing
    stored = np.int32 if np.issubdtype(canonical.array.dtype, np.integer) else np.float32
    return canonical, Image(data.astype(stored), affine)


def labels_to_scan(labels: np.ndarray, canonical: Image, scan: Image) -> np.ndarray:
    """Bring a label map on the model grid back onto ``scan``'s grid (nearest neighbour, original orientation)."""
    if labels.shape != canonical.spatial_shape:
        zoom = np.divide(canonical.spatial_shape, labels.shape)
        labels = ndimage.zoom(labels, zoom, order=0, mode="nearest")
    return Image(labels, canonical.affine).reorient(scan.axis_codes).array


def splits_by_itself(shape: tuple[int, ...]) -> bool:
    """Whether TotalSegmentator predicts a multi-part task's scan of ``shape`` (on the model grid) in slabs unasked."""
    return int(np.prod(shape)) > SPLIT_VOXELS and shape[2] > SPLIT_MIN_SLICES


def predict_in_slabs(predictor, image: Image) -> np.ndarray:
    """The label map of a canonical ``image`` predicted in three slabs along z, as TotalSegmentator's triple split:
    each third of the slices, reaching `SPLIT_MARGIN` slices past it (19 before it), keeps its own third.

    Raises:
        SegtoolError: a third is not longer than the margin (too few slices to split).
    """
    slices = image.spatial_shape[2]
    third, margin = slices // 3, SPLIT_MARGIN
    if third <= margin:
        raise SegtoolError(f"force_split needs more than {3 * (margin + 1) - 1} slices on the model grid; this scan "
                           f"has {slices} (use it for large scans only)")
    labels = None
    for keep_from, keep_to in ((0, third), (third, 2 * third), (2 * third, slices)):
        start = max(keep_from + 1 - margin, 0)
        stop = min(keep_to + margin, slices)
        slab = predictor.predict(image.crop((slice(None), slice(None), slice(start, stop)))).array
        if labels is None:
            labels = np.zeros(image.spatial_shape, dtype=slab.dtype)
        labels[..., keep_from:keep_to] = slab[..., keep_from - start:keep_to - start]
    return labels
