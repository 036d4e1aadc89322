"""Crop a CT scan to the body, as TotalSegmentator's ``crop_to_body`` does: the box of what the body task's fast
(6 mm) model finds, or of its trunk alone, widened by `BODY_MARGIN_MM`."""

from __future__ import annotations

import os

import nibabel as nib

from segkit.io import Image
from segtool.errors import SegtoolError
from segtool.models import ModelProgress
from segtool.options import SegmentOptions
from segtool.regions import BODY_MARGIN_MM, BODY_TASK, box_around
from segtool.registry import Mode, Registry
from segtool.scans import as_scan
from segtool.segmenter import Segmenter
from segtool.store import WeightsStore

TRUNK = "body_trunc"  #: the body task's class of the trunk


def body_box(image: Image | str | os.PathLike | nib.spatialimages.SpatialImage, *, only_trunk: bool = False,
             device: str = "auto", registry: Registry | None = None, store: WeightsStore | None = None,
             progress_for: ModelProgress = lambda entry: None) -> tuple[slice, slice, slice] | None:
    """The box of ``image`` (a segkit `Image`, a path or a nibabel image) that holds the body (the trunk with
    ``only_trunk``) plus `BODY_MARGIN_MM`; None where the body task finds nothing.

    Raises:
        SegtoolError: the image is not a single-channel 3D scan or holds NaN/Inf, the body task's weights are missing
            and cannot be downloaded, or it has no trunk class.
    """
    image = as_scan(image)
    segmenter = Segmenter(SegmentOptions(task=BODY_TASK, mode=Mode.FAST, device=device), registry=registry,
                          store=store, progress_for=progress_for)
    labels = segmenter.segment_scan(image).array
    if not only_trunk:
        return box_around(labels > 0, image.spacing, BODY_MARGIN_MM)
    value_of = {name: value for value, name in segmenter.task.labels.items()}
    if TRUNK not in value_of:
        raise SegtoolError(f"task {BODY_TASK!r} has no class {TRUNK!r} to crop to")
    return box_around(labels == value_of[TRUNK], image.spacing, BODY_MARGIN_MM)
