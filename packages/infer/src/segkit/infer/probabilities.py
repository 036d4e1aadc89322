"""Probability files: nnU-Net's ``.npz`` layout (key ``probabilities``, ``(classes, z, y, x)``), and the
``dataset.json`` beside them that says which label each probability channel stands for."""

from __future__ import annotations

import json
import os
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import numpy as np

from segkit.infer.errors import InferError, OutputError
from segkit.infer.model_setup import label_values_of, read_dataset_labels
from segkit.io import atomic_path

KEY = "probabilities"
LABELS_FILE = "dataset.json"
SLAB_BYTES = 1 << 26
"""Bytes of one slab that `save_probabilities` transposes and writes at a time."""
T = TypeVar("T")
_DONE = object()


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


def write_probabilities(path: str | os.PathLike, shape: tuple[int, ...],
                        slabs: Iterable[tuple[slice, np.ndarray]]) -> Path:
    """Write ``(classes, i, j, k)`` probabilities, given as slabs of the first image axis, as nnU-Net's ``.npz``
    (key ``probabilities``, axes reversed to ``(c, z, y, x)``, float32), atomically.

    ``slabs`` yields ``(rows, probabilities[:, rows])`` with rows in increasing order. Each slab is written as it
    comes, so the whole array need not exist, and the next one is taken (in a thread) while it is written. The
    array is stored in Fortran order (the first image axis varies slowest, so each slab is one stretch of the
    file), which `numpy.load` reads like any other. The archive is not compressed: float probabilities barely
    compress (to 91% of their size at zlib's default level), and compressing them ran at 18 MB/s on these CPUs
    (36 s for the 118 classes of a 3 mm CT).

    Raises:
        OutputError: the file cannot be written (a full disk); no part of it is left.
    """
    path = Path(path)
    header = {"descr": np.lib.format.dtype_to_descr(np.dtype(np.float32)), "fortran_order": True,
              "shape": (shape[0], *reversed(shape[1:]))}
    try:
        with atomic_path(path) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as archive:
            with archive.open(f"{KEY}.npy", "w", force_zip64=True) as handle:
                np.lib.format.write_array_header_1_0(handle, header)
                written = 0
                for rows, slab in _one_ahead(iter(slabs)):
                    if rows.start != written or slab.shape != (shape[0], rows.stop - rows.start, *shape[2:]):
                        raise ValueError(f"slab {rows} of shape {slab.shape} does not continue a {shape} array at "
                                         f"row {written}")
                    handle.write(np.ascontiguousarray(np.moveaxis(slab, 0, -1), dtype=np.float32).data)
                    written = rows.stop
                if written != shape[1]:
                    raise ValueError(f"slabs end at row {written} of {shape[1]}")
    except OSError as err:  # a full disk: the temp file is gone, nothing half-written stays
        raise OutputError(f"{path}: could not write ({err.strerror or err})") from err
    return path


def _one_ahead(items: Iterator[T]) -> Iterator[T]:
    """Yield the items of ``items``, taking the next one in a thread while the caller handles the current one."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        upcoming = pool.submit(next, items, _DONE)
        while (item := upcoming.result()) is not _DONE:
            upcoming = pool.submit(next, items, _DONE)
            yield item


def save_probabilities(probabilities: np.ndarray, path: str | os.PathLike) -> Path:
    """Write ``(classes, i, j, k)`` probabilities as `write_probabilities` does, from one array."""
    step = max(1, SLAB_BYTES // (probabilities[:, :1].size * 4))
    length = probabilities.shape[1]
    rows = (slice(start, min(start + step, length)) for start in range(0, length, step))
    return write_probabilities(path, probabilities.shape, ((r, probabilities[:, r]) for r in rows))


def load_probabilities(path: str | os.PathLike) -> np.ndarray:
    """Read a probabilities ``.npz`` (ours or nnU-Net's) as ``(classes, i, j, k)`` float32.

    The result is a transposed view of the stored array, not a copy (5.2 GB for the 118 classes of a CT on a 1.5 mm
    grid), so its memory layout is the file's.

    Raises:
        InferError: missing file, no ``probabilities`` array in it, or NaN or infinite values.
    """
    try:
        with np.load(path) as data:
            if KEY not in data:
                raise InferError(f"{path}: no {KEY!r} array (keys: {', '.join(data.files)})")
            array = data[KEY]
    except (OSError, EOFError, ValueError, zipfile.BadZipFile, zlib.error) as err:
        raise InferError(f"{path}: cannot read probabilities ({err})") from err
    if not all(np.isfinite(channel).all() for channel in array):  # a channel at a time: no full-size mask
        raise InferError(f"{path}: probabilities hold NaN or infinite values; predict this case again")
    return np.transpose(array, (0, *range(array.ndim - 1, 0, -1))).astype(np.float32, copy=False)
