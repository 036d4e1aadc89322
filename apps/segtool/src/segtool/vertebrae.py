"""Clean-up of a map of single vertebrae, as TotalSegmentator cleans its ``vertebrae_pp`` maps.

Such a model segments the inner part of each vertebral body (its training labels were eroded by 3 mm), numbered from
the top down (C1 has the lowest label value). Where two vertebrae's labels touch, the model mixed them up: the bodies
are then told apart as connected components and numbered again by height. Each vertebra is grown back by the eroded
margin, into background only. ``vertebrae_pp_refined`` grows them a little further and keeps only what another model
(``vertebrae_body``) calls vertebral body (`trim_to`).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from segkit.io import Image


def separate_vertebrae(labels: np.ndarray, grid: Image, values: range, min_mm3: float, grow_mm: float) -> np.ndarray:
    """``labels`` (vertebrae on ``grid``, numbered top down by ``values``) with mixed-up vertebrae numbered again,
    then each grown by ``grow_mm``.

    Where no two labels touch, the map is only grown. Otherwise its connected bodies of at least ``min_mm3`` are
    numbered by height: from the bottom up, starting at the lowest vertebra found, or, for a scan that shows the top
    vertebra but not the bottom one (a neck), from the top down.
    """
    labels = labels.astype(np.uint16, copy=False)
    if not _labels_touch(labels):
        return grow_labels(labels, grid.spacing, grow_mm)
    bodies, count = ndimage.label(labels > 0)
    volumes = np.bincount(bodies.ravel(), minlength=count + 1) * float(np.prod(grid.spacing))
    kept = [int(body) for body in np.flatnonzero(volumes >= min_mm3) if body != 0]
    present = set(np.unique(labels[np.isin(bodies, kept)]).tolist()) & set(values)
    if not present:
        return np.zeros_like(labels)
    heights = [_height(grid, centre) for centre in ndimage.center_of_mass(labels > 0, bodies, kept)]
    from_top = values[0] in present and values[-1] not in present
    by_height = [body for _, body in sorted(zip(heights, kept, strict=True), key=lambda pair: pair[0],
                                            reverse=from_top)]  # equal heights: in component order
    numbers = values if from_top else range(max(present), values[0] - 1, -1)
    renumbered = np.zeros(count + 1, dtype=np.uint16)
    for body, value in zip(by_height, numbers, strict=False):  # bodies beyond the last vertebra stay background
        renumbered[body] = value
    return grow_labels(renumbered[bodies], grid.spacing, grow_mm)


def grow_labels(labels: np.ndarray, spacing: tuple[float, float, float], grow_mm: float) -> np.ndarray:
    """Each label of ``labels`` grown by ``grow_mm`` (an ellipsoid on a grid of ``spacing``) into background only;
    where two would grow into one voxel, the lower value takes it."""
    if grow_mm <= 0:
        return labels
    ball = _ellipsoid(spacing, grow_mm)
    reach = np.array(ball.shape) // 2
    grown = labels.copy()
    for value, box in enumerate(ndimage.find_objects(labels), start=1):
        if box is None:
            continue
        box = tuple(slice(max(s.start - r, 0), min(s.stop + r, n)) for s, r, n in zip(box, reach, labels.shape,
                                                                                        strict=True))
        reached = ndimage.binary_dilation(labels[box] == value, structure=ball)
        target = grown[box]  # a view: written into ``grown``
        target[reached & (target == 0)] = value
    return grown


def trim_to(labels: np.ndarray, keep: np.ndarray, spacing: tuple[float, float, float], grow_mm: float) -> np.ndarray:
    """``labels`` grown by ``grow_mm`` (`grow_labels`), then cleared wherever ``keep`` is False (a new array)."""
    return np.where(keep, grow_labels(labels, spacing, grow_mm), 0).astype(labels.dtype, copy=False)


def _labels_touch(labels: np.ndarray) -> bool:
    """Whether two different labels are face neighbours anywhere."""
    for axis in range(labels.ndim):
        upper = labels[(slice(None),) * axis + (slice(1, None),)]
        lower = labels[(slice(None),) * axis + (slice(None, -1),)]
        if np.any((upper > 0) & (lower > 0) & (upper != lower)):
            return True
    return False


def _ellipsoid(spacing: tuple[float, float, float], radius_mm: float) -> np.ndarray:
    """The voxel offsets within ``radius_mm`` of the centre on a grid of ``spacing``."""
    reach = [int(radius_mm // s) for s in spacing]
    offsets = np.ogrid[tuple(slice(-r, r + 1) for r in reach)]
    return sum((o * s / radius_mm) ** 2 for o, s in zip(offsets, spacing, strict=True)) <= 1


def _height(grid: Image, voxel: tuple[float, float, float]) -> float:
    """World height (RAS+ z, mm) of a voxel position of ``grid``."""
    return float((grid.affine @ [*voxel, 1.0])[2])
