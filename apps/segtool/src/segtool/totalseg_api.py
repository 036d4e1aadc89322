"""``totalsegmentator(...)`` with TotalSegmentator 2.18's Python signature, run by segtool: scripts that call
``totalsegmentator.python_api.totalsegmentator`` switch by changing the import."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator

import nibabel as nib

from segtool.errors import SegtoolError

#: TotalSegmentator's arguments that segtool cannot honour, with the value that asks for nothing
UNSUPPORTED = {"radiomics": False, "license_number": None, "higher_order_resampling_LEGACY": False,
               "plans": "nnUNetPlans", "test": 0}


def totalsegmentator(input: str | os.PathLike | nib.Nifti1Image, output: str | os.PathLike | None = None,  # noqa: A002
                     ml=False, nr_thr_resamp=1, nr_thr_saving=6, fast=False, nora_tag="None", preview=False,
                     task="total", roi_subset=None, statistics=False, radiomics=False, crop_path=None, body_seg=False,
                     force_split=False, output_type="nifti", quiet=False, verbose=False, test=0, skip_saving=False,
                     device="gpu", license_number=None, statistics_exclude_masks_at_border=True,
                     no_derived_masks=False, v1_order=False, fastest=False, roi_subset_robust=None,
                     stats_aggregation="mean", remove_small_blobs=False, statistics_normalized_intensities=False,
                     robust_crop=False, higher_order_resampling_LEGACY=False, higher_order_resampling=False,
                     save_probabilities=None, debug=False, report=None, statistics_extra=False, save_lowres=False,
                     resampling_order=1, plans="nnUNetPlans", model_size="big") -> nib.Nifti1Image:
    """Segment ``input`` as TotalSegmentator's ``totalsegmentator()`` does, with its argument names and defaults;
    returns the multilabel map (see `segtool.segment`).

    ``device="gpu"`` (its default) runs on the GPU where there is one, else on the CPU, as there; ``verbose`` prints
    each step with its time; ``quiet``, ``nr_thr_resamp``, ``nora_tag`` and ``debug`` change nothing (segtool's API
    prints no progress). Radiomics, licensed tasks, other plans, ``higher_order_resampling_LEGACY`` and ``test`` are
    refused with a `SegtoolError`.
    """
    from segtool.api import segment
    from segtool.options import class_names

    given = {"radiomics": radiomics, "license_number": license_number, "plans": plans, "test": test,
             "higher_order_resampling_LEGACY": higher_order_resampling_LEGACY}
    refused = [name for name, value in given.items() if value != UNSUPPORTED[name]]
    if refused:
        raise SegtoolError(f"segtool does not support TotalSegmentator's {', '.join(refused)}")
    with _steps_printed(verbose):
        return segment(
            input, output, task=task, fast=fast, fastest=fastest, device=str(device),
            roi_subset=[*class_names(roi_subset or (), "roi_subset"),
                        *class_names(roi_subset_robust or (), "roi_subset_robust")] or None,
            ml=ml, statistics=statistics,
            stats_include_incomplete=not statistics_exclude_masks_at_border, stats_aggregation=stats_aggregation,
            statistics_extra=statistics_extra, statistics_normalized_intensities=statistics_normalized_intensities,
            skip_saving=skip_saving, preview=preview, remove_small_blobs=remove_small_blobs, output_type=output_type,
            save_lowres=save_lowres, robust_crop=robust_crop or bool(roi_subset_robust), body_seg=body_seg,
            nr_thr_saving=nr_thr_saving, resampling_order=resampling_order, v1_order=v1_order,
            no_derived_masks=no_derived_masks, force_split=force_split,
            higher_order_resampling=higher_order_resampling, save_probabilities=save_probabilities,
            crop_path=crop_path, model_size=model_size, report=report)


@contextlib.contextmanager
def _steps_printed(verbose: bool) -> Iterator[None]:
    """With ``verbose``, print segtool's messages and steps (`segtool.steps`) on stderr for the block."""
    if not verbose:
        yield
        return
    logger = logging.getLogger("segtool")
    handler, level = logging.StreamHandler(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
