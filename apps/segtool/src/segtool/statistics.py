"""Per-class volume and mean intensity of a label map, as TotalSegmentator reports them."""

from __future__ import annotations

import numpy as np


def class_statistics(labels: np.ndarray, names: dict[int, str], intensities: np.ndarray,
                     spacing: tuple[float, float, float]) -> dict[str, dict[str, float]]:
    """Volume (mm3) and mean intensity of every class.

    Args:
        labels: label map ``(i, j, k)``.
        names: label value -> class name; every class is reported, absent ones with 0.
        intensities: image on the same grid ``(i, j, k)`` (e.g. HU for CT).
        spacing: voxel size in mm along ``(i, j, k)``.

    Returns:
        class name -> ``{"volume": mm3, "intensity": mean}`` (rounded to 5 decimals).

    Example:
        >>> labels = np.array([[[0, 1], [1, 2]]])
        >>> class_statistics(labels, {1: "a", 2: "b"}, labels * 10.0, (1.0, 1.0, 2.0))["a"]
        {'volume': 4.0, 'intensity': 10.0}
    """
    voxel_volume = float(np.prod(spacing))
    flat = labels.ravel().astype(np.int64)
    size = max(int(flat.max(initial=0)), max(names, default=0)) + 1
    counts = np.bincount(flat, minlength=size)
    sums = np.bincount(flat, weights=intensities.ravel().astype(np.float64), minlength=size)
    stats = {}
    for value, name in sorted(names.items()):
        count = counts[value]
        mean = sums[value] / count if count else 0.0
        stats[name] = {"volume": round(float(count * voxel_volume), 5), "intensity": round(float(mean), 5)}
    return stats
