"""FreeSurfer's MGH format (``.mgz``, ``.mgh``: ``T1.mgz``, ``aseg.mgz``) through nibabel."""

from __future__ import annotations

import zlib
from pathlib import Path

import nibabel as nib
import numpy as np
from nibabel.freesurfer.mghformat import MGHError

from segkit.io.errors import ImageGeometryError, ImageReadError, ImageWriteError, one_line
from segkit.io.image import Image

MGH_SUFFIXES = (".mgz", ".mgh")
#: the voxel types written, smallest integers first: FreeSurfer's long-standing ones (its uint16 is recent, and
#: ITK and nibabel before 5.4 do not read it)
MGH_DTYPES = (np.uint8, np.int16, np.int32, np.float32)
_UNREADABLE = (OSError, EOFError, zlib.error, ValueError, KeyError, nib.filebasedimages.ImageFileError, MGHError,
               nib.spatialimages.HeaderDataError)  # KeyError: a voxel type code nibabel does not know


def read_mgh(path: Path) -> Image:
    """Read a 3D MGH volume, or a 4D one whose frames become channels."""
    try:
        mgh = nib.load(str(path))
        array = np.asanyarray(mgh.dataobj)
    except _UNREADABLE as err:
        raise ImageReadError(f"{path}: not a readable MGH file ({one_line(err)})") from err
    zooms = mgh.header.get_zooms()[:3]
    if any(not np.isfinite(z) or z <= 0 for z in zooms):
        raise ImageGeometryError(f"{path}: voxel spacing must be positive, header has {tuple(map(float, zooms))}")
    if array.ndim == 4:
        array = np.ascontiguousarray(np.moveaxis(array, -1, 0))
    elif array.ndim != 3:
        raise ImageGeometryError(f"{path}: expected a 3D or 4D volume, got shape {array.shape}")
    return Image(array, mgh.affine)


def write_mgh(image: Image, path: Path) -> None:
    """Write ``image`` as MGH (gzip-compressed for ``.mgz``), in the voxel type `mgh_dtype` chooses; channels are
    frames (one channel: a 3D volume). MGH has no place for label names.

    Raises:
        ImageWriteError: an empty image, or values MGH cannot store.
    """
    if image.array.size == 0:
        raise ImageWriteError(f"{path}: MGH cannot store an empty image (shape {image.array.shape})")
    frames = image.array if image.array.ndim == 3 else np.moveaxis(image.array, 0, -1)
    if frames.shape[3:] == (1,):
        frames = frames[..., 0]  # MGH reads one frame as a 3D volume
    with np.errstate(over="ignore"):  # checked below
        stored = frames.astype(mgh_dtype(frames), copy=False)
    narrowed = stored.dtype != frames.dtype and stored.dtype.kind == "f"  # float64 (or wider) to float32
    if narrowed and not np.isfinite(stored).all() and np.isfinite(frames).all():
        raise ImageWriteError(f"{path}: values beyond float32's range, which MGH stores")
    nib.save(nib.MGHImage(stored, image.affine), str(path))


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
    low, high = int(array.min()), int(array.max())
    for dtype in MGH_DTYPES[:-1]:
        if np.iinfo(dtype).min <= low and high <= np.iinfo(dtype).max:
            return dtype
    raise ImageWriteError(f"MGH stores integers up to int32; these values range over {low}..{high}")
