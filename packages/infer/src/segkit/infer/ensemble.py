"""Ensembling saved probability files of several predictions (configurations or models)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from segkit.infer.cases import check_output_folder
from segkit.infer.errors import InferError
from segkit.infer.probabilities import load_probabilities, save_probabilities
from segkit.io import read_image, write_image


def ensemble_folders(folders: Sequence[str | os.PathLike], output: str | os.PathLike, *,
                     save_probabilities_too: bool = False) -> list[Path]:
    """Average the ``CASE.npz`` probabilities of every case present in all folders; write ``CASE.nii.gz``.

    Each folder is a ``segkit-predict --save-probabilities`` (or nnUNetv2_predict) output; the label map
    ``CASE.nii.gz`` of the first folder supplies the grid. Labels are the class indices (label values are
    consecutive from 0 in nnU-Net and segkit datasets).

    Raises:
        InferError: fewer than two folders, no common case, or probabilities of different shapes.
    """
    folders = [Path(f) for f in folders]
    if len(folders) < 2:
        raise InferError(f"ensembling needs at least two folders, got {len(folders)}")
    for folder in folders:
        if not folder.is_dir():
            raise InferError(f"folder {folder} does not exist")
    common = set.intersection(*({p.stem for p in f.glob("*.npz")} for f in folders))
    if not common:
        raise InferError(f"no case has probabilities (.npz) in all of {', '.join(map(str, folders))}")
    out = check_output_folder(output)
    written = []
    for case in sorted(common):
        probs = [load_probabilities(f / f"{case}.npz") for f in folders]
        if len({p.shape for p in probs}) != 1:
            raise InferError(f"case {case}: probability shapes differ ({[p.shape for p in probs]})")
        mean = np.mean(probs, axis=0)
        grid_files = sorted(folders[0].glob(f"{case}.*"))
        grid = next((p for p in grid_files if p.suffix != ".npz"), None)
        if grid is None:
            raise InferError(f"case {case}: no label map beside {folders[0] / (case + '.npz')} to take the grid from")
        image = read_image(grid)
        name = grid.name
        if save_probabilities_too:
            save_probabilities(mean, out / f"{case}.npz")
        written.append(write_image(image.with_array(mean.argmax(0).astype(np.uint16)), out / name, label=True))
    return written
