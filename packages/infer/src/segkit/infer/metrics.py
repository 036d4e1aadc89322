"""Segmentation metrics on label maps: Dice, IoU, normalized surface Dice, HD95 (spacing-aware).

A class is a label value or, for region-based models, a region: a tuple of label values scored as their union
(nnU-Net's regions). Conventions: a class absent from both prediction and reference gives NaN for every metric
(it is left out of means); a class present in only one gives Dice = IoU = NSD = 0 and HD95 = inf. Voxels where
``valid`` is False (the ignore label of the reference) count for neither side.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.ndimage import binary_erosion, distance_transform_edt, generate_binary_structure

from segkit.infer.errors import InferError

LabelOrRegion = int | tuple[int, ...]


def label_mask(label_map: np.ndarray, label: LabelOrRegion) -> np.ndarray:
    """Boolean mask of one label value, or of any value of a region."""
    return np.isin(label_map, label) if isinstance(label, tuple) else label_map == label


def label_key(label: LabelOrRegion) -> str:
    """JSON key of a label (``"2"``) or a region (``"(1, 2)"``, as nnU-Net spells it)."""
    return str(tuple(int(v) for v in label)) if isinstance(label, tuple) else str(int(label))


def as_label_or_region(value) -> LabelOrRegion:
    """A label value (int) or a region (list or tuple of label values, returned as a tuple)."""
    return tuple(int(v) for v in value) if isinstance(value, (list, tuple)) else int(value)


def _is_foreground(value) -> bool:
    members = value if isinstance(value, (list, tuple)) else [value]
    return bool(members) and all(int(m) == m and m > 0 for m in members)


def foreground_classes(values: Sequence) -> tuple[LabelOrRegion, ...]:
    """`as_label_or_region` of each value, refusing background and values that are not labels.

    Raises:
        InferError: a label (or a region's label) that is not a whole number > 0, or an empty region.
    """
    bad = [v for v in values if not _is_foreground(v)]
    if bad:
        raise InferError(f"labels must be whole numbers > 0 (0 is the background) or regions of them, got "
                         f"{', '.join(map(str, bad))}; give foreground labels only")
    return tuple(map(as_label_or_region, values))


@dataclass(frozen=True)
class ClassMetrics:
    """Metrics of one class in one case (see the module docstring for empty classes), with the voxel counts of the
    confusion matrix (``tn``: voxels in neither mask, ignored ones left out)."""

    dice: float
    iou: float
    nsd: float
    hd95: float
    n_pred: int
    n_ref: int
    tp: int
    fp: int
    fn: int
    tn: int

    def to_dict(self) -> dict:
        """JSON-friendly dict under nnU-Net's names (``Dice``, ``IoU``, ``TP``...; NaN and inf become None)."""
        return {SUMMARY_NAMES[k]: (None if isinstance(v, float) and not np.isfinite(v) else v)
                for k, v in self.__dict__.items()}


#: `ClassMetrics` fields as nnU-Net's summary.json names them (NSD and HD95 are segkit's own)
SUMMARY_NAMES = {"dice": "Dice", "iou": "IoU", "nsd": "NSD", "hd95": "HD95", "n_pred": "n_pred", "n_ref": "n_ref",
                 "tp": "TP", "fp": "FP", "fn": "FN", "tn": "TN"}


def _crop(*masks: np.ndarray) -> tuple[np.ndarray, ...]:
    union = np.logical_or.reduce(masks)
    slices = []
    for axis in range(union.ndim):
        other = tuple(a for a in range(union.ndim) if a != axis)
        hits = np.flatnonzero(union.any(axis=other))
        slices.append(slice(max(int(hits[0]) - 1, 0), int(hits[-1]) + 2))
    return tuple(m[tuple(slices)] for m in masks)


def surface(mask: np.ndarray) -> np.ndarray:
    """Return the voxels of ``mask`` that touch the outside (face connectivity)."""
    structure = generate_binary_structure(mask.ndim, 1)
    return mask & ~binary_erosion(mask, structure=structure, border_value=0)


def surface_distances(a: np.ndarray, b: np.ndarray, spacing: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Return the distances (mm) from each surface voxel of ``a`` to the surface of ``b``, and back.

    Both masks must be non-empty.
    """
    a, b = _crop(a, b)
    surf_a, surf_b = surface(a), surface(b)
    to_b = distance_transform_edt(~surf_b, sampling=spacing)
    to_a = distance_transform_edt(~surf_a, sampling=spacing)
    return to_b[surf_a], to_a[surf_b]


def class_metrics(pred: np.ndarray, ref: np.ndarray, spacing: Sequence[float], *, tolerance_mm: float = 1.0,
                  valid: np.ndarray | None = None) -> ClassMetrics:
    """Return the metrics of one class given its boolean prediction and reference masks.

    Args:
        pred: boolean mask of the prediction, ``(i, j, k)``.
        ref: boolean mask of the reference, same shape.
        spacing: voxel size (mm) per axis.
        tolerance_mm: NSD tolerance.
        valid: where to compare (False: ignored voxels), or None for everywhere.

    Example:
        >>> a = np.zeros((4, 4, 4), bool); a[1:3, 1:3, 1:3] = True
        >>> round(class_metrics(a, a, (1, 1, 1)).dice, 3)
        1.0
    """
    if valid is not None:
        pred, ref = pred & valid, ref & valid
    n_pred, n_ref = int(pred.sum()), int(ref.sum())
    inter = int((pred & ref).sum()) if n_pred and n_ref else 0
    counts = {"n_pred": n_pred, "n_ref": n_ref, "tp": inter, "fp": n_pred - inter, "fn": n_ref - inter,
              "tn": (pred.size if valid is None else int(valid.sum())) - (n_pred + n_ref - inter)}
    if n_pred == 0 and n_ref == 0:
        return ClassMetrics(np.nan, np.nan, np.nan, np.nan, **counts)
    if n_pred == 0 or n_ref == 0:
        return ClassMetrics(0.0, 0.0, 0.0, np.inf, **counts)
    dice = 2.0 * inter / (n_pred + n_ref)
    iou = inter / (n_pred + n_ref - inter)
    d_pred, d_ref = surface_distances(pred, ref, spacing)
    nsd = float(((d_pred <= tolerance_mm).sum() + (d_ref <= tolerance_mm).sum()) / (d_pred.size + d_ref.size))
    hd95 = float(max(np.percentile(d_pred, 95), np.percentile(d_ref, 95)))
    return ClassMetrics(dice, iou, nsd, hd95, **counts)


def case_metrics(pred: np.ndarray, ref: np.ndarray, spacing: Sequence[float], *,
                 labels: Sequence[LabelOrRegion], tolerance_mm: float = 1.0,
                 ignore_label: int | None = None) -> dict[LabelOrRegion, ClassMetrics]:
    """Return label (or region) -> `ClassMetrics` for two label maps on the same grid.

    Raises:
        ValueError: the arrays differ in shape.
    """
    if pred.shape != ref.shape:
        raise ValueError(f"prediction shape {pred.shape} differs from reference shape {ref.shape}")
    valid = None if ignore_label is None else ref != ignore_label
    return {label: class_metrics(label_mask(pred, label), label_mask(ref, label), spacing, tolerance_mm=tolerance_mm,
                                 valid=valid) for label in map(as_label_or_region, labels)}
