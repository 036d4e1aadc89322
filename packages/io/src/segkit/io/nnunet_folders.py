"""nnU-Net's folder variables (``$nnUNet_raw``, ``$nnUNet_preprocessed``, ``$nnUNet_results``) and its datasets in
them, found by number (``4``) or folder name (``Dataset004_Hippocampus``), as its commands find them (``-d 4``)."""

from __future__ import annotations

import os
from pathlib import Path

from segkit.io.errors import DatasetError

RAW, PREPROCESSED, RESULTS = "nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"


def nnunet_folder(variable: str, *, looked_up: str, instead: str) -> Path:
    """The folder that nnU-Net's environment ``variable`` names.

    Args:
        variable: `RAW`, `PREPROCESSED` or `RESULTS`.
        looked_up: what is looked up there, for the message (``"a model given by dataset (-d)"``).
        instead: how to do without the variable, for the message (``"give the result folder with -m"``).

    Raises:
        DatasetError: the variable is not set.
    """
    value = os.environ.get(variable)
    if not value:
        raise DatasetError(f"{looked_up} is looked up in ${variable}, which is not set; set it, or {instead}")
    return Path(value)


def dataset_folder(root: Path, dataset: str, *, kind: str) -> Path:
    """The folder of ``dataset`` (a number, or a ``DatasetXXX_Name`` folder name, never a path) in ``root``.

    Args:
        kind: what ``root`` holds, for the messages (``"results"``).

    Raises:
        DatasetError: ``root`` is not a folder; ``dataset`` is a path, or a number that matches no folder or several;
            no folder of that name.
    """
    dataset = dataset.strip()
    if not root.is_dir():
        raise DatasetError(f"{kind} folder {root} {'is not a folder' if root.exists() else 'does not exist'}")
    if dataset in ("", ".", "..") or Path(dataset).name != dataset:  # a path would leave the root
        raise DatasetError(f"dataset must be a number or a dataset folder name of {root} (Dataset004_Name), got "
                           f"{dataset!r}")
    if dataset.isdigit():
        matches = sorted(p for p in root.glob(f"Dataset{int(dataset):03d}_*") if p.is_dir())
        if len(matches) == 1:
            return matches[0]
        found = ", ".join(p.name for p in matches) or "none"
        raise DatasetError(f"dataset {dataset} must match one folder Dataset{int(dataset):03d}_* in {root}; "
                           f"found: {found}")
    if not (root / dataset).is_dir():
        raise DatasetError(f"dataset {dataset!r} is not a folder of {root}")
    return root / dataset
