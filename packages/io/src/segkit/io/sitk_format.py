"""Reading and writing through SimpleITK: NRRD, MHA/MHD and DICOM series.

SimpleITK stores arrays as ``(k, j, i)`` and geometry in LPS+; both are converted here to
segkit's ``(i, j, k)`` RAS+ convention (see `segkit.io.image`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import SimpleITK as sitk

from segkit.io.errors import ImageGeometryError, ImageReadError
from segkit.io.image import Image

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0])


def read_sitk(path: Path) -> Image:
    """Read any single file SimpleITK understands."""
    try:
        itk_image = sitk.ReadImage(str(path))
    except RuntimeError as err:
        raise ImageReadError(f"{path}: not a readable image ({_first_line(err)})") from err
    return _from_itk(itk_image, path)


def read_dicom_series(folder: Path) -> Image:
    """Read the largest DICOM series in ``folder``, with rescale slope/intercept applied (HU for CT).

    The row axis ``j`` is flipped, as dcm2niix does, so that a series lands on the same
    grid as its dcm2niix NIfTI conversion (for an axial head-first scan: L, A, S).
    """
    reader = sitk.ImageSeriesReader()
    series_ids = reader.GetGDCMSeriesIDs(str(folder))
    if not series_ids:
        raise ImageReadError(f"{folder}: no DICOM series found in this folder")
    files_per_series = [reader.GetGDCMSeriesFileNames(str(folder), sid) for sid in series_ids]
    files = max(files_per_series, key=len)
    reader.SetFileNames(files)
    try:
        itk_image = reader.Execute()
    except RuntimeError as err:
        raise ImageReadError(f"{folder}: DICOM series could not be read ({_first_line(err)})") from err
    return _flip_rows(_from_itk(itk_image, folder))


def write_sitk(image: Image, path: Path) -> None:
    """Write ``image`` with SimpleITK (format chosen by the extension of ``path``)."""
    is_vector = image.array.ndim == 4
    array = np.moveaxis(image.array, 0, -1) if is_vector else image.array
    itk_image = sitk.GetImageFromArray(np.ascontiguousarray(array.transpose(2, 1, 0, *range(3, array.ndim))),
                                       isVector=is_vector)
    spacing = np.asarray(image.spacing)
    itk_image.SetSpacing(spacing.tolist())
    itk_image.SetOrigin((LPS_TO_RAS @ image.affine[:3, 3]).tolist())
    itk_image.SetDirection((LPS_TO_RAS @ image.direction).flatten().tolist())
    sitk.WriteImage(itk_image, str(path), useCompression=True)


def _from_itk(itk_image: sitk.Image, source: Path) -> Image:
    if itk_image.GetDimension() not in (2, 3):
        raise ImageGeometryError(f"{source}: expected a 2D or 3D image, got {itk_image.GetDimension()}D")
    spacing = np.asarray(itk_image.GetSpacing(), dtype=np.float64)
    if np.any(spacing <= 0) or not np.all(np.isfinite(spacing)):
        raise ImageGeometryError(f"{source}: voxel spacing must be positive, file has {tuple(spacing)}")
    dim = itk_image.GetDimension()
    direction = np.asarray(itk_image.GetDirection(), dtype=np.float64).reshape(dim, dim)
    origin = np.asarray(itk_image.GetOrigin(), dtype=np.float64)
    array = sitk.GetArrayFromImage(itk_image)
    components = itk_image.GetNumberOfComponentsPerPixel()
    if dim == 2:
        direction = np.pad(direction, (0, 1))
        direction[2, 2] = 1.0
        spacing, origin = np.append(spacing, 1.0), np.append(origin, 0.0)
        array = array[None]
    array = array.transpose(2, 1, 0, 3) if components > 1 else array.transpose(2, 1, 0)
    if components > 1:
        array = np.moveaxis(array, -1, 0)
    affine = np.eye(4)
    affine[:3, :3] = LPS_TO_RAS @ direction @ np.diag(spacing)
    affine[:3, 3] = LPS_TO_RAS @ origin
    return Image(np.ascontiguousarray(array), affine)


def _flip_rows(image: Image) -> Image:
    flip = np.eye(4)
    flip[1, 1], flip[1, 3] = -1.0, image.spatial_shape[1] - 1
    return Image(np.ascontiguousarray(np.flip(image.array, axis=-2)), image.affine @ flip, image.meta)


def _first_line(err: Exception) -> str:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    useful = [line for line in lines if "ERROR" in line or "Exception" in line or "Unable" in line]
    text = (useful or lines or [type(err).__name__])[-1]
    return text if len(text) < 160 else text[:157] + "..."
