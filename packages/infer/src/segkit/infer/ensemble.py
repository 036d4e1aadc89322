"""Ensembling saved probability files of several predictions (configurations or models)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from segkit.infer.cases import check_output_folder
from segkit.infer.errors import InferError
from segkit.infer.export import indices_to_values
from segkit.infer.model_setup import read_dataset_labels
from segkit.infer.probabilities import LABELS_FILE, load_probabilities, read_label_values, save_probabilities
from segkit.infer.resampling import best_class, paint_regions
from segkit.io import atomic_path, read_image, write_image
from segkit.io.atomic import output_folder


def labels_from_probabilities(probabilities: np.ndarray, label_values: tuple[int, ...] | None = None, *,
                              regions: bool = False) -> np.ndarray:
    """Label map of ``(outputs, *spatial)`` probabilities: the most probable class, or for region outputs each
    region whose probability exceeds 0.5, later regions painted over earlier ones.

    Args:
        probabilities: softmax probabilities (one channel per class) or region sigmoids (no background channel).
        label_values: label value per class index (background first); None: the class indices themselves.
        regions: the channels are regions.
    """
    if regions:
        indices = paint_regions(torch.from_numpy(probabilities), threshold=0.5).numpy()
    else:  # torch's reduction over the class axis, unlike numpy's argmax, does not copy a strided array first
        indices = best_class(torch.from_numpy(probabilities), 0).numpy()
    expected = probabilities.shape[0] + regions
    if label_values is None:
        label_values = tuple(range(expected))
    if len(label_values) != expected:
        raise InferError(f"{probabilities.shape[0]} probability channels do not fit the labels {list(label_values)}"
                         + (" (regions)" if regions else ""))
    return indices_to_values(indices, label_values)


def ensemble_folders(folders: Sequence[str | os.PathLike], output: str | os.PathLike, *,
                     save_probabilities_too: bool = False) -> list[Path]:
    """Average the ``CASE.npz`` probabilities of every case (all folders must hold the same); write ``CASE.nii.gz``.

    Each folder is a ``segkit-predict --save-probabilities`` (or nnUNetv2_predict) output; the label map
    ``CASE.nii.gz`` of the first folder supplies the grid, and its ``dataset.json`` the labels: softmax
    outputs take the most probable class, region outputs (``regions_class_order``) are thresholded at 0.5 and
    painted in order. Without a ``dataset.json`` the labels are the class indices. The output folder gets the
    same ``dataset.json``, so ensembles can be ensembled again.

    Raises:
        InferError: fewer than two folders, no probabilities, folders holding different cases, probabilities of
            different shapes or with NaN, or channels that do not fit the labels.
        OutputError: ``output`` is one of ``folders``.
    """
    folders = [Path(f) for f in folders]
    if len(folders) < 2:
        raise InferError(f"ensembling needs at least two folders, got {len(folders)}")
    for folder in folders:
        if not folder.is_dir():
            raise InferError(f"folder {folder} does not exist")
    check_output_folder(output, folders)
    held = [{p.stem for p in f.glob("*.npz")} for f in folders]
    every_case = set.union(*held)
    if not every_case:
        raise InferError(f"no probabilities (.npz) in any of {', '.join(map(str, folders))}")
    for folder, cases in zip(folders, held, strict=True):
        if cases != every_case:
            missing = sorted(every_case - cases)
            raise InferError(f"{folder} lacks the probabilities of {len(missing)} case(s) the others have "
                             f"({', '.join(missing[:3])}); every folder must hold the same cases")
    labels, names = read_label_values(folders[0]), _class_names(folders[0])
    for folder in folders[1:]:
        other = read_label_values(folder)
        if other is not None and labels is not None and other != labels:
            raise InferError(f"{folder} predicts labels {list(other[0])}, {folders[0]} labels {list(labels[0])}"
                             " (or one has regions and the other not)")
        other_names = _class_names(folder)
        if other_names is not None and names is not None and other_names != names:  # same values, other classes
            raise InferError(f"{folder} names its labels {other_names}, {folders[0]} {names}: their probability "
                             "channels hold different classes")
    with output_folder(output, side_files=(LABELS_FILE,)) as out:
        if labels is not None:
            with atomic_path(out / LABELS_FILE) as tmp:
                shutil.copyfile(folders[0] / LABELS_FILE, tmp)
        return [_ensemble_case(case, folders, out, labels=labels, save_probabilities_too=save_probabilities_too)
                for case in sorted(every_case)]


def _class_names(folder: Path) -> dict | None:
    """Class name -> label value (or region) from ``FOLDER/dataset.json`` (None: no file)."""
    path = folder / LABELS_FILE
    return read_dataset_labels(path)[0] if path.is_file() else None


def _ensemble_case(case: str, folders: Sequence[Path], out: Path, *,
                   labels: tuple[tuple[int, ...], bool] | None, save_probabilities_too: bool) -> Path:
    """Average one case's probabilities over ``folders``; write its label map (and probabilities) into ``out``."""
    label_values, regions = labels if labels is not None else (None, False)
    mean = _mean_probabilities([f / f"{case}.npz" for f in folders])
    grid = next((p for p in sorted(folders[0].glob(f"{case}.*")) if p.suffix != ".npz"), None)
    if grid is None:
        raise InferError(f"case {case}: no label map beside {folders[0] / (case + '.npz')} to take the grid from")
    image = read_image(grid)
    labels_map = image.with_array(labels_from_probabilities(mean, label_values, regions=regions))
    if save_probabilities_too:
        save_probabilities(mean, out / f"{case}.npz")
    return write_image(labels_map, out / grid.name, label=True)


def _mean_probabilities(paths: Sequence[Path]) -> np.ndarray:
    """Average probability files, adding one file at a time to a running sum (the same float32 result as a mean
    over all of them stacked, with two arrays in memory instead of one per file)."""
    total = load_probabilities(paths[0])
    for path in paths[1:]:
        probabilities = load_probabilities(path)
        if probabilities.shape != total.shape:
            raise InferError(f"probability shapes differ: {total.shape} in {paths[0]}, {probabilities.shape} in {path}")
        torch.from_numpy(total).add_(torch.from_numpy(probabilities))  # numpy's += is slower across layouts
        del probabilities
    return np.divide(total, len(paths), out=total)
