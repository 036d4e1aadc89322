"""A label map as a DICOM Segmentation (DICOM SEG) of the series it was segmented from, one segment per class.

TotalSegmentator writes one with ``--output_type dicom_seg``; segtool with ``-ot dicom_seg`` (or ``--ml -o NAME.dcm``)
on a DICOM folder.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.metadata
import json
import logging
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import numpy as np

from segkit.io import Image
from segkit.io.atomic import atomic_path
from segtool.dicom_series import label_frame, source_datasets

#: codes of a class that `segment_codes` lacks
GENERIC_CODES = {"category": ["SCT", "123037004", "Anatomical Structure"],
                 "type": ["SCT", "91723000", "Anatomical structure"]}


def write_dicom_seg(labels: Image, names: dict[int, str], scan: Image, path: Path, *,
                    sources: list | None = None) -> Path:
    """Write ``labels`` (on ``scan``'s grid) as a DICOM SEG that references the files ``scan`` was read from (their
    headers: ``sources``, or read here by `source_datasets`).

    Each class present becomes a segment labelled with its name; absent classes are left out (a SEG needs at least
    one segment, so an empty map keeps the first class). Frames follow the source slices, one per slice.

    Raises:
        SegtoolError: ``scan`` was not read from a DICOM folder (``scan.meta["dicom_files"]``), or its slices do
            not lie on the label map's grid.
    """
    import highdicom as hd  # only this output needs it (and pydicom)
    from pydicom.sr.codedict import codes

    version = importlib.metadata.version("segtool")
    sources = sources or source_datasets(scan, path)
    found = set(np.unique(labels.array).tolist())
    present = [v for v in sorted(names) if v in found] or sorted(names)[:1]
    segment_of = np.zeros(max(*names, *found) + 1, dtype=np.uint16)  # other values (none expected): background
    segment_of[present] = np.arange(1, len(present) + 1)
    frames = np.stack([segment_of[label_frame(labels, source, path)] for source in sources])
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
