"""FreeSurfer's MGH format (``.mgz``, ``.mgh``: ``T1.mgz``, ``aseg.mgz``) through nibabel."""

from __future__ import annotations

import zlib
from pathlib import Path

import nibabel as nib
import numpy as np
from nibabel.freesurfer.mghformat import MGHError

from segkit.io.errors import ImageGeometryError, ImageReadError, ImageWriteError
from segkit.io.image import Image

MGH_SUFFIXES = (".mgz", ".mgh")
#: the voxel types an MGH file stores, smallest integers first
MGH_DTYPES = (np.uint8, np.int16, np.uint16, np.int32, np.float32)


def read_mgh(path: Path) -> Image:
    """Read a 3D MGH volume, or a 4D one whose frames become channels."""
    try:
        mgh = nib.load(str(path))
        array = np.asanyarray(mgh.dataobj)
    except (OSError, EOFError, zlib.error, ValueError, nib.filebasedimages.ImageFileError, MGHError,
            nib.spatialimages.HeaderDataError) as err:
        raise ImageReadError(f"{path}: not a readable MGH file ({str(err).strip() or type(err).__name__})") from err
    zooms = mgh.header.get_zooms()[:3]
    if any(not np.isfinite(z) or z <= 0 for z in zooms):
        raise ImageGeometryError(f"{path}: voxel spacing must be positive, header has {tuple(map(float, zooms))}")
    if array.ndim == 4:
        array = np.ascontiguousarray(np.moveaxis(array, -1, 0))
    elif array.ndim != 3:
        raise ImageGeometryError(f"{path}: expected a 3D or 4D volume, got shape {array.shape}")
    return Image(array, mgh.affine)


def write_mgh(image: Image, path: Path) -> None:
    """Write ``image`` as MGH (gzip-compressed for ``.mgz``), in its own voxel type where MGH has it (`mgh_dtype`)."""
    array = image.array if image.array.ndim == 3 else np.moveaxis(image.array, 0, -1)
    nib.save(nib.MGHImage(array.astype(mgh_dtype(array), copy=False), image.affine), str(path))


def mgh_dtype(array: np.ndarray) -> type:
    """``array``'s type if it is one of `MGH_DTYPES`; else float32 for floating-point values, and for integers the
    first of `MGH_DTYPES` that holds them all.

    Raises:
        ImageWriteError: integers outside int32's range.
    """
    if array.dtype in MGH_DTYPES:
        return array.dtype.type
    if array.dtype.kind == "f":
        return np.float32
    low, high = (int(array.min()), int(array.max())) if array.size else (0, 0)
    for dtype in MGH_DTYPES[:-1]:
        if np.iinfo(dtype).min <= low and high <= np.iinfo(dtype).max:
            return dtype
    raise ImageWriteError(f"MGH stores integers up to int32; these values range over {low}..{high}")
