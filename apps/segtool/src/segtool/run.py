"""Running segmentation on files and folders: input discovery, outputs, batch mode."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from segkit.io import Image, SegkitError, read_image
from segkit.io.atomic import atomic_path
from segkit.io.nifti import NIFTI_SUFFIXES
from segtool.api import Segmenter
from segtool.errors import SegtoolError
from segtool.outputs import write_class_masks, write_multilabel
from segtool.preview import write_preview
from segtool.statistics import class_statistics

SCAN_SUFFIXES = NIFTI_SUFFIXES + (".nrrd", ".mha", ".mhd", ".zip")


def find_scans(path: Path) -> list[Path]:
    """The scans an input path stands for: a file, a DICOM folder, or a folder of scans (batch)."""
    if not path.exists():
        raise SegtoolError(f"{path}: no such file or folder")
    if path.is_file():
        return [path]
    scans = sorted(p for p in path.iterdir() if p.is_file() and p.name.lower().endswith(SCAN_SUFFIXES))
    if scans:
        return scans
    if any(p.is_file() for p in path.iterdir()):
        return [path]  # a DICOM series folder
    raise SegtoolError(f"{path}: folder holds no scans")


def scan_name(path: Path) -> str:
    """Output name of a scan: its file name without the image extension (and any ``_0000``)."""
    name = path.name
    for suffix in SCAN_SUFFIXES:
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
            break
    return name.removesuffix("_0000")


def output_target(output: Path, scan: Path, *, ml: bool, batch: bool) -> Path:
    """Where one scan's result goes.

    Masks: ``output/`` (one scan) or ``output/<scan>/`` (batch). Multilabel: ``output`` itself
    when it ends in ``.nii.gz``/``.nii`` (one scan only), else ``output/<scan>.nii.gz``.
    """
    is_file = output.name.lower().endswith(NIFTI_SUFFIXES)
    if ml and is_file:
        if batch:
            raise SegtoolError(f"{output}: a folder of scans needs an output folder, not a file")
        return output
    if ml:
        return output / f"{scan_name(scan)}.nii.gz"
    if is_file:
        raise SegtoolError(f"{output}: per-class masks need an output folder (or use --ml for one file)")
    return output / scan_name(scan) if batch else output


def write_outputs(image: Image, labels: Image, names: dict[int, str], target: Path | None, *,
                  ml: bool, statistics: bool, preview: bool) -> dict | None:
    """Write masks into folder ``target`` (or, with ``ml``, the multilabel file ``target``).

    Statistics and preview go beside the result: ``statistics.json``/``preview.png`` inside
    the masks folder, or ``<name>_statistics.json``/``<name>_preview.png`` next to the file.
    Returns the statistics when asked for.
    """
    stats = class_statistics(labels.array, names, image.array, image.spacing) if statistics else None
    if target is None:
        return stats
    if ml:
        target.parent.mkdir(parents=True, exist_ok=True)
        write_multilabel(labels, names, target)
        stem = target.name.removesuffix(".gz").removesuffix(".nii")
        stats_path, preview_path = target.with_name(f"{stem}_statistics.json"), target.with_name(f"{stem}_preview.png")
    else:
        write_class_masks(labels, names, target)
        stats_path, preview_path = target / "statistics.json", target / "preview.png"
    if stats is not None:
        with atomic_path(stats_path) as tmp:
            tmp.write_text(json.dumps(stats, indent=1))
    if preview:
        write_preview(image, labels, preview_path)
    return stats


def run_many(scans: list[Path], output: Path, segmenter: Segmenter, *, ml: bool, statistics: bool,
             preview: bool, on_done: Callable[[Path, Path], None] = lambda scan, out: None) -> list[tuple[Path, str]]:
    """Segment each scan with one loaded segmenter; return the (scan, error) pairs of scans that failed.

    One scan writes straight to ``output``; several write to ``output/<scan name>`` each, and a
    bad scan is reported without stopping the others (outputs already written stay valid).
    A single bad scan raises its error.
    """
    failures = []
    for scan in scans:
        try:
            target = output_target(output, scan, ml=ml, batch=len(scans) > 1)
            image = read_image(scan)
            labels = segmenter.segment(image)
            write_outputs(image, labels, segmenter.label_names, target, ml=ml, statistics=statistics, preview=preview)
        except SegkitError as err:
            if len(scans) == 1:
                raise
            failures.append((scan, str(err)))
            continue
        on_done(scan, target)
    return failures
