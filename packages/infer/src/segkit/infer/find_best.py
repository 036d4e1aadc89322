"""Choose the best configuration or ensemble from cross-validation predictions (``segkit-find-best``)."""

from __future__ import annotations

import itertools
import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

from segkit.infer.ensemble import ensemble_folders
from segkit.infer.errors import InferError
from segkit.infer.evaluate import EvaluateOptions, evaluate_folders
from segkit.io import atomic_path


def find_best(candidates: Mapping[str, str | os.PathLike], reference: str | os.PathLike, *,
              options: EvaluateOptions | None = None, try_ensembles: bool = True) -> dict:
    """Score each candidate (and each pair ensemble) on cross-validation; return the ranking and the winner.

    Args:
        candidates: name -> folder of cross-validation predictions (label maps; ``.npz`` probabilities are
            needed for ensembles).
        reference: folder of reference label maps.
        options: metric options.
        try_ensembles: also score the average of every pair of candidates that saved probabilities.

    Returns:
        ``{"ranking": [{"name", "members", "foreground_dice"}...], "best": {...}}``, best first.

    Raises:
        InferError: no candidates.
    """
    if not candidates:
        raise InferError("find-best needs at least one candidate folder")
    scores = []
    for name, folder in candidates.items():
        summary = evaluate_folders(folder, reference, options=options)
        scores.append({"name": name, "members": [name], "foreground_dice": summary["foreground_mean"]["dice"]})
    with_probs = [n for n, f in candidates.items() if any(Path(f).glob("*.npz"))]
    if try_ensembles:
        with tempfile.TemporaryDirectory(prefix="segkit-find-best-") as tmp:
            for a, b in itertools.combinations(with_probs, 2):
                out = Path(tmp) / f"{a}+{b}"
                ensemble_folders([candidates[a], candidates[b]], out)
                summary = evaluate_folders(out, reference, options=options)
                scores.append({"name": f"ensemble {a} + {b}", "members": [a, b],
                               "foreground_dice": summary["foreground_mean"]["dice"]})
    scores.sort(key=lambda s: -(s["foreground_dice"] if s["foreground_dice"] is not None else -1.0))
    return {"ranking": scores, "best": scores[0]}


def write_instructions(result: dict, path: str | os.PathLike, *,
                       model_folders: Mapping[str, str] | None = None) -> Path:
    """Write the winner and how to run it as JSON (``inference_instructions.json``)."""
    best = result["best"]
    folders = model_folders or {}
    commands = [f"segkit-predict -i INPUT -o OUTPUT_{m} -m {folders.get(m, m)}"
                + (" --save-probabilities" if len(best["members"]) > 1 else "") for m in best["members"]]
    if len(best["members"]) > 1:
        commands.append("segkit-ensemble " + " ".join(f"OUTPUT_{m}" for m in best["members"]) + " -o OUTPUT")
    payload = {**result, "commands": commands}
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(payload, indent=2))
    return path
