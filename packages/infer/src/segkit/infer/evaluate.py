"""Evaluate a folder of predicted label maps against reference label maps (``summary.json``)."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from segkit.infer.cases import image_files
from segkit.infer.errors import EvaluationError
from segkit.infer.metrics import (
    SUMMARY_NAMES,
    LabelOrRegion,
    as_label_or_region,
    case_metrics,
    foreground_classes,
    label_key,
)
from segkit.infer.model_setup import read_dataset_labels
from segkit.io import Image, read_image
from segkit.io.atomic import write_json

METRICS = ("Dice", "IoU", "NSD", "HD95")  #: the scores a summary's table shows; its means cover every count too
#: a mean's count of the cases left out of its HD95: the class is in one map only, so HD95 is infinite there
HD95_INFINITE = "HD95_infinite"


@dataclass(frozen=True)
class EvaluateOptions:
    """Args: labels or regions to score (> 0; None: every nonzero value found); ignore label; NSD tolerance (mm);
    names of the labels by their summary keys (``{"1": "anterior"}``, from a dataset.json).

    Raises:
        InferError: a negative, infinite or NaN tolerance, or a label or ignore label that is not a whole number > 0.
    """

    labels: tuple[LabelOrRegion, ...] | None = None
    ignore_label: int | None = None
    tolerance_mm: float = 1.0
    names: dict[str, str] | None = None

    def __post_init__(self) -> None:
        if not (math.isfinite(self.tolerance_mm) and self.tolerance_mm >= 0):
            raise EvaluationError(f"tolerance must be a finite number >= 0 mm, got {self.tolerance_mm}")
        if self.labels is not None:
            object.__setattr__(self, "labels", foreground_classes(self.labels))
        ignore = self.ignore_label
        if ignore is not None and (isinstance(ignore, bool) or not isinstance(ignore, int) or ignore <= 0):
            raise EvaluationError(f"the ignore label must be a whole number > 0 (0 is the background), got {ignore!r}")

    @classmethod
    def from_dataset_json(cls, path: str | os.PathLike, *, tolerance_mm: float = 1.0) -> EvaluateOptions:
        """Score the foreground labels of a ``dataset.json`` (its regions, for a region-based dataset), with its
        ignore label.

        Raises:
            InferError: the file cannot be read or has no foreground labels.
        """
        labels, _, ignore = read_dataset_labels(path)
        named = {name: as_label_or_region(v) for name, v in labels.items() if name != "background"}
        if not named:
            raise EvaluationError(f"{path}: no foreground labels")
        return cls(labels=tuple(named.values()), ignore_label=ignore, tolerance_mm=tolerance_mm,
                   names={label_key(v): name for name, v in named.items()})


def _images(folder: Path) -> dict[str, Path]:
    if not folder.is_dir():
        raise EvaluationError(f"folder {folder} does not exist")
    return {p.name: p for p in image_files(folder)}


def read_label_map(path: Path) -> Image:
    """Read a label map: one 3D volume of whole numbers (a 4D file of a single volume counts as 3D).

    Raises:
        EvaluationError: several volumes (a 4D file), or fractional, negative, NaN or infinite values.
    """
    image = read_image(path)
    if image.num_channels != 1:
        raise EvaluationError(f"{path}: holds {image.num_channels} volumes of shape {image.spatial_shape} (a 4D "
                              f"image), not one 3D label map")
    image = image.channel(0)
    values = np.asarray(image.array)
    if np.issubdtype(values.dtype, np.floating):
        if not np.isfinite(values).all():
            raise EvaluationError(f"{path}: holds NaN or infinite values, not a label map")
        if not np.array_equal(values, np.round(values)):
            raise EvaluationError(f"{path}: holds fractional values, not a label map")
    if values.size and values.min() < 0:
        raise EvaluationError(f"{path}: holds negative values (down to {values.min():g}), not a label map")
    return image


def read_label_pair(pred_path: Path, ref_path: Path) -> tuple[Image, Image]:
    """Read a predicted and a reference label map (`read_label_map`) that must share one grid.

    Raises:
        EvaluationError: different grids (the message says whether shape or affine), or not label maps.
    """
    pred, ref = read_label_map(pred_path), read_label_map(ref_path)
    if pred.spatial_shape != ref.spatial_shape:
        raise EvaluationError(f"{pred_path.name}: prediction grid differs from the reference grid in shape: "
                              f"{pred.spatial_shape} vs {ref.spatial_shape}")
    if not pred.same_grid(ref, tolerance=1e-3):
        raise EvaluationError(f"{pred_path.name}: prediction grid differs from the reference grid in its affine: "
                              f"largest entry difference {np.abs(pred.affine - ref.affine).max():.4g}, axis codes "
                              f"{''.join(pred.axis_codes)} vs {''.join(ref.axis_codes)}, origin "
                              f"{_round(pred.origin)} vs {_round(ref.origin)}")
    return pred, ref


def _round(values: Sequence[float]) -> tuple[float, ...]:
    return tuple(round(v, 3) for v in values)


def _nanmean(values: Sequence[float]) -> float | None:
    finite = [v for v in values if v is not None and not np.isnan(v)]
    return float(np.mean(finite)) if finite else None


def _class_mean(cases: Sequence[dict]) -> dict:
    """Mean of each of one class's metrics over ``cases`` (undefined values left out), and `HD95_INFINITE`."""
    mean = {m: _nanmean([c[m] for c in cases]) for m in SUMMARY_NAMES.values()}
    mean[HD95_INFINITE] = sum((c["n_pred"] == 0) != (c["n_ref"] == 0) for c in cases)
    return mean


def evaluate_folders(pred_dir: str | os.PathLike, ref_dir: str | os.PathLike, *,
                     options: EvaluateOptions | None = None, allow_missing: bool = False) -> dict:
    """Score every prediction against the reference of the same file name.

    Every reference needs a prediction unless ``allow_missing`` (nnU-Net's ``--chill``: score a subset, such
    as one cross-validation fold against all training labels).

    Returns:
        nnU-Net's summary.json layout, ``{"metric_per_case": [{"metrics": {key: {"Dice", "IoU", "TP", ...}},
        "prediction_file", "reference_file", "case"}], "mean": {key: {...}}, "foreground_mean": {...}, ...}``, keyed
        by `label_key` (``"1"``, or ``"(1, 2)"`` for a region), plus segkit's NSD and HD95 and the scoring settings
        (``labels``, ``tolerance_mm``, ``ignore_label``); means leave out undefined (None) values. HD95 is infinite
        (None in the file) where a class is in one map only: its means leave those cases out and count them in
        ``HD95_infinite`` (the foreground mean: over all classes), so that a missed structure is never silent.

    Raises:
        EvaluationError: a missing folder, no matching files, a prediction without reference (or a reference
            without prediction), or mismatched grids.
    """
    options = options or EvaluateOptions()
    preds, refs = _images(Path(pred_dir)), _images(Path(ref_dir))
    if not preds:
        raise EvaluationError(f"no predictions in {pred_dir}")
    missing = [name for name in preds if name not in refs]
    if missing:
        raise EvaluationError(f"{len(missing)} prediction(s) without reference in {ref_dir}, e.g. {missing[0]}")
    unpredicted = sorted(name for name in refs if name not in preds)
    if unpredicted and not allow_missing:
        raise EvaluationError(f"{len(unpredicted)} reference(s) without prediction in {pred_dir}, e.g. "
                              f"{unpredicted[0]} (--chill scores only the predicted cases)")
    loaded = [(name, *read_label_pair(path, refs[name])) for name, path in preds.items()]
    labels = options.labels
    if labels is None:
        found = set()
        for _, pred, ref in loaded:
            found |= set(np.unique(ref.array).tolist()) | set(np.unique(pred.array).tolist())
        labels = tuple(sorted(int(v) for v in found if v != 0 and v != options.ignore_label))
    per_case = []
    for name, pred, ref in loaded:
        scores = case_metrics(np.asarray(pred.array), np.asarray(ref.array), ref.spacing, labels=labels,
                              tolerance_mm=options.tolerance_mm, ignore_label=options.ignore_label)
        per_case.append({"metrics": {label_key(k): v.to_dict() for k, v in scores.items()},
                         "prediction_file": str(preds[name]), "reference_file": str(refs[name]), "case": name})
    keys = [label_key(label) for label in labels]
    mean = {key: _class_mean([c["metrics"][key] for c in per_case]) for key in keys}
    foreground = {m: _nanmean([mean[key][m] for key in keys]) for m in SUMMARY_NAMES.values()}
    foreground[HD95_INFINITE] = sum(mean[key][HD95_INFINITE] for key in keys)
    return {"labels": [list(v) if isinstance(v, tuple) else v for v in labels], "tolerance_mm": options.tolerance_mm,
            "ignore_label": options.ignore_label, "metric_per_case": per_case, "mean": mean,
            "foreground_mean": foreground, **({"names": options.names} if options.names else {})}


def write_summary(summary: dict, path: str | os.PathLike) -> Path:
    """Write ``summary.json`` atomically (its folder created if needed)."""
    return write_json(summary, path)
