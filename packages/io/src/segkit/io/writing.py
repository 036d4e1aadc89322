"""Write images atomically, labels in the smallest unsigned integer type that holds them."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from segkit.io.atomic import atomic_path, write_target
from segkit.io.errors import ImageWriteError
from segkit.io.image import Image
from segkit.io.mgh import MGH_SUFFIXES, write_mgh
from segkit.io.nifti import NIFTI_SUFFIXES, write_nifti

SITK_WRITE_SUFFIXES = (".nrrd", ".mha", ".mhd")
IMAGE_SUFFIXES = NIFTI_SUFFIXES + MGH_SUFFIXES + SITK_WRITE_SUFFIXES  #: image files read and written by name
IMAGE_SUFFIX_LIST = f"{', '.join(IMAGE_SUFFIXES[:-1])} or {IMAGE_SUFFIXES[-1]}"  #: for messages: ".nii.gz, ... or .mhd"


def split_suffix(name: str, suffixes: tuple[str, ...] = IMAGE_SUFFIXES) -> tuple[str, str] | None:
    """``name`` as (stem, suffix) for the first of ``suffixes`` it ends with, in any case (``CT.NII.GZ`` ->
    ``("CT", ".NII.GZ")``); None if it ends with none of them."""
    lower = name.lower()
    for suffix in suffixes:
        if lower.endswith(suffix):
            return name[: -len(suffix)], name[-len(suffix):]
    return None


def write_image(image: Image, path: str | os.PathLike, *, label: bool = False, dtype=None) -> Path:
    """Write ``image`` to ``path`` (format from the extension), atomically.

    Args:
        image: the image to write.
        path: destination ``.nii.gz``, ``.nii``, ``.mgz``, ``.mgh``, ``.nrrd``, ``.mha`` or ``.mhd``.
        label: store as a label map in the smallest unsigned type holding its values.
        dtype: cast to this type first (ignored when ``label``); default keeps the dtype.

    Returns:
        The path written.

    Raises:
        ImageWriteError: unsupported extension, missing folder, or negative labels.
        FileWriteError: ``path`` exists but is not a regular file (a symlink's target is written).
    """
    path = Path(path)
    name = path.name.lower()
    if not name.endswith(IMAGE_SUFFIXES):
        raise ImageWriteError(f"{path}: cannot write this file type; use {IMAGE_SUFFIX_LIST}")
    if not path.parent.is_dir():
        raise ImageWriteError(f"{path}: folder {path.parent} does not exist")
    if label:
        image = image.with_array(as_label_array(image.array))
    elif dtype is not None:
        image = image.with_array(image.array.astype(dtype, copy=False))
    if name.endswith(NIFTI_SUFFIXES):
        writer = write_nifti
    elif name.endswith(MGH_SUFFIXES):
        writer = write_mgh
    else:
        from segkit.io.sitk_format import write_sitk as writer  # SimpleITK loads only for these formats
    suffix = ".nii.gz" if name.endswith(".nii.gz") else path.suffix
    try:
        if name.endswith(".mhd"):
            _write_header_and_data(image, path)
        else:
            with atomic_path(path, suffix=suffix) as tmp:
                writer(image, tmp)
    except OSError as err:
        raise ImageWriteError(f"{path}: could not write ({err.strerror or err})") from err
    return path


def _write_header_and_data(image: Image, path: Path) -> None:
    # A MetaImage header names its data file, so both are written under their final names in a
    # scratch folder beside the target, then moved in: the data file first, the header last.
    from segkit.io.sitk_format import write_sitk

    path = write_target(path)
    with tempfile.TemporaryDirectory(prefix=f".{path.name}.", dir=path.parent) as scratch:
        staged = Path(scratch) / path.name
        write_sitk(image, staged)
        members = sorted(Path(scratch).iterdir(), key=lambda file: file == staged)
        targets = [write_target(path.parent / member.name) for member in members]
        for member, target in zip(members, targets, strict=True):
            os.replace(member, target)


def as_label_array(array: np.ndarray) -> np.ndarray:
    """Cast integer-valued labels to the smallest unsigned integer dtype that holds them.

    Example:
        >>> as_label_array(np.array([0, 3, 300])).dtype
        dtype('uint16')
    """
    if array.size == 0:
        return array.astype(np.uint8)
    low, high = array.min(), array.max()
    if low < 0:
        raise ImageWriteError(f"label values must be >= 0, found {low}")
    if np.issubdtype(array.dtype, np.floating) and not np.array_equal(array, np.round(array)):
        raise ImageWriteError("label values must be whole numbers, found fractional values")
    for dtype in (np.uint8, np.uint16, np.uint32, np.uint64):
        if high <= np.iinfo(dtype).max:
            return array.astype(dtype, copy=False)
    raise ImageWriteError(f"label value {high} does not fit in 64 bits")
