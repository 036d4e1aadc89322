"""A label map as a DICOM RT Structure Set (RTSTRUCT) of the series it was segmented from: one ROI per class,
outlined slice by slice, as radiotherapy planning systems read structures.

TotalSegmentator writes one with ``--output_type dicom_rtstruct``; segtool with ``-ot dicom_rtstruct``.
"""

from __future__ import annotations

import datetime
import importlib.metadata
from pathlib import Path

import numpy as np

from segkit.io import Image
from segkit.io.atomic import atomic_path
from segtool.dicom_series import EMPTY_ALLOWED, label_frame, slice_geometry, source_datasets

RT_STRUCTURE_SET_STORAGE = "1.2.840.10008.5.1.4.1.1.481.3"
#: the SOP class that RT objects conventionally use to reference their study (DICOM's retired Study Component)
STUDY_REFERENCE_CLASS = "1.2.840.10008.3.1.2.3.1"
DEFAULT_COLOR = (255, 0, 0)
CONTOUR_DATA = 0x30060050  #: (3006,0050) Contour Data


def write_rtstruct(labels: Image, names: dict[int, str], scan: Image, path: Path, *,
                   sources: list | None = None) -> Path:
    """Write ``labels`` (on ``scan``'s grid) as an RTSTRUCT that references the files ``scan`` was read from (their
    headers: ``sources``, or read here by `source_datasets`).

    Each class present becomes an ROI named after it, coloured as in ``segment_codes.json``; each slice it covers
    gets one closed planar contour per boundary (holes too), drawn through the midpoints between the class's pixels
    and their neighbours, so that a pixel lies inside the contours (even-odd rule) exactly where it is labelled.

    Raises:
        SegtoolError: ``scan`` was not read from a DICOM folder, or its slices do not lie on the label map's grid.
    """
    import pydicom

    with pydicom.config.disable_value_validation():  # our own decimal strings: checking each costs 10 us
        ds = _structure_set(labels, names, sources or source_datasets(scan, path), path)
        with atomic_path(path) as tmp:
            pydicom.dcmwrite(tmp, ds, enforce_file_format=True)
    return path


def _structure_set(labels: Image, names: dict[int, str], sources: list, path: Path):
    """The RTSTRUCT dataset of `write_rtstruct`."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    from segtool.dicom_seg import segment_codes

    frames = [label_frame(labels, source, path) for source in sources]
    on_slice = [set(np.unique(frame).tolist()) for frame in frames]  # the classes each slice shows
    present = [v for v in sorted(names) if any(v in found for found in on_slice)]
    first = sources[0]
    now = datetime.datetime.now()

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = RT_STRUCTURE_SET_STORAGE
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.SOPClassUID, ds.SOPInstanceUID = RT_STRUCTURE_SET_STORAGE, meta.MediaStorageSOPInstanceUID
    for attribute in (*EMPTY_ALLOWED, "StudyInstanceUID"):
        setattr(ds, attribute, first.get(attribute, ""))
    ds.Modality, ds.SeriesInstanceUID, ds.SeriesNumber = "RTSTRUCT", generate_uid(), 301
    ds.SeriesDescription, ds.OperatorsName = "segtool structures", ""
    ds.Manufacturer, ds.ManufacturerModelName = "segkit", "segtool"
    ds.SoftwareVersions = importlib.metadata.version("segtool")
    ds.InstanceNumber = 1
    ds.StructureSetLabel = "segtool"
    ds.StructureSetDate, ds.StructureSetTime = now.strftime("%Y%m%d"), now.strftime("%H%M%S")
    ds.ReferencedFrameOfReferenceSequence = [_frame_of_reference(first, sources)]

    codes = segment_codes()
    ds.StructureSetROISequence, ds.ROIContourSequence, ds.RTROIObservationsSequence = [], [], []
    for number, value in enumerate(present, start=1):
        roi = Dataset()
        roi.ROINumber, roi.ReferencedFrameOfReferenceUID = number, first.FrameOfReferenceUID
        roi.ROIName, roi.ROIGenerationAlgorithm = names[value], "AUTOMATIC"
        ds.StructureSetROISequence.append(roi)
        outline = Dataset()
        outline.ReferencedROINumber = number
        outline.ROIDisplayColor = list(codes.get(names[value], {}).get("color", DEFAULT_COLOR))
        outline.ContourSequence = [
            _contour(points, source) for source, frame, found in zip(sources, frames, on_slice, strict=True)
            if value in found for points in _outlines(frame == value, source, path)]
        ds.ROIContourSequence.append(outline)
        observation = Dataset()
        observation.ObservationNumber, observation.ReferencedROINumber = number, number
        observation.RTROIInterpretedType, observation.ROIInterpreter = "ORGAN", ""
        ds.RTROIObservationsSequence.append(observation)
    return ds


def _frame_of_reference(first, sources):
    """The structure set's reference to the study, the series and each of its slices."""
    from pydicom.dataset import Dataset

    series = Dataset()
    series.SeriesInstanceUID = first.SeriesInstanceUID
    series.ContourImageSequence = [_image_reference(source) for source in sources]
    study = Dataset()
    study.ReferencedSOPClassUID, study.ReferencedSOPInstanceUID = STUDY_REFERENCE_CLASS, first.StudyInstanceUID
    study.RTReferencedSeriesSequence = [series]
    frame = Dataset()
    frame.FrameOfReferenceUID, frame.RTReferencedStudySequence = first.FrameOfReferenceUID, [study]
    return frame


def _outlines(mask: np.ndarray, source, path: Path) -> list[np.ndarray]:
    """The closed outlines of ``mask`` (one slice, ``(rows, columns)``, not empty) as ``(n, 3)`` LPS points in mm."""
    import contourpy  # matplotlib's contouring library

    rows, columns = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    box = mask[rows[0]:rows[-1] + 1, columns[0]:columns[-1] + 1]
    padded = np.pad(box.astype(np.float64), 1)  # outlines close at the box's edges too
    lines = contourpy.contour_generator(z=padded, line_type=contourpy.LineType.Separate).lines(0.5)
    origin, column_step, row_step = slice_geometry(source, path)
    offset = np.array([columns[0] - 1.0, rows[0] - 1.0])  # undo the crop and the padding
    outlines = []
    for line in lines:
        pixels = corners(line[:-1]) + offset  # closed lines repeat their first point
        outlines.append(origin + pixels[:, :1] * column_step + pixels[:, 1:] * row_step)
    return outlines


def corners(polygon: np.ndarray) -> np.ndarray:
    """The vertices of a closed ``polygon`` ``(n, 2)`` where it turns: points on a straight run are dropped.

    Example:
        >>> corners(np.array([[0, 0], [1, 0], [2, 0], [2, 1], [1, 1], [0, 1]], dtype=float)).tolist()
        [[0.0, 0.0], [2.0, 0.0], [2.0, 1.0], [0.0, 1.0]]
    """
    before, after = polygon - np.roll(polygon, 1, axis=0), np.roll(polygon, -1, axis=0) - polygon
    turns = np.abs(before[:, 0] * after[:, 1] - before[:, 1] * after[:, 0]) > 1e-9
    return polygon[turns] if turns.sum() >= 3 else polygon


def _contour(points: np.ndarray, source):
    """One closed planar contour on ``source``'s slice."""
    from pydicom.dataelem import DataElement
    from pydicom.dataset import Dataset

    contour = Dataset()
    contour.ContourImageSequence = [_image_reference(source)]
    contour.ContourGeometricType = "CLOSED_PLANAR"
    contour.NumberOfContourPoints = len(points)
    # the points as the one decimal string they are written as: pydicom would make and write a DS object per value
    # (a map of 34 k contours and 1 M values: 60 s of the writer's 105 s)
    contour.add(DataElement(CONTOUR_DATA, "DS", "\\".join(f"{v:.3f}" for v in points.ravel()), already_converted=True))
    return contour


def _image_reference(source):
    """A reference to the slice ``source``: its SOP class and instance."""
    from pydicom.dataset import Dataset

    image = Dataset()
    image.ReferencedSOPClassUID, image.ReferencedSOPInstanceUID = source.SOPClassUID, source.SOPInstanceUID
    return image
