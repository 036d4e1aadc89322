"""Reading and writing through SimpleITK: NRRD, MHA/MHD and DICOM series.

SimpleITK stores arrays as ``(k, j, i)`` and geometry in LPS+; both are converted here to
segkit's ``(i, j, k)`` RAS+ convention (see `segkit.io.image`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from segkit.io.dicom_files import skipped_slices
from segkit.io.errors import ImageGeometryError, ImageReadError, one_line
from segkit.io.image import Image
from segkit.io.stderr_capture import captured_stderr

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0])


@contextmanager
def _quiet_itk() -> Iterator[Callable[[], str]]:
    """Keep ITK off stderr while reading: warnings off, and what ITK, GDCM or MetaIO print held back.

    Yields a function returning the held-back text, for the one-line error segkit raises instead.
    """
    with captured_stderr() as native_text:
        shown = sitk.ProcessObject.GetGlobalWarningDisplay()
        sitk.ProcessObject.SetGlobalWarningDisplay(False)
        try:
            yield native_text
        finally:
            sitk.ProcessObject.SetGlobalWarningDisplay(shown)


def read_sitk(path: Path) -> Image:
    """Read any single file SimpleITK understands."""
    with _quiet_itk() as native_text:
        try:
            itk_image = sitk.ReadImage(str(path))
        except RuntimeError as err:
            raise ImageReadError(f"{path}: not a readable image ({_reason(err, native_text())})") from err
    return _from_itk(itk_image, path)


def read_dicom_series(folder: Path, source: Path | None = None) -> Image:
    """Read the largest DICOM series in ``folder``, with rescale slope/intercept applied (HU for CT).

    The row axis ``j`` is flipped, as dcm2niix does, so that a series lands on the same
    grid as its dcm2niix NIfTI conversion (for an axial head-first scan: L, A, S).
    Errors name ``source`` (default: ``folder``), e.g. the zip the folder was extracted from. The series keeps its
    files, in slice order, in ``meta["dicom_files"]`` (a DICOM SEG references them).

    Raises:
        ImageReadError: no readable DICOM series in ``folder``, or a slice of it cannot be read
            (e.g. truncated); files that are not DICOM, or DICOM of another kind, are ignored.
        ImageGeometryError: the slices are not evenly spaced (e.g. a slice is missing).
    """
    source = source or folder
    reader = sitk.ImageSeriesReader()
    with _quiet_itk() as native_text:
        files = _series_files(reader, folder, source)
        reader.SetFileNames(files)
        reader.MetaDataDictionaryArrayUpdateOn()
        try:
            itk_image = reader.Execute()
        except RuntimeError as err:
            bad = next((Path(name).name for name in files if not _readable(name)), None)
            what = f"DICOM slice {bad}" if bad else "DICOM series"
            raise ImageReadError(f"{source}: {what} could not be read ({_reason(err, native_text())})") from err
    _check_slice_steps(reader, itk_image, source)
    image = _flip_rows(_from_itk(itk_image, source))
    return Image(image.array, image.affine, {"dicom_files": tuple(files)})


def _series_files(reader: sitk.ImageSeriesReader, folder: Path, source: Path) -> tuple[str, ...]:
    """The files of the largest series in ``folder``; refuses a folder with a DICOM slice GDCM could not read."""
    series = [reader.GetGDCMSeriesFileNames(str(folder), sid) for sid in reader.GetGDCMSeriesIDs(str(folder))]
    if not series:
        raise ImageReadError(f"{source}: no DICOM series found" + (" in this folder" if source == folder else ""))
    skipped = skipped_slices(folder, series)
    if skipped:
        more = f" (and {len(skipped) - 1} more)" if len(skipped) > 1 else ""
        raise ImageReadError(
            f"{source}: {skipped[0].name}{more} looks like a DICOM slice but cannot be read "
            "(truncated or corrupt?); replace or remove it"
        )
    return max(series, key=len)


def _readable(file: str) -> bool:
    try:
        sitk.ReadImage(file)
    except RuntimeError:
        return False
    return True


def _check_slice_steps(reader: sitk.ImageSeriesReader, itk_image: sitk.Image, source: Path) -> None:
    """Refuse a series whose slice positions are not evenly spaced (ITK would average the spacing).

    Uses the per-slice headers ``reader`` loaded (ImagePositionPatient along the slice axis).
    Steps must agree within 1% of the spacing + 0.01 mm (dicom2nifti allows 5% + 0.1 mm): a missing
    slice changes a step by 100%, while the 0.01 mm absorbs positions written with only two decimals.
    """
    count = len(reader.GetFileNames())
    if count < 3 or not all(reader.HasMetaDataKey(i, "0020|0032") for i in range(count)):
        return
    positions = np.array([reader.GetMetaData(i, "0020|0032").split("\\") for i in range(count)], dtype=np.float64)
    slice_axis = np.asarray(itk_image.GetDirection()).reshape(3, 3)[:, 2]
    heights = positions @ slice_axis
    order = np.argsort(heights, kind="stable")
    twice = np.flatnonzero(np.diff(heights[order]) < 0.01 * max(float(np.ptp(heights)) / count, 1e-6))
    if len(twice):
        files = [Path(name).name for name in reader.GetFileNames()]
        first, second = sorted(order[twice[0]:twice[0] + 2])
        raise ImageGeometryError(f"{source}: {files[first]} and {files[second]} lie at the same position (a slice "
                                 "twice?); remove one")
    steps = np.diff(heights)
    if not np.allclose(steps, np.median(steps), rtol=0.01, atol=0.01):
        gap = int(np.argmax(np.abs(steps - np.median(steps))))
        raise ImageGeometryError(
            f"{source}: slice spacing varies from {steps.min():.4g} to {steps.max():.4g} mm "
            f"(between slices {gap + 1} and {gap + 2} of {count}): a slice is missing?"
        )


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


def _reason(err: Exception, native_text: str) -> str:
    """The first line ITK's native code printed (the cause, e.g. a bad header field), else the exception's."""
    printed = [line.strip() for line in native_text.splitlines() if line.strip()]
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    useful = [line for line in lines if "ERROR" in line or "Exception" in line or "Unable" in line]
    return one_line(printed[0] if printed else (useful or lines or [type(err).__name__])[-1])
