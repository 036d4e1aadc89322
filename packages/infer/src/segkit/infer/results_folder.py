"""Find an nnU-Net v2 result folder as ``nnUNetv2_predict -d DATASET -c CONFIG -tr TRAINER -p PLANS`` does: under
``$nnUNet_results``, in the dataset's folder (``DatasetXXX_Name``, found by its number or name)."""

from __future__ import annotations

import os
from pathlib import Path

from segkit.infer.errors import ModelLoadError

RESULTS_VARIABLE = "nnUNet_results"
TRAINER, PLANS = "nnUNetTrainer", "nnUNetPlans"  #: nnUNetv2_predict's default -tr and -p


def find_result_folder(dataset: str, configuration: str, *, trainer: str = TRAINER, plans: str = PLANS,
                       results: str | os.PathLike | None = None) -> Path:
    """The folder ``<results>/<dataset folder>/<trainer>__<plans>__<configuration>``.

    Args:
        dataset: the dataset's number (``4``, ``004``) or folder name (``Dataset004_Hippocampus``), never a path.
        results: the results root (default: ``$nnUNet_results``).

    Raises:
        ModelLoadError: no results root, a dataset that is neither a number nor a folder name, no such dataset (or
            several with that number), or no such result folder (the message lists the ones there are).
    """
    root = Path(results) if results is not None else _results_root()
    folder = _dataset_folder(root, dataset.strip())
    result = folder / f"{trainer}__{plans}__{configuration}"
    if not result.is_dir():
        there = sorted(p.name for p in folder.iterdir() if p.is_dir() and p.name.count("__") == 2)
        raise ModelLoadError(f"{folder} has no {result.name}; it has: {', '.join(there) or 'no result folders'}")
    return result


def _results_root() -> Path:
    value = os.environ.get(RESULTS_VARIABLE)
    if not value:
        raise ModelLoadError(f"a model given by dataset (-d) is looked up in ${RESULTS_VARIABLE}, which is not set; "
                             "set it, or give the result folder with -m")
    return Path(value)


def _dataset_folder(root: Path, dataset: str) -> Path:
    if not root.is_dir():
        raise ModelLoadError(f"results folder {root} {'is not a folder' if root.exists() else 'does not exist'}")
    if dataset in ("", ".", "..") or Path(dataset).name != dataset:  # a path would leave the results folder
        raise ModelLoadError(f"dataset must be a number or a dataset folder name of {root} (Dataset004_Name), got "
                             f"{dataset!r}")
    if dataset.isdigit():
        matches = sorted(p for p in root.glob(f"Dataset{int(dataset):03d}_*") if p.is_dir())
        if len(matches) == 1:
            return matches[0]
        found = ", ".join(p.name for p in matches) or "none"
        raise ModelLoadError(f"dataset {dataset} must match one folder Dataset{int(dataset):03d}_* in {root}; "
                             f"found: {found}")
    if not (root / dataset).is_dir():
        raise ModelLoadError(f"dataset {dataset!r} is not a folder of {root}")
    return root / dataset
