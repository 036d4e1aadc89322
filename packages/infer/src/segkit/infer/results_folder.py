"""Find an nnU-Net v2 result folder as ``nnUNetv2_predict -d DATASET -c CONFIG -tr TRAINER -p PLANS`` does: under
``$nnUNet_results``, in the dataset's folder (``DatasetXXX_Name``, found by its number or name)."""

from __future__ import annotations

import os
from pathlib import Path

from segkit.infer.errors import ModelLoadError
from segkit.io.errors import DatasetError
from segkit.io.nnunet_folders import RESULTS, dataset_folder, nnunet_folder

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
    try:
        root = Path(results) if results is not None else nnunet_folder(
            RESULTS, looked_up="a model given by dataset (-d)", instead="give the result folder with -m")
        folder = dataset_folder(root, dataset, kind="results")
    except DatasetError as err:
        raise ModelLoadError(str(err)) from None
    result = folder / f"{trainer}__{plans}__{configuration}"
    if not result.is_dir():
        there = sorted(p.name for p in folder.iterdir() if p.is_dir() and p.name.count("__") == 2)
        raise ModelLoadError(f"{folder} has no {result.name}; it has: {', '.join(there) or 'no result folders'}")
    return result
