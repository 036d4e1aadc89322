"""Writing a segmentation: one binary mask per class, or one multilabel file with its names."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from segkit.io import Image, write_image
from segkit.io.atomic import atomic_path
from segkit.io.cpus import available_cpus
from segkit.io.writing import IMAGE_SUFFIXES, split_suffix
from segtool.dicom_series import DICOM_SUFFIX
from segtool.errors import SegtoolError

MASK_ENDING = ".nii.gz"
OUTPUT_SUFFIXES = IMAGE_SUFFIXES + (DICOM_SUFFIX,)  # what a multilabel output file may be


def image_stem(name: str, suffixes: tuple[str, ...] = OUTPUT_SUFFIXES) -> str:
    """``name`` without its image-file suffix (any case): ``seg.NII.GZ`` -> ``seg``."""
    parts = split_suffix(name, suffixes)
    return name if parts is None else parts[0]


def binary_mask(grid: Image, mask: np.ndarray) -> Image:
    """``mask`` as a uint8 0/1 image on ``grid``'s grid, without ``grid``'s label table: its classes are not the
    mask's (a liver mask that kept a multilabel map's table would tell a viewer that 1 is the spleen)."""
    return Image(mask.astype(np.uint8), grid.affine, grid.grid_meta())


def write_class_masks(labels: Image, names: dict[int, str], folder: Path, *, threads: int | None = None,
                      extra: dict[str, np.ndarray] | None = None) -> list[Path]:
    """Write ``folder/<class>.nii.gz`` (uint8, 0/1) for every class, and for each ``extra`` mask (name -> boolean
    array on the same grid), all or nothing, ``threads`` at a time (None: one per CPU; gzip compression runs
    outside Python's lock).

    Masks are written to a hidden temporary folder inside ``folder`` first and moved in only
    when all are complete, so a failed run never leaves a partial set.
    """
    targets = [folder / f"{name}{MASK_ENDING}" for name in [*names.values(), *(extra or {})]]
    in_the_way = [path for path in targets if path.is_dir()]
    if in_the_way:  # os.replace would fail there after earlier masks were moved in
        raise SegtoolError(f"cannot write {in_the_way[0]}: a folder of that name is in the way")
    folder.mkdir(parents=True, exist_ok=True)
    # NIfTI stores the first axis fastest: masks cut from a Fortran-ordered map go to disk without being transposed
    # (transposing each one cost nibabel 2 s per 488x404x336 mask, 4x its compression)
    ordered = labels.with_array(np.asfortranarray(labels.array))
    with tempfile.TemporaryDirectory(prefix=".segtool-", dir=folder) as tmp:
        # the classes a scan does not show all get the same file: compressed once, then copied
        empty = write_image(binary_mask(ordered, np.zeros(ordered.spatial_shape, bool, order="F")),
                            Path(tmp) / f".empty{MASK_ENDING}")

        def write(name: str, mask: np.ndarray) -> Path:
            path = Path(tmp) / f"{name}{MASK_ENDING}"
            return write_image(binary_mask(ordered, mask), path) if mask.any() else Path(shutil.copyfile(empty, path))

        def write_class(item: tuple[int, str]) -> Path:
            value, name = item
            return write(name, ordered.array == value)

        extra = extra or {}
        with ThreadPoolExecutor(threads or available_cpus()) as pool:
            written = [*pool.map(write_class, sorted(names.items())),
                       *pool.map(write, extra, [np.asfortranarray(mask) for mask in extra.values()])]
        for path in written:
            os.replace(path, folder / path.name)
    return [folder / p.name for p in written]


def write_multilabel(labels: Image, names: dict[int, str], path: Path) -> Path:
    """Write one label map with its class names inside (label table) and in ``<name>.json`` beside it."""
    labelled = Image(labels.array, labels.affine, {**labels.meta, "label_names": dict(names)})
    write_image(labelled, path, label=True)
    with atomic_path(label_names_path(path)) as tmp:
        tmp.write_text(json.dumps({str(k): v for k, v in sorted(names.items())}, indent=1))
    return path


def label_names_path(multilabel: Path) -> Path:
    """The JSON file of class names that accompanies a multilabel file."""
    return multilabel.with_name(image_stem(multilabel.name) + ".json")


def read_label_names(multilabel: Path, image: Image) -> dict[int, str]:
    """Class names of a multilabel file: from its label table, else from its JSON sidecar."""
    if image.meta.get("label_names"):
        return dict(image.meta["label_names"])
    sidecar = label_names_path(multilabel)
    if sidecar.is_file():
        return {int(k): v for k, v in json.loads(sidecar.read_text()).items()}
    return {}
