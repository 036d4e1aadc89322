"""Probability files: nnU-Net's ``.npz`` layout (key ``probabilities``, ``(classes, z, y, x)``)."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np

from segkit.infer.errors import InferError
from segkit.io import atomic_path

KEY = "probabilities"


def save_probabilities(probabilities: np.ndarray, path: str | os.PathLike) -> Path:
    """Write ``(classes, i, j, k)`` probabilities as nnU-Net does (axes reversed to (c, z, y, x)), atomically."""
    path = Path(path)
    reversed_axes = np.transpose(probabilities, (0, *range(probabilities.ndim - 1, 0, -1)))
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            np.savez_compressed(handle, **{KEY: reversed_axes.astype(np.float32)})
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
    except (OSError, ValueError, zipfile.BadZipFile) as err:
        raise InferError(f"{path}: cannot read probabilities ({err})") from err
    return np.ascontiguousarray(np.transpose(array, (0, *range(array.ndim - 1, 0, -1))), dtype=np.float32)
