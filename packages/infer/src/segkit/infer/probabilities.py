"""Probability files: nnU-Net's ``.npz`` layout (key ``probabilities``, ``(classes, z, y, x)``), and the
``dataset.json`` beside them that says which label each probability channel stands for."""

from __future__ import annotations

import json
import os
import zipfile
import zlib
from pathlib import Path

import numpy as np

from segkit.infer.errors import InferError
from segkit.infer.model_setup import label_values_of, read_dataset_labels
from segkit.io import atomic_path

KEY = "probabilities"
LABELS_FILE = "dataset.json"


def write_labels_file(folder: str | os.PathLike, labels: dict[str, int | tuple[int, ...]],
                      regions_class_order: tuple[int, ...] | None, file_ending: str) -> Path:
    """Write ``FOLDER/dataset.json`` with the model's labels, as nnUNetv2_predict leaves its dataset.json there."""
    data = {"labels": {k: list(v) if isinstance(v, tuple) else v for k, v in labels.items()},
            "file_ending": file_ending}
    if regions_class_order is not None:
        data["regions_class_order"] = list(regions_class_order)
    path = Path(folder) / LABELS_FILE
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2))
    return path


def read_label_values(folder: str | os.PathLike) -> tuple[tuple[int, ...], bool] | None:
    """Label value per class index and whether outputs are regions, from ``FOLDER/dataset.json`` (None: no file).

    Raises:
        InferError: the file exists but its labels cannot be read.
    """
    path = Path(folder) / LABELS_FILE
    if not path.is_file():
        return None
    labels, order, _ = read_dataset_labels(path)
    return label_values_of(labels, order), order is not None


def save_probabilities(probabilities: np.ndarray, path: str | os.PathLike) -> Path:
    """Write ``(classes, i, j, k)`` probabilities as nnU-Net does (axes reversed to (c, z, y, x), float32),
    atomically.

    The archive is stored without compression: float probabilities barely compress (to 91% of their size at zlib's
    default level), and compressing them ran at 18 MB/s on these CPUs (36 s for the 118 classes of a 3 mm CT).
    `numpy.load` reads both kinds alike.
    """
    path = Path(path)
    reversed_axes = np.transpose(probabilities, (0, *range(probabilities.ndim - 1, 0, -1)))
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            np.savez(handle, **{KEY: reversed_axes.astype(np.float32, copy=False)})
    return path


def load_probabilities(path: str | os.PathLike) -> np.ndarray:
    """Read a probabilities ``.npz`` (ours or nnU-Net's) as ``(classes, i, j, k)`` float32.

    Raises:
        InferError: missing file, or no ``probabilities`` array in it.
    """
    try:
        with np.load(path) as data:
            if KEY not in data:
                raise InferError(f"{path}: no {KEY!r} array (keys: {', '.join(data.files)})")
            array = data[KEY]
    except (OSError, EOFError, ValueError, zipfile.BadZipFile, zlib.error) as err:
        raise InferError(f"{path}: cannot read probabilities ({err})") from err
    return np.ascontiguousarray(np.transpose(array, (0, *range(array.ndim - 1, 0, -1))), dtype=np.float32)
