"""The DICOM series a scan was read from, for outputs that reference its slices (DICOM SEG, RTSTRUCT)."""

from __future__ import annotations

import importlib.util
import zipfile
from pathlib import Path
from typing import IO

import numpy as np

from segkit.io import Image
from segtool.errors import SegtoolError

DICOM_SUFFIX = ".dcm"
RAS_FROM_LPS = np.array([-1.0, -1.0, 1.0])
#: patient and study attributes that a derived object must carry, possibly empty; anonymized series drop some
EMPTY_ALLOWED = ("PatientID", "PatientName", "PatientBirthDate", "PatientSex", "AccessionNumber",
                 "ReferringPhysicianName", "StudyID", "StudyDate", "StudyTime")
#: what each DICOM output type needs installed (segtool's ``dicom`` extra)
NEEDED_MODULES = {"dicom_seg": "highdicom", "dicom_rtstruct": "pydicom"}


def source_datasets(scan: Image, path: Path) -> list:
    """The headers of the slices ``scan`` was read from, in slice order: files of a series folder, or members of
    a zip (``scan.meta["dicom_archive"]``).

    Raises:
        SegtoolError: ``scan`` was not read from a DICOM series (no ``scan.meta["dicom_files"]``).
    """
    files = scan.meta.get("dicom_files")
    if not files:
        raise SegtoolError(f"{path}: {needs_series(path)}")
    archive = scan.meta.get("dicom_archive")
    if archive is None:
        return [_source_dataset(Path(f)) for f in files]
    with zipfile.ZipFile(archive) as zf:
        return [_source_dataset(zf.open(member)) for member in files]


def needs_series(path: Path) -> str:
    return f"a DICOM output ({path.name}) needs a DICOM series folder or zip as input (it references its slices)"


def _source_dataset(file: Path | IO[bytes]):
    """The header of one source slice, with the identifiers that anonymization blanked taken from its file meta."""
    import pydicom

    dataset = pydicom.dcmread(file, stop_before_pixels=True)
    if not dataset.get("SOPClassUID"):
        dataset.SOPClassUID = dataset.file_meta.MediaStorageSOPClassUID
    if not dataset.get("SOPInstanceUID"):
        dataset.SOPInstanceUID = dataset.file_meta.MediaStorageSOPInstanceUID
    for attribute in EMPTY_ALLOWED:
        if attribute not in dataset:
            setattr(dataset, attribute, "")
    return dataset


def slice_geometry(source, path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Origin and the steps of one pixel along a row and down a column of a source slice, in LPS millimetres."""
    if not all(key in source for key in ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing")):
        raise SegtoolError(f"{path}: a DICOM output needs a series of single-frame slices with their positions")
    along_row, along_column = np.asarray(source.ImageOrientationPatient, dtype=np.float64).reshape(2, 3)
    row_spacing, column_spacing = (float(s) for s in source.PixelSpacing)
    return (np.asarray(source.ImagePositionPatient, dtype=np.float64), along_row * column_spacing,
            along_column * row_spacing)


def label_frame(labels: Image, source, path: Path) -> np.ndarray:
    """The label values at the pixels of one source slice, ``(rows, columns)``, found through both geometries."""
    origin, column_step, row_step = slice_geometry(source, path)
    to_voxels = np.linalg.inv(labels.affine[:3, :3])
    start = to_voxels @ (origin * RAS_FROM_LPS - labels.affine[:3, 3])  # the voxel of pixel (0, 0), and the steps
    along_columns, along_rows = to_voxels @ (column_step * RAS_FROM_LPS), to_voxels @ (row_step * RAS_FROM_LPS)
    rows, columns = np.arange(int(source.Rows))[:, None], np.arange(int(source.Columns))[None, :]
    index = []
    for axis, size in enumerate(labels.spatial_shape):
        voxels = start[axis] + rows * along_rows[axis] + columns * along_columns[axis]
        nearest = np.rint(voxels).astype(np.int64)
        if np.abs(voxels - nearest).max() > 0.01 or nearest.min() < 0 or nearest.max() >= size:
            raise SegtoolError(f"{path}: the DICOM slices do not lie on the segmentation's grid")
        index.append(nearest)
    return labels.array[index[0], index[1], index[2]]


def check_dicom_source(target: Path, scan: Path | None, output_type: str) -> None:
    """Refuse a DICOM output, before any work, for an input that is not a DICOM series (a folder or zip) or where
    its library (segtool's ``dicom`` extra) is not installed."""
    if not (scan is not None and (scan.is_dir() or scan.name.lower().endswith(".zip"))):
        raise SegtoolError(f"{target}: {needs_series(target)}")
    module = NEEDED_MODULES[output_type]
    if importlib.util.find_spec(module) is None:
        raise SegtoolError(f"{target}: {output_type} output needs {module}: pip install 'segtool[dicom]'")
