"""Cross-validation splits as nnU-Net makes them (``splits_final.json``), reproducible from a seed."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from segkit.io import atomic_path
from segkit.train.errors import TrainDataError

SPLITS_FILE = "splits_final.json"


def make_splits(case_ids: list[str] | tuple[str, ...], *, num_folds: int = 5, seed: int = 12345) -> list[dict]:
    """Split sorted `case_ids` into `num_folds` folds exactly as nnU-Net does (shuffled K-fold).

    Returns:
        One ``{"train": [...], "val": [...]}`` per fold, both lists sorted.
    """
    keys = sorted(case_ids)
    if len(keys) < num_folds:
        raise TrainDataError(f"{len(keys)} cases cannot be split into {num_folds} folds")
    order = np.arange(len(keys))
    np.random.RandomState(seed).shuffle(order)
    sizes = np.full(num_folds, len(keys) // num_folds)
    sizes[: len(keys) % num_folds] += 1
    splits, start = [], 0
    for size in sizes:
        val = set(order[start:start + size].tolist())
        start += size
        splits.append({"train": [k for i, k in enumerate(keys) if i not in val],
                       "val": [k for i, k in enumerate(keys) if i in val]})
    return splits


def load_or_create_splits(folder: Path, case_ids: tuple[str, ...], *, num_folds: int, seed: int) -> list[dict]:
    """Read ``folder/splits_final.json`` (a user-provided split wins), or create and save it."""
    path = Path(folder) / SPLITS_FILE
    if path.is_file():
        try:
            splits = json.loads(path.read_text())
        except json.JSONDecodeError as err:
            raise TrainDataError(f"{path}: invalid JSON ({err})") from err
        _check_shape(path, splits)
        known = set(case_ids)
        for i, split in enumerate(splits):
            missing = sorted((set(split["train"]) | set(split["val"])) - known)
            if missing:
                raise TrainDataError(f"{path}: fold {i} names cases that are not preprocessed: {missing[:5]}")
        return splits
    splits = make_splits(case_ids, num_folds=num_folds, seed=seed)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(splits, indent=2))
    return splits


def _check_shape(path: Path, splits) -> None:
    """A splits file is a list of ``{"train": [ids], "val": [ids]}`` (nnU-Net's ``splits_final.json``)."""
    expected = 'expected a list of {"train": [...], "val": [...]} objects (nnU-Net\'s splits_final.json)'
    if not isinstance(splits, list) or not splits:
        raise TrainDataError(f"{path}: {expected}, found {type(splits).__name__}")
    for i, split in enumerate(splits):
        ok = isinstance(split, dict) and all(
            isinstance(split.get(key), list) and all(isinstance(c, str) for c in split[key])
            for key in ("train", "val"))
        if not ok:
            raise TrainDataError(f"{path}: fold {i}: {expected}")
        if not split["train"]:
            raise TrainDataError(f"{path}: fold {i} has no training cases")


def fold_cases(splits: list[dict], fold: int | str, case_ids: tuple[str, ...]) -> tuple[list[str], list[str]]:
    """Return (train, val) case ids of `fold`; fold ``"all"`` trains and validates on every case, as nnU-Net does.

    Raises:
        TrainDataError: fold out of range.
    """
    if fold == "all":
        return sorted(case_ids), sorted(case_ids)
    if not isinstance(fold, int) or not 0 <= fold < len(splits):
        raise TrainDataError(f"fold {fold!r} out of range: expected 0..{len(splits) - 1} or 'all'")
    return list(splits[fold]["train"]), list(splits[fold]["val"])
