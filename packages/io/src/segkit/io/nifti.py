"""NIfTI reading and writing through nibabel."""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from pathlib import Path

import nibabel as nib
import numpy as np

from segkit.io.errors import ImageGeometryError, ImageReadError, one_line
from segkit.io.image import XFORM_CODES, Image
from segkit.io.label_table import label_table_extension, read_label_table

NIFTI_SUFFIXES = (".nii.gz", ".nii")


def read_nifti(path: Path) -> Image:
    """Read a 3D or 4D NIfTI file; a 4th axis (time or channels) becomes the channel axis.

    A label table in the file (as TotalSegmentator writes) lands in ``meta["label_names"]``, the step of a
    4th axis in ``meta["time_step"]`` and ``meta["time_unit"]``, and the qform and sform codes (what the
    affine means: scanner, aligned, ...) in ``meta[XFORM_CODES]``, so that writing keeps them.
    """
    try:
        nifti = nib.load(str(path))
        array = _voxels(nifti)
    except (OSError, EOFError, zlib.error, ValueError, nib.filebasedimages.ImageFileError) as err:
        raise ImageReadError(f"{path}: not a readable NIfTI file ({one_line(err)})") from err
    shape = nifti.header.get_data_shape()
    if 0 in shape:  # nibabel then hands over a flat array of shape (0,)
        raise ImageGeometryError(f"{path}: holds no voxels (shape {tuple(int(n) for n in shape)})")
    zooms = _stored_zooms(path, type(nifti.header), shape)
    if any(not np.isfinite(z) or z <= 0 for z in zooms):
        raise ImageGeometryError(f"{path}: voxel spacing must be positive, header has {zooms}")
    array = _to_channels_first(array, path)
    meta = _time_step(nifti.header) if array.ndim == 4 else {}
    label_names = read_label_table(nifti.header)
    if label_names:
        meta["label_names"] = label_names
    return Image(array, nifti.affine, {**meta, **xform_codes(nifti.header)})


def _voxels(nifti: nib.Nifti1Image) -> np.ndarray:
    """The voxel values, scaled by ``scl_slope``/``scl_inter``. 8- and 16-bit integers scaled by whole numbers (a
    CT's stored values and its -1024 intercept, as dcm2niix writes them) stay whole numbers, in int32, as a DICOM
    series reads; by other numbers they come in float32, exact there. nibabel would give float64 for both (twice
    the memory, and a CT that no longer reads as integers)."""
    stored, proxy = nifti.header.get_data_dtype(), nifti.dataobj  # nibabel keeps the scaling in its array proxy
    slope, inter = float(getattr(proxy, "slope", 1.0)), float(getattr(proxy, "inter", 0.0))
    if (slope, inter) == (1.0, 0.0) or stored.kind not in "iu" or stored.itemsize > 2:
        return np.asanyarray(proxy)
    if slope.is_integer() and inter.is_integer() and abs(slope) * 2**16 + abs(inter) < 2**31:
        values = np.asanyarray(proxy.get_unscaled()).astype(np.int32)
        values *= int(slope)
        values += int(inter)
        return values
    return nifti.get_fdata(dtype=np.float32)


def xform_codes(header: nib.Nifti1Header) -> dict:
    """``{XFORM_CODES: (qform_code, sform_code)}`` of a NIfTI header; empty when neither is set (nibabel then
    falls back to the voxel sizes, and writing states the affine with codes 1)."""
    codes = (int(header["qform_code"]), int(header["sform_code"]))
    return {XFORM_CODES: codes} if any(codes) else {}


def write_nifti(image: Image, path: Path) -> None:
    """Write ``image`` as NIfTI (gzip-compressed when ``path`` ends in .nii.gz); see `to_nifti`."""
    nib.save(to_nifti(image), str(path))


def to_nifti(image: Image) -> nib.Nifti1Image:
    """``image`` as an in-memory NIfTI image.

    ``image.meta["label_names"]`` (value -> name), when present, is stored as a label table;
    ``meta[XFORM_CODES]`` gives the qform and sform codes (both 1, scanner coordinates, without it).
    """
    array = image.array if image.array.ndim == 3 else np.moveaxis(image.array, 0, -1)
    # 64-bit integers are valid NIfTI; nibabel only asks for them to be named (it refuses them unnamed)
    nifti = nib.Nifti1Image(array, image.affine, dtype=array.dtype if array.dtype.itemsize == 8 and
                            array.dtype.kind in "iu" else None)
    qform_code, sform_code = image.meta.get(XFORM_CODES, (1, 1))
    nifti.header.set_qform(image.affine, code=qform_code)
    nifti.header.set_sform(image.affine, code=sform_code)
    nifti.header.set_xyzt_units("mm", image.meta.get("time_unit", "sec"))
    if image.array.ndim == 4 and "time_step" in image.meta:
        nifti.header.set_zooms((*nifti.header.get_zooms()[:3], image.meta["time_step"]))
    if image.meta.get("label_names"):
        nifti.header.extensions.append(label_table_extension(image.meta["label_names"]))
    return nifti


def _time_step(header: nib.Nifti1Header) -> dict:
    """The 4th axis's step and unit, when the file records one."""
    step = float(header["pixdim"][4])
    if not np.isfinite(step) or step <= 0:
        return {}
    return {"time_step": step, "time_unit": header.get_xyzt_units()[1]}


def _stored_zooms(path: Path, header_class: type, shape: tuple[int, ...]) -> tuple[float, ...]:
    """Voxel sizes as stored in the file (nibabel silently replaces zeros with 1 on load)."""
    with nib.openers.ImageOpener(str(path)) as fileobj:
        raw = header_class.from_fileobj(fileobj, check=False)
    return tuple(float(z) for z in raw["pixdim"][1 : 1 + min(3, len(shape))])


def channel_count(shape: Sequence[int]) -> int:
    """The number of channels `read_nifti` makes of a file of data ``shape`` (from its header alone)."""
    shape = _without_singleton_time(shape)
    return int(shape[3]) if len(shape) == 4 else 1


def _without_singleton_time(shape: Sequence[int]) -> tuple[int, ...]:
    # a 5D file whose 4th (time) axis is one long holds its channels along the 5th
    return (*shape[:3], shape[4]) if len(shape) == 5 and shape[3] == 1 else tuple(shape)


def _to_channels_first(array: np.ndarray, path: Path) -> np.ndarray:
    if array.ndim == 2:
        return array[:, :, None]
    array = array.reshape(_without_singleton_time(array.shape))
    if array.ndim == 4:
        return np.ascontiguousarray(np.moveaxis(array, -1, 0))
    if array.ndim != 3:
        raise ImageGeometryError(f"{path}: expected a 2D, 3D or 4D image, got shape {array.shape}")
    return array
