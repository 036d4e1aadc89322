"""Per-class volume and mean intensity of a label map, as TotalSegmentator reports them."""

from __future__ import annotations

import numpy as np

#: voxels from a face of the scan within which a mask counts as cut off by the field of view (TotalSegmentator's 3)
BORDER_VOXELS = 3


def class_statistics(labels: np.ndarray, names: dict[int, str], intensities: np.ndarray,
                     spacing: tuple[float, float, float], *, include_incomplete: bool = False
                     ) -> dict[str, dict[str, float]]:
    """Volume (mm3) and mean intensity of every class.

    As in TotalSegmentator, a class that reaches within `BORDER_VOXELS` of a face of the scan is cut off by the field
    of view, so its volume and intensity are reported as 0 unless ``include_incomplete``.

    Args:
        labels: label map ``(i, j, k)``.
        names: label value -> class name; every class is reported, absent ones with 0.
        intensities: image on the same grid ``(i, j, k)`` (e.g. HU for CT).
        spacing: voxel size in mm along ``(i, j, k)``.
        include_incomplete: also measure the classes that the scan cuts off.

    Returns:
        class name -> ``{"volume": mm3, "intensity": mean}`` (rounded to 5 decimals).

    Example:
        >>> labels = np.zeros((7, 7, 8), dtype=np.uint8); labels[3, 3, 3:5] = 1; labels[0, 3, 3] = 2
        >>> stats = class_statistics(labels, {1: "a", 2: "b"}, labels * 10.0, (1.0, 1.0, 2.0))
        >>> stats["a"], stats["b"]
        ({'volume': 4.0, 'intensity': 10.0}, {'volume': 0.0, 'intensity': 0.0})
    """
    voxel_volume = float(np.prod(spacing))
    flat = labels.ravel().astype(np.int64)
    size = max(int(flat.max(initial=0)), max(names, default=0)) + 1
    counts = np.bincount(flat, minlength=size)
    sums = np.bincount(flat, weights=intensities.ravel().astype(np.float64), minlength=size)
    cut_off = set() if include_incomplete else border_classes(labels)
    stats = {}
    for value, name in sorted(names.items()):
        count = 0 if value in cut_off else counts[value]
        mean = sums[value] / count if count else 0.0
        stats[name] = {"volume": round(float(count * voxel_volume), 5), "intensity": round(float(mean), 5)}
    return stats


def border_classes(labels: np.ndarray, width: int = BORDER_VOXELS) -> set[int]:
    """The label values found within ``width`` voxels of any face of ``labels``."""
    found: set[int] = set()
    for axis, size in enumerate(labels.shape):
        rim = np.r_[0:min(width, size), max(size - width, 0):size]
        found.update(np.unique(np.take(labels, rim, axis=axis)).tolist())
    return found
