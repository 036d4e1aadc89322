"""Cross-validation on the raw images: each fold's network predicts that fold's validation cases.

The folds' predictions go into one folder and are scored against the dataset's ``labelsTr`` (what nnU-Net's
validation export plus ``nnUNetv2_accumulate_crossval_results`` give). The folder is what `segkit-find-best`
and ``segkit-postprocess determine`` take.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from segkit.infer.batch import BatchOptions, predict_folder
from segkit.infer.cases import check_output_folder
from segkit.infer.errors import InferError
from segkit.infer.evaluate import EvaluateOptions, evaluate_folders, write_summary
from segkit.infer.model_folder import ModelFolders, check_model_folder, folder_list
from segkit.infer.predictor import PredictOptions, Predictor
from segkit.io.atomic import write_json
from segkit.io.dataset import Dataset

SPLITS_FILE = "splits_final.json"
#: what made a cross-validation folder's predictions (model folders, prediction settings), written with its first case
RECORD_FILE = "crossval.json"


def read_splits(path: str | os.PathLike) -> list[dict[str, list[str]]]:
    """Read an nnU-Net ``splits_final.json``: one ``{"train": [...], "val": [...]}`` per fold.

    Raises:
        InferError: missing file or not a list of folds with ``val`` case lists.
    """
    try:
        splits = json.loads(Path(path).read_text())
        if not isinstance(splits, list) or not all(isinstance(s["val"], list) for s in splits):
            raise ValueError("expected a list of {'train': [...], 'val': [...]}")
    except (OSError, json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
        raise InferError(f"{path}: cannot read the cross-validation splits ({err})") from err
    seen: dict[str, int] = {}
    for fold, split in enumerate(splits):
        for case in split["val"]:
            if case in seen:  # it would be predicted twice, by two folds' networks, into one file
                raise InferError(f"{path}: case {case!r} is a validation case of fold {seen[case]} and of fold {fold}; "
                                 "each case validates one fold")
            seen[case] = fold
    return splits


def crossval_cases(model_folder: ModelFolders, dataset_folder: str | os.PathLike, *,
                   folds: Sequence[int] | None = None,
                   splits_file: str | os.PathLike | None = None) -> dict[int, tuple[str, ...]]:
    """The validation cases of each fold to run, checked against the dataset.

    Args:
        model_folder: a segkit model folder or an nnU-Net result folder with ``fold_K`` subfolders, or several to
            ensemble (trained on the same splits).
        dataset_folder: the raw nnU-Net dataset (``imagesTr``, ``labelsTr``, ``dataset.json``).
        folds: the folds to run (default: every fold of the splits that has a ``fold_K`` folder in every model).
        splits_file: the splits (default: ``splits_final.json`` of the model folder, as segkit-train writes it;
            nnU-Net keeps it in its preprocessed folder).

    Raises:
        InferError: not a model folder, unreadable splits or model folders trained on different ones, no folds, or
            validation cases that are not in the dataset.
    """
    folders = folder_list(model_folder)
    for folder in folders:
        check_model_folder(folder)
    if splits_file is None and not (folders[0] / SPLITS_FILE).is_file():
        raise InferError(f"{folders[0]} has no {SPLITS_FILE} (an imported or nnU-Net model folder keeps none); "
                         f"give the training's splits with --splits (nnU-Net's: nnUNet_preprocessed/DATASET/"
                         f"{SPLITS_FILE})")
    source = Path(splits_file) if splits_file is not None else folders[0] / SPLITS_FILE
    splits = read_splits(source)
    for own in (folder / SPLITS_FILE for folder in folders):
        if own != source and own.is_file() and read_splits(own) != splits:
            raise InferError(f"{own.parent} was trained on other cross-validation splits than {source}; an "
                             "ensemble's folds must share their validation cases")
    if folds is None:
        folds = [k for k in range(len(splits)) if all((f / f"fold_{k}").is_dir() for f in folders)]
    if not folds:
        raise InferError(f"{', '.join(map(str, folders))}: no fold_K folder of the {len(splits)} cross-validation "
                         "folds" + (" in every one" if len(folders) > 1 else ""))
    known = {case.identifier for case in Dataset.load(dataset_folder).training}
    cases = {}
    for fold in folds:
        if not 0 <= fold < len(splits):
            raise InferError(f"fold {fold} is not in the splits ({len(splits)} folds)")
        unknown = sorted(set(splits[fold]["val"]) - known)
        if unknown:
            raise InferError(f"fold {fold}: validation case(s) {unknown[:3]} are not in {dataset_folder}/imagesTr")
        cases[int(fold)] = tuple(splits[fold]["val"])
    return cases


def predict_crossval(model_folder: ModelFolders, dataset_folder: str | os.PathLike,
                     output: str | os.PathLike, cases: Mapping[int, Sequence[str]], *, device: str = "cpu",
                     options: PredictOptions | None = None, batch: BatchOptions | None = None,
                     on_case: Callable[[object, str], None] | None = None) -> dict:
    """Predict each fold's validation cases with that fold's network into ``output``; score them.

    Args:
        model_folder: the model folder, or several whose folds are ensembled.
        dataset_folder: the raw dataset.
        output: one folder for the predictions of all folds; gets ``summary.json``, which scores every label map
            in it (so folds predicted into it by earlier runs count in the overall means; ``"folds"`` has this
            run's folds).
        cases: fold -> its validation case identifiers (`crossval_cases`).
        device: ``cpu``, ``cuda``, ``cuda:N``.
        options: prediction options (TTA, step, precision).
        batch: probabilities and ``--continue`` (its ``case_ids`` are set per fold).
        on_case: progress callback, as for `predict_folder`.

    Returns:
        `evaluate_folders`' summary plus ``"model"`` (the model folder, a list for several) and ``"prediction"``
        (step, test-time augmentation and precision), as `RECORD_FILE` holds them for `segkit-find-best`'s
        commands, and ``"folds"``: per fold, its number of cases and mean Dice per label.

    Raises:
        OutputError: ``output`` is the dataset folder, its ``imagesTr`` or its ``labelsTr``.
        InferError: ``output`` holds predictions that an earlier run made with another model or other settings.
    """
    dataset = Dataset.load(dataset_folder)
    check_output_folder(output, [dataset.root, dataset.root / "imagesTr", dataset.root / "labelsTr"])
    batch = batch or BatchOptions()
    options = options or PredictOptions()
    settings = {"step": options.step, "tta": options.tta, "shift_tta": options.shift_tta,
                "precision": options.precision.value}
    resolved = [str(folder.resolve()) for folder in folder_list(model_folder)]
    record = {"model": resolved[0] if len(resolved) == 1 else resolved, "prediction": settings}
    _check_same_record(Path(output), record)
    recording = _RecordWithFirstCase(Path(output) / RECORD_FILE, record, on_case)
    for fold, ids in cases.items():
        predictor = Predictor.from_model_folder(model_folder, folds=[fold], device=device, options=options)
        fold_batch = replace(batch, case_ids=frozenset(ids))
        predict_folder(predictor, dataset.root / "imagesTr", output, options=fold_batch, on_case=recording)
    summary = evaluate_folders(output, dataset.root / "labelsTr",
                               options=EvaluateOptions.from_dataset_json(dataset.root / "dataset.json"),
                               allow_missing=True)
    ending = dataset.info.file_ending
    summary.update(record)
    summary["folds"] = _per_fold(summary, {f"{case}{ending}": fold for fold, ids in cases.items() for case in ids})
    write_summary(summary, Path(output) / "summary.json")
    return summary


def crossval_record(predictions: str | os.PathLike) -> dict:
    """Return what made a folder of `predict_crossval`'s predictions: ``"model"`` and ``"prediction"`` settings, from
    its `RECORD_FILE` (or, for a folder of an older segkit, its ``summary.json``); empty where neither says."""
    for name in (RECORD_FILE, "summary.json"):
        try:
            found = json.loads((Path(predictions) / name).read_text())
        except (OSError, ValueError):
            continue
        if isinstance(found, dict) and found.get("model"):
            return {key: found[key] for key in ("model", "prediction") if key in found}
    return {}


class _RecordWithFirstCase:
    """A `predict_folder` case callback that writes the folder's record once its first case is written (so that an
    interrupted run is recorded, and a run that writes nothing leaves nothing), then calls ``on_case``."""

    def __init__(self, path: Path, record: dict, on_case: Callable[[object, str], None] | None) -> None:
        self.path, self.record, self.on_case, self.written = path, record, on_case, path.is_file()

    def __call__(self, case: object, status: str) -> None:
        if status == "done" and not self.written:
            write_json(self.record, self.path)
            self.written = True
        if self.on_case is not None:
            self.on_case(case, status)


def _check_same_record(output: Path, record: dict) -> None:
    """Refuse to add predictions to ``output`` if its record (`crossval_record`) names another model or other
    prediction settings: its scores would mix the two, and `segkit-find-best` would recommend this run's for all."""
    recorded = crossval_record(output)
    if recorded.get("model", record["model"]) != record["model"]:
        raise InferError(f"{output} holds predictions of {recorded['model']}; this run predicts with "
                         f"{record['model']}: predict into another folder")
    before, now = recorded.get("prediction") or {}, record["prediction"]
    differ = [key for key, value in before.items() if key in now and now[key] != value]
    if differ:
        raise InferError(f"{output} holds predictions made with " + ", ".join(f"{k} {before[k]}" for k in differ)
                         + "; this run asks for " + ", ".join(f"{k} {now[k]}" for k in differ)
                         + ": predict into another folder")


def _per_fold(summary: dict, fold_of_file: dict[str, int]) -> dict[str, dict]:
    per_fold: dict[str, dict] = {}
    for fold in sorted(set(fold_of_file.values())):
        cases = [c for c in summary["metric_per_case"] if fold_of_file.get(c["case"]) == fold]
        dice = {}
        for key in summary["mean"]:
            values = [c["metrics"][key]["Dice"] for c in cases if c["metrics"][key]["Dice"] is not None]
            dice[key] = float(np.mean(values)) if values else None
        present = [v for v in dice.values() if v is not None]
        per_fold[str(fold)] = {"cases": len(cases), "Dice": dice,
                               "foreground_dice": float(np.mean(present)) if present else None}
    return per_fold
