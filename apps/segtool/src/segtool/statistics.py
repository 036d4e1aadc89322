"""Per-class volume and intensity of a label map, as TotalSegmentator reports them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from segtool.errors import SegtoolError

#: voxels from a face of the scan within which a mask counts as cut off by the field of view (TotalSegmentator's 3)
BORDER_VOXELS = 3
AGGREGATIONS = ("mean", "median")
#: TotalSegmentator's ``--statistics_extra`` metrics, and their values for a class that is absent or cut off
EXTRA_METRICS = {"n_voxels": 0, "intensity_std": 0.0, "intensity_min": 0.0, "intensity_max": 0.0,
                 "centroid_vox": None, "bbox_vox": None}


@dataclass(frozen=True)
class StatisticsOptions:
    """What `class_statistics` measures: also the classes the scan cuts off, the mean or median intensity, the extra
    metrics (`EXTRA_METRICS`), and intensities min-max normalized over the scan to 0..1 (TotalSegmentator's
    ``statistics_normalized_intensities``)."""

    include_incomplete: bool = False
    aggregation: str = "mean"
    extra: bool = False
    normalized_intensities: bool = False

    def __post_init__(self) -> None:
        if self.aggregation not in AGGREGATIONS:
            raise SegtoolError(f"statistics aggregation must be {' or '.join(AGGREGATIONS)}, got {self.aggregation!r}")

    @classmethod
    def requested(cls, statistics: bool, include_incomplete: bool = False, aggregation: str = "mean",
                  extra: bool = False, normalized_intensities: bool = False) -> StatisticsOptions | None:
        """The options of the user's flags, or None where no statistics are asked for (``include_incomplete``
        and ``extra`` ask for them too)."""
        options = cls(include_incomplete, aggregation, extra, normalized_intensities)  # a typo is an error anyway
        return options if statistics or include_incomplete or extra else None


def class_statistics(labels: np.ndarray, names: dict[int, str], intensities: np.ndarray,
                     spacing: tuple[float, float, float], options: StatisticsOptions = StatisticsOptions()
                     ) -> dict[str, dict[str, float]]:
    """Volume (mm3) and mean (or median) intensity of every class.

    As in TotalSegmentator, a class that reaches within `BORDER_VOXELS` of a face of the scan is cut off by the field
    of view, so its volume and intensity are reported as 0 unless ``options.include_incomplete``.

    Args:
        labels: label map ``(i, j, k)``.
        names: label value -> class name; every class is reported, absent ones with 0.
        intensities: image on the same grid ``(i, j, k)`` (e.g. HU for CT).
        spacing: voxel size in mm along ``(i, j, k)``.
        options: cut-off classes measured or not; ``mean`` or ``median`` intensity; extra metrics; normalized
            intensities.

    Returns:
        class name -> ``{"volume": mm3, "intensity": mean or median}`` (rounded to 5 decimals); with
        ``options.extra`` also `EXTRA_METRICS`: voxel count, intensity std (population), min and max, and the
        centroid and inclusive bounding box ``[[i_min, i_max], ...]`` in voxel indices.

    Example:
        >>> labels = np.zeros((7, 7, 8), dtype=np.uint8); labels[3, 3, 3:5] = 1; labels[0, 3, 3] = 2
        >>> stats = class_statistics(labels, {1: "a", 2: "b"}, labels * 10.0, (1.0, 1.0, 2.0))
        >>> stats["a"], stats["b"]
        ({'volume': 4.0, 'intensity': 10.0}, {'volume': 0.0, 'intensity': 0.0})
    """
    if options.normalized_intensities:
        intensities = _min_max_normalized(intensities)
    voxel_volume = float(np.prod(spacing))
    flat = labels.ravel().astype(np.int64)
    size = max(int(flat.max(initial=0)), max(names, default=0)) + 1
    counts = np.bincount(flat, minlength=size)
    values = intensities.ravel().astype(np.float64)
    if options.aggregation == "median":
        intensity = _class_medians(flat, values, counts)
    else:
        intensity = np.bincount(flat, weights=values, minlength=size) / np.maximum(counts, 1)
    cut_off = set() if options.include_incomplete else border_classes(labels)
    boxes = []
    if options.extra:
        from scipy import ndimage  # 0.8 s to import, for these boxes only

        boxes = ndimage.find_objects(labels)
    stats = {}
    for value, name in sorted(names.items()):
        measured = counts[value] > 0 and value not in cut_off
        stats[name] = {"volume": round(float(counts[value] * voxel_volume), 5) if measured else 0.0,
                       "intensity": round(float(intensity[value]), 5) if measured else 0.0}
        if options.extra:
            box = boxes[value - 1] if measured else None
            stats[name].update(_extra_metrics(labels, intensities, value, box) if box else EXTRA_METRICS)
    return stats


def _min_max_normalized(intensities: np.ndarray) -> np.ndarray:
    """``intensities`` scaled to 0 (the scan's minimum) .. 1 (its maximum); all 0 for a scan of one value."""
    low, high = float(intensities.min()), float(intensities.max())
    return (intensities.astype(np.float64) - low) / (high - low) if high > low else np.zeros(intensities.shape)


def _extra_metrics(labels: np.ndarray, intensities: np.ndarray, value: int, box: tuple[slice, ...]) -> dict:
    """`EXTRA_METRICS` of the class ``value``, found inside its bounding box ``box``."""
    inside = labels[box] == value
    values = intensities[box][inside].astype(np.float64)
    where = np.nonzero(inside)
    return {"n_voxels": int(inside.sum()), "intensity_std": round(float(values.std()), 5),
            "intensity_min": float(values.min()), "intensity_max": float(values.max()),
            "centroid_vox": [round(float(w.mean()) + s.start, 2) for w, s in zip(where, box, strict=True)],
            "bbox_vox": [[s.start, s.stop - 1] for s in box]}


def _class_medians(flat: np.ndarray, values: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Median of ``values`` over the voxels of each nonzero label value (0 where a value is absent)."""
    foreground = np.flatnonzero(flat)
    by_class = foreground[np.argsort(flat[foreground], kind="stable")]
    ends = np.cumsum(counts) - counts[0]  # background voxels are not in by_class
    medians = np.zeros(len(counts))
    for value in np.flatnonzero(counts[1:]) + 1:
        medians[value] = np.median(values[by_class[ends[value] - counts[value]:ends[value]]])
    return medians


def border_classes(labels: np.ndarray, width: int = BORDER_VOXELS) -> set[int]:
    """The label values found within ``width`` voxels of any face of ``labels``."""
    found: set[int] = set()
    for axis, size in enumerate(labels.shape):
        rim = np.r_[0:min(width, size), max(size - width, 0):size]
        found.update(np.unique(np.take(labels, rim, axis=axis)).tolist())
    return found
