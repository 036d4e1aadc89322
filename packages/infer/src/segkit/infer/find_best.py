"""Choose the best configuration or ensemble from cross-validation predictions (``segkit-find-best``), and the
postprocessing that helps it, as ``nnUNetv2_find_best_configuration`` does."""

from __future__ import annotations

import itertools
import logging
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from segkit.infer.cases import image_files
from segkit.infer.crossval import crossval_record
from segkit.infer.ensemble import ensemble_folders
from segkit.infer.errors import InferError
from segkit.infer.evaluate import EvaluateOptions, evaluate_folders
from segkit.infer.metrics import as_label_or_region
from segkit.infer.postprocessing import PostprocessingPlan, determine_postprocessing, label_pairs
from segkit.io.atomic import write_json

logger = logging.getLogger(__name__)


def find_best(candidates: Mapping[str, str | os.PathLike], reference: str | os.PathLike, *,
              options: EvaluateOptions | None = None, try_ensembles: bool = True) -> dict:
    """Score each candidate (and each pair ensemble) on cross-validation; return the ranking, the winner and the
    largest-component postprocessing that raises the winner's Dice.

    Args:
        candidates: name -> folder of cross-validation predictions (label maps; ``.npz`` probabilities are
            needed for ensembles).
        reference: folder of reference label maps.
        options: metric options.
        try_ensembles: also score the average of every pair of candidates that saved probabilities.

    Returns:
        ``{"ranking": [{"name", "members", "foreground_dice"}...], "best": {...}, "postprocessing": {...}}``,
        best first; ``postprocessing`` is a `PostprocessingPlan` as a dict.

    Raises:
        InferError: no candidates, or candidates that predicted different cases.
    """
    if not candidates:
        raise InferError("find-best needs at least one candidate folder")
    _check_same_cases(candidates)
    scores, folders = [], {}
    with tempfile.TemporaryDirectory(prefix="segkit-find-best-") as tmp:
        for name, folder in candidates.items():
            folders[name] = Path(folder)
            scores.append(_score(name, [name], folders[name], reference, options))
        with_probs = [n for n, f in candidates.items() if any(Path(f).glob("*.npz"))]
        if try_ensembles and len(candidates) > 1 and len(with_probs) < len(candidates):
            logger.warning("no pair ensembles with %s: no probabilities (.npz) there (predict with "
                           "--save-probabilities to try them)", ", ".join(n for n in candidates if n not in with_probs))
        for a, b in itertools.combinations(with_probs, 2) if try_ensembles else ():
            name = f"ensemble {a} + {b}"
            folders[name] = Path(tmp) / f"{a}+{b}"
            ensemble_folders([candidates[a], candidates[b]], folders[name])
            scores.append(_score(name, [a, b], folders[name], reference, options))
        scores.sort(key=lambda s: -(s["foreground_dice"] if s["foreground_dice"] is not None else -1.0))
        best = scores[0]
        labels = [as_label_or_region(v) for v in best.pop("labels")]
        plan = determine_postprocessing(label_pairs(folders[best["name"]], reference), labels,
                                        ignore_label=options.ignore_label if options else None)
    for entry in scores:
        entry.pop("labels", None)
    return {"ranking": scores, "best": best, "postprocessing": plan.to_dict()}


def _check_same_cases(candidates: Mapping[str, str | os.PathLike]) -> None:
    # a ranking is only fair on one set of cases
    held = {name: {path.name for path in image_files(folder)} for name, folder in candidates.items()}
    first, cases = next(iter(held.items()))
    for name, other in held.items():
        if other != cases:
            raise InferError(f"candidates {first} and {name} predicted different cases ({len(cases)} and "
                             f"{len(other)} label maps); rank them on the same cross-validation cases")


def predict_arguments_of(predictions: str | os.PathLike) -> list[str]:
    """Return the ``segkit-predict`` arguments that predict as `segkit-crossval` did into ``predictions``.

    They come from the folder's record (`crossval_record`): ``-m`` for each model folder (several for an ensemble),
    and the step, test-time augmentation and precision where they differ from the defaults.

    Args:
        predictions: a folder of `segkit-crossval`'s predictions.

    Returns:
        The arguments, or none where the folder records no model.
    """
    recorded = crossval_record(predictions)
    model, prediction = recorded.get("model"), recorded.get("prediction") or {}
    folders = [model] if isinstance(model, str) else [str(m) for m in model or ()]
    if not folders:
        return []
    arguments = [part for folder in folders for part in ("-m", folder)]
    if prediction.get("step", 0.5) != 0.5:
        arguments += ["--step", str(prediction["step"])]
    if prediction.get("tta") is False:
        arguments.append("--no-tta")
    if prediction.get("shift_tta"):
        arguments += ["--shift-tta", str(prediction["shift_tta"])]
    if prediction.get("precision", "auto") != "auto":
        arguments += ["--precision", str(prediction["precision"])]
    return arguments


def _score(name: str, members: list[str], folder: Path, reference, options: EvaluateOptions | None) -> dict:
    summary = evaluate_folders(folder, reference, options=options, allow_missing=True)
    return {"name": name, "members": members, "foreground_dice": summary["foreground_mean"]["Dice"],
            "labels": summary["labels"]}


def write_instructions(result: dict, path: str | os.PathLike, *,
                       predict_arguments: Mapping[str, Sequence[str]] | None = None) -> Path:
    """Write the winner and how to run it as JSON (``inference_instructions.json``), and its postprocessing as
    ``postprocessing.json`` beside it. ``predict_arguments`` maps candidate names to their ``segkit-predict``
    arguments (`predict_arguments_of`; ``-m MODEL_NAME`` stands in the commands for a candidate without them)."""
    best = result["best"]
    known = predict_arguments or {}
    path = Path(path)
    plan = PostprocessingPlan.from_dict(result["postprocessing"])
    plan_path = plan.save(path.with_name("postprocessing.json"))
    ensemble = len(best["members"]) > 1
    raw = "OUTPUT_RAW" if plan.foreground or plan.classes else "OUTPUT"
    commands = [f"segkit-predict -i INPUT -o {f'OUTPUT_{m}' if ensemble else raw} "
                + " ".join(known.get(m) or ["-m", f"MODEL_{m}"]) + (" --save-probabilities" if ensemble else "")
                for m in best["members"]]
    if ensemble:
        commands.append("segkit-ensemble " + " ".join(f"OUTPUT_{m}" for m in best["members"]) + f" -o {raw}")
    if raw != "OUTPUT":
        commands.append(f"segkit-postprocess apply {raw} OUTPUT -p {plan_path}")
    payload = {**result, "commands": commands}
    write_json(payload, path)
    return path
