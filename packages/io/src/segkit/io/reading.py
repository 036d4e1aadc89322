"""Read any supported image: NIfTI, SimpleITK formats, DICOM folders and zips, channel files."""

from __future__ import annotations

import os
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path

import nibabel as nib
import numpy as np

from segkit.io.dicom_files import is_dicom_instance
from segkit.io.errors import ImageGeometryError, ImageReadError
from segkit.io.image import Image
from segkit.io.mgh import MGH_SUFFIXES, read_mgh
from segkit.io.nifti import NIFTI_SUFFIXES, read_nifti, xform_codes
from segkit.io.safe_zip import extract_zip

SITK_SUFFIXES = (".nrrd", ".nhdr", ".mha", ".mhd", ".nii", ".nii.gz", ".tif", ".tiff", ".dcm", ".png")


def read_image(path: str | os.PathLike) -> Image:
    """Read an image file, a DICOM series folder or a zip of a DICOM series.

    Args:
        path: ``.nii``/``.nii.gz`` and FreeSurfer's ``.mgz``/``.mgh`` (nibabel), ``.nrrd``/``.mha``/``.mhd``
            and other SimpleITK formats, a folder holding one DICOM series, or a ``.zip`` of one.

    Returns:
        The image in segkit's axis order (see `segkit.io.image`).

    Raises:
        ImageReadError: the path is missing, unsupported or corrupt, or its voxels are not
            integer or floating-point numbers (e.g. complex, RGB).
        ImageGeometryError: the file's geometry is invalid (e.g. zero spacing).
    """
    path = Path(path)
    return check_voxel_type(_read_any(path), str(path))


#: what `as_image` takes: an Image, a path, one file per channel, or an in-memory nibabel image
ImageSource = Image | str | os.PathLike | Sequence[str | os.PathLike] | nib.spatialimages.SpatialImage


def as_image(source: ImageSource) -> Image:
    """The `Image` of ``source``: itself, the file or DICOM series a path names (`read_image`), one file per channel
    (``[CASE_0000.nii.gz, CASE_0001.nii.gz]``, `read_channels`), or an in-memory nibabel image (`from_nibabel`).

    Raises:
        ImageReadError: anything else, or what reading raises.
    """
    if isinstance(source, Image):
        return source
    if isinstance(source, str | os.PathLike):
        return read_image(source)
    if isinstance(source, nib.spatialimages.SpatialImage):
        return from_nibabel(source)
    if isinstance(source, Sequence) and source and all(isinstance(p, str | os.PathLike) for p in source):
        return read_channels(source)
    raise ImageReadError(f"expected an image: a path, a list of channel files, a nibabel image or a segkit Image; "
                         f"got {type(source).__name__}")


def from_nibabel(image: nib.spatialimages.SpatialImage) -> Image:
    """A segkit `Image` from an in-memory nibabel image (3D, or 4D with channels last), with its NIfTI qform and sform
    codes."""
    array = np.asanyarray(image.dataobj)
    if array.ndim == 4:
        array = np.moveaxis(array, -1, 0)
    meta = xform_codes(image.header) if isinstance(image.header, nib.Nifti1Header) else {}
    return check_voxel_type(Image(array, image.affine, meta), "the nibabel image")


def check_voxel_type(image: Image, source: str) -> Image:
    """Return ``image`` if its voxels are bool, integer or floating-point numbers.

    Raises:
        ImageReadError: other voxels (complex, RGB, structured), named with ``source``.
    """
    if image.array.dtype.kind not in "biuf":
        raise ImageReadError(
            f"{source}: voxels of type {image.array.dtype} are not supported; expected integer or floating-point values"
        )
    return image


def _read_any(path: Path) -> Image:
    if not path.exists():
        raise ImageReadError(f"{path}: no such file or folder")
    name = path.name.lower()
    if name.endswith(NIFTI_SUFFIXES) and not path.is_dir():
        return read_nifti(path)
    if name.endswith(MGH_SUFFIXES) and not path.is_dir():
        return read_mgh(path)
    from segkit.io.sitk_format import read_dicom_series, read_sitk  # SimpleITK loads only for these (0.1-0.3 s)

    if path.is_dir():
        return read_dicom_series(path)
    if name.endswith(".zip"):
        return _read_dicom_zip(path)
    if name.endswith(SITK_SUFFIXES):
        return read_sitk(path)
    raise ImageReadError(
        f"{path}: unsupported file type; expected one of .nii.gz, .nii, .mgz, .mgh, .nrrd, .mha, .mhd, "
        "a DICOM folder or a .zip of one"
    )


def read_channels(paths: Sequence[str | os.PathLike], *, tolerance: float = 1e-4) -> Image:
    """Read one file per channel (``CASE_0000``, ``CASE_0001``, ...) into one ``(c, i, j, k)`` image.

    Raises:
        ImageGeometryError: the channels do not share one grid.
    """
    if not paths:
        raise ImageReadError("no channel files given")
    images = [read_image(p) for p in paths]
    first = images[0]
    for path, image in zip(paths, images, strict=True):
        if image.num_channels != 1:
            raise ImageGeometryError(f"{path}: a channel file must hold one channel, found {image.num_channels}")
        if not image.same_grid(first, tolerance=tolerance):
            raise ImageGeometryError(
                f"{path}: grid {image.spatial_shape} @ spacing {_fmt(image.spacing)} differs from "
                f"{paths[0]} ({first.spatial_shape} @ {_fmt(first.spacing)})"
            )
    return first.with_array(np.stack([image.array for image in images]))


def _read_dicom_zip(path: Path) -> Image:
    """The series of a zip, which keeps in ``meta`` the zip (``dicom_archive``) and the members its slices were read
    from (``dicom_files``, in slice order), as a series folder keeps its files."""
    with tempfile.TemporaryDirectory(prefix="segkit-dicom-") as tmp:
        root = Path(tmp).resolve()
        try:
            extracted = extract_zip(path, root)
            with zipfile.ZipFile(path) as zf:
                member_of = {(root / m.filename).resolve(): m.filename for m in zf.infolist() if not m.is_dir()}
        except zipfile.BadZipFile as err:
            raise ImageReadError(f"{path}: not a valid zip file") from err
        folders = sorted({p.parent for p in extracted}, key=lambda p: len(str(p)))
        if not folders:
            raise ImageReadError(f"{path}: the zip holds no files")
        instances = [p for p in extracted if is_dicom_instance(p)]
        if instances:  # wherever they lie (a series split over folders, reports beside it): gathered in one folder
            series_folder = root / ".series"
            series_folder.mkdir()
            for number, file in enumerate(sorted(instances)):
                moved = file.rename(series_folder / f"{number:06d}_{file.name}")  # names stay legible in errors
                member_of[moved.resolve()] = member_of.pop(file.resolve())
        else:  # DICOM without its preamble: the folder with the most files
            series_folder = max(folders, key=lambda folder: sum(1 for f in folder.iterdir() if f.is_file()))
        from segkit.io.sitk_format import read_dicom_series

        image = read_dicom_series(series_folder, source=path)
        members = tuple(member_of[Path(f).resolve()] for f in image.meta["dicom_files"])
        return Image(image.array, image.affine, {"dicom_files": members, "dicom_archive": str(path)})


def _fmt(values: Sequence[float]) -> str:
    return "x".join(f"{v:.4g}" for v in values)
