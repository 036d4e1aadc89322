"""Connected-component postprocessing: keep the largest component (whole foreground, or per class).

A class is a label value or, for region-based models, a region (a tuple of label values, taken as their union,
as nnU-Net postprocesses regions); removed voxels become background.

`determine_postprocessing` decides on cross-validation results (predictions beside references) which
operations help, keeping each only where it raises the mean Dice; the decision is a small JSON file that
`apply_postprocessing` (and ``segkit-postprocess apply``) applies to new predictions.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.ndimage import find_objects, generate_binary_structure, label

from segkit.infer.cases import image_files
from segkit.infer.errors import InferError
from segkit.infer.evaluate import read_label_pair
from segkit.infer.metrics import LabelOrRegion, foreground_classes, label_mask
from segkit.io.atomic import write_json

FORMAT = "segkit-postprocessing/1"


@dataclass(frozen=True)
class PostprocessingPlan:
    """Which largest-component operations to apply.

    Args:
        foreground: keep only the largest connected component of all foreground labels together.
        classes: labels (or regions) for which only the largest component of that label (region) is kept.
        dice_before: mean foreground Dice on the cross-validation cases without postprocessing.
        dice_after: the same with this plan applied.
    """

    foreground: bool = False
    classes: tuple[LabelOrRegion, ...] = ()
    dice_before: float | None = None
    dice_after: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "classes", foreground_classes(self.classes))

    def to_dict(self) -> dict:
        """JSON object."""
        return {"format": FORMAT, "keep_largest_foreground": self.foreground,
                "keep_largest_per_class": [list(c) if isinstance(c, tuple) else c for c in self.classes],
                "dice_before": self.dice_before,
                "dice_after": self.dice_after}

    @classmethod
    def from_dict(cls, data: dict) -> PostprocessingPlan:
        """Parse `to_dict`'s object."""
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            found = data.get("format") if isinstance(data, dict) else type(data).__name__
            raise InferError(f"postprocessing JSON: 'format' must be {FORMAT!r}, got {found!r}")
        classes = data.get("keep_largest_per_class", [])
        if not isinstance(classes, list):
            raise InferError(f"postprocessing JSON: 'keep_largest_per_class' must be a list, got {classes!r}")
        try:
            return cls(foreground=bool(data.get("keep_largest_foreground", False)), classes=tuple(classes),
                       dice_before=data.get("dice_before"), dice_after=data.get("dice_after"))
        except (TypeError, ValueError) as err:
            raise InferError(f"postprocessing JSON: 'keep_largest_per_class' holds {classes!r} ({err})") from err

    def save(self, path: str | os.PathLike) -> Path:
        """Write the JSON atomically (its folder created if needed)."""
        return write_json(self.to_dict(), path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> PostprocessingPlan:
        """Read a JSON written by `save`."""
        try:
            return cls.from_dict(json.loads(Path(path).read_text()))
        except (OSError, json.JSONDecodeError) as err:
            raise InferError(f"{path}: cannot read postprocessing JSON ({err})") from err


def largest_component(mask: np.ndarray) -> np.ndarray:
    """Return the largest face-connected component of a boolean mask (empty stays empty).

    Example:
        >>> m = np.zeros((1, 1, 6), bool); m[0, 0, [0, 2, 3]] = True
        >>> largest_component(m)[0, 0].astype(int).tolist()
        [0, 0, 1, 1, 0, 0]
    """
    components, count = label(mask, structure=generate_binary_structure(mask.ndim, 1))
    if count <= 1:
        return mask.copy()
    sizes = np.bincount(components.ravel())
    sizes[0] = 0
    return components == int(sizes.argmax())


def remove_small_components(labels: np.ndarray, max_voxels: float) -> np.ndarray:
    """Return ``labels`` with every face-connected component of a label value that has at most ``max_voxels``
    voxels set to background (TotalSegmentator's ``--remove_small_blobs``, there in mm3 over the voxel volume).

    Example:
        >>> labels = np.array([[[1, 1, 0, 1, 2, 2, 2]]])
        >>> remove_small_components(labels, 2).tolist()
        [[[0, 0, 0, 0, 2, 2, 2]]]
    """
    out = labels.copy()
    structure = generate_binary_structure(labels.ndim, 1)
    for value, box in enumerate(find_objects(labels), start=1):  # each label value's bounding box
        if box is None:
            continue
        components, _ = label(labels[box] == value, structure=structure)
        sizes = np.bincount(components.ravel())
        small = np.flatnonzero(sizes <= max_voxels)
        out[box][np.isin(components, small[small > 0])] = 0
    return out


def apply_postprocessing(labels: np.ndarray, plan: PostprocessingPlan) -> np.ndarray:
    """Return ``labels`` with the plan's components removed (set to background)."""
    out = labels.copy()
    if plan.foreground:
        out[(out > 0) & ~largest_component(out > 0)] = 0
    for value in plan.classes:
        mask = label_mask(out, value)
        out[mask & ~largest_component(mask)] = 0
    return out


def label_pairs(pred_dir: str | os.PathLike, ref_dir: str | os.PathLike) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(prediction, reference)`` label arrays of every prediction in ``pred_dir`` (same file names).

    Raises:
        InferError: no predictions, a prediction without reference, on another grid, or not a label map.
    """
    pairs = []
    for path in image_files(pred_dir):
        ref = Path(ref_dir) / path.name
        if not ref.is_file():
            raise InferError(f"no reference {ref} for prediction {path.name}")
        pred_image, ref_image = read_label_pair(path, ref)
        pairs.append((np.asarray(pred_image.array), np.asarray(ref_image.array)))
    if not pairs:
        raise InferError(f"no predicted label maps in {pred_dir}")
    return pairs


def _mean_dice(pairs: Sequence[tuple[np.ndarray, np.ndarray]], labels: Sequence[LabelOrRegion],
               ignore_label: int | None) -> dict[LabelOrRegion, float]:
    out = {}
    for value in labels:
        scores = []
        for pred, ref in pairs:
            x, y = label_mask(pred, value), label_mask(ref, value)
            if ignore_label is not None:
                valid = ref != ignore_label
                x, y = x & valid, y & valid
            total = x.sum() + y.sum()
            if total:
                scores.append(2.0 * (x & y).sum() / total)
        out[value] = float(np.mean(scores)) if scores else float("nan")
    return out


def determine_postprocessing(pairs: Sequence[tuple[np.ndarray, np.ndarray]], labels: Sequence[LabelOrRegion], *,
                             ignore_label: int | None = None) -> PostprocessingPlan:
    """Choose the operations that raise the mean Dice on ``(prediction, reference)`` pairs.

    First the whole-foreground operation (kept if the mean over classes rises), then, on top of it, each
    class's (or region's) operation (kept if that class's Dice rises). Voxels whose reference is
    ``ignore_label`` (not annotated) count for neither side.
    """
    if not pairs:
        raise InferError("postprocessing needs at least one (prediction, reference) pair")
    labels = list(foreground_classes(labels))

    def dice(plan: PostprocessingPlan | None, scored: Sequence[LabelOrRegion]) -> dict[LabelOrRegion, float]:
        done = pairs if plan is None else [(apply_postprocessing(p, plan), r) for p, r in pairs]
        return _mean_dice(done, scored, ignore_label)

    base = dice(None, labels)
    before = float(np.nanmean(list(base.values())))
    fg = dice(PostprocessingPlan(foreground=True), labels)
    use_fg = float(np.nanmean(list(fg.values()))) > before
    current = fg if use_fg else base
    classes = []
    for value in labels:
        score = dice(PostprocessingPlan(foreground=use_fg, classes=(value,)), [value])[value]
        if score > current[value]:
            classes.append(value)
    after = dice(PostprocessingPlan(foreground=use_fg, classes=tuple(classes)), labels)
    return PostprocessingPlan(foreground=use_fg, classes=tuple(classes), dice_before=before,
                              dice_after=float(np.nanmean(list(after.values()))))
