"""A label map as a DICOM Segmentation (DICOM SEG) of the series it was segmented from, one segment per class.

TotalSegmentator writes one with ``--output_type dicom_seg``; segtool with ``-ot dicom_seg`` (or ``--ml -o NAME.dcm``)
on a DICOM folder.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.metadata
import importlib.util
import json
import logging
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import numpy as np

from segkit.io import Image
from segkit.io.atomic import atomic_path
from segtool.errors import SegtoolError

DICOM_SEG_SUFFIX = ".dcm"
NEEDS_SERIES = "a DICOM SEG needs a DICOM series folder as input (it references its slices)"
RAS_FROM_LPS = np.array([-1.0, -1.0, 1.0])
#: codes of a class that `segment_codes` lacks
GENERIC_CODES = {"category": ["SCT", "123037004", "Anatomical Structure"],
                 "type": ["SCT", "91723000", "Anatomical structure"]}
#: patient and study attributes that a SEG must carry, possibly empty; anonymized series sometimes drop them
EMPTY_ALLOWED = ("PatientID", "PatientName", "PatientBirthDate", "PatientSex", "AccessionNumber",
                 "ReferringPhysicianName", "StudyID", "StudyDate", "StudyTime")


def write_dicom_seg(labels: Image, names: dict[int, str], scan: Image, path: Path) -> Path:
    """Write ``labels`` (on ``scan``'s grid) as a DICOM SEG that references the files ``scan`` was read from.

    Each class present becomes a segment labelled with its name; absent classes are left out (a SEG needs at least
    one segment, so an empty map keeps the first class). Frames follow the source slices, one per slice.

    Raises:
        SegtoolError: ``scan`` was not read from a DICOM folder (``scan.meta["dicom_files"]``), or its slices do
            not lie on the label map's grid.
    """
    import highdicom as hd  # only this output needs it (and pydicom)
    from pydicom.sr.codedict import codes

    version = importlib.metadata.version("segtool")
    files = scan.meta.get("dicom_files")
    if not files:
        raise SegtoolError(f"{path}: {NEEDS_SERIES}")
    sources = [_source_dataset(Path(f)) for f in files]
    found = set(np.unique(labels.array).tolist())
    present = [v for v in sorted(names) if v in found] or sorted(names)[:1]
    segment_of = np.zeros(max(*names, *found) + 1, dtype=np.uint16)  # other values (none expected): background
    segment_of[present] = np.arange(1, len(present) + 1)
    frames = np.stack([segment_of[_frame(labels, source, path)] for source in sources])
    algorithm = hd.AlgorithmIdentificationSequence(name="segtool", version=version,
                                                   family=codes.cid7162.ArtificialIntelligence)
    segments = [_segment(number, names[value], algorithm) for number, value in enumerate(present, start=1)]
    with _quiet_highdicom():
        seg = hd.seg.Segmentation(
            source_images=sources, pixel_array=frames, segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
            segment_descriptions=segments, series_instance_uid=hd.UID(), series_number=300,
            sop_instance_uid=hd.UID(), instance_number=1, manufacturer="segkit", manufacturer_model_name="segtool",
            software_versions=version, device_serial_number="0", series_description="segtool segmentation")
    with atomic_path(path) as tmp:
        seg.save_as(tmp)
    return path


def _segment(number: int, name: str, algorithm):
    """The description of segment ``number``: the class's SNOMED CT codes and colour from `segment_codes`, or a
    generic anatomical structure for a class the table lacks."""
    import highdicom as hd

    codes = segment_codes().get(name, GENERIC_CODES)
    coded = {key: hd.sr.CodedConcept(value, scheme, meaning)
             for key, (scheme, value, meaning) in codes.items() if key != "color"}
    region = [coded["region"]] if "region" in coded else None
    description = hd.seg.SegmentDescription(
        segment_number=number, segment_label=name, segmented_property_category=coded["category"],
        segmented_property_type=coded["type"], algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
        algorithm_identification=algorithm, anatomic_regions=region,
        display_color=hd.color.CIELabColor.from_rgb(*codes["color"]) if "color" in codes else None)
    if "type_modifier" in coded:  # laterality: left and right kidney share the type "Kidney"
        description.SegmentedPropertyTypeCodeSequence[0].SegmentedPropertyTypeModifierCodeSequence = [
            coded["type_modifier"]]
    if "region_modifier" in coded:
        description.AnatomicRegionSequence[0].AnatomicRegionModifierSequence = [coded["region_modifier"]]
    return description


@functools.cache
def segment_codes() -> dict[str, dict[str, list]]:
    """Class name -> SNOMED CT codes (``category``, ``type`` and optional ``type_modifier``, ``region``,
    ``region_modifier``, each ``[scheme, value, meaning]``) and ``color`` (RGB), from ``segment_codes.json``."""
    return json.loads(resources.files("segtool").joinpath("segment_codes.json").read_text())["classes"]


@contextlib.contextmanager
def _quiet_highdicom() -> Iterator[None]:
    """Keep highdicom's warnings (anonymized series' blank UIDs, empty frames) off the user's console."""
    logger = logging.getLogger("highdicom")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _source_dataset(file: Path):
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


def _frame(labels: Image, source, path: Path) -> np.ndarray:
    """The label values at the pixels of one source slice, ``(rows, columns)``, found through both geometries."""
    if not all(key in source for key in ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing")):
        raise SegtoolError(f"{path}: a DICOM SEG needs a series of single-frame slices with their positions")
    along_row, along_column = (np.asarray(source.ImageOrientationPatient, dtype=np.float64).reshape(2, 3))
    row_spacing, column_spacing = (float(s) for s in source.PixelSpacing)
    rows, columns = np.mgrid[0:int(source.Rows), 0:int(source.Columns)]
    lps = (np.asarray(source.ImagePositionPatient, dtype=np.float64) + columns[..., None] * column_spacing * along_row
           + rows[..., None] * row_spacing * along_column)
    voxels = (lps * RAS_FROM_LPS - labels.affine[:3, 3]) @ np.linalg.inv(labels.affine[:3, :3]).T
    index = np.rint(voxels).astype(np.int64)
    if np.abs(voxels - index).max() > 0.01 or (index < 0).any() or (index >= labels.spatial_shape).any():
        raise SegtoolError(f"{path}: the DICOM slices do not lie on the segmentation's grid")
    return labels.array[index[..., 0], index[..., 1], index[..., 2]]


def check_dicom_seg_source(target: Path, scan: Path | None) -> None:
    """Refuse a DICOM SEG target, before any work, for an input that is not a DICOM series folder or where
    highdicom (segtool's ``dicom`` extra) is not installed."""
    if not target.name.lower().endswith(DICOM_SEG_SUFFIX):
        return
    if not (scan is not None and scan.is_dir()):
        raise SegtoolError(f"{target}: {NEEDS_SERIES}")
    if importlib.util.find_spec("highdicom") is None:
        raise SegtoolError(f"{target}: DICOM SEG output needs highdicom: pip install 'segtool[dicom]'")
