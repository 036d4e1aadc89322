"""The Python API's one call: ``segment(input, output, task=...)`` (`segtool.segmenter.Segmenter` keeps models
loaded across scans).

Example:
    >>> from segtool import segment                                    # doctest: +SKIP
    >>> labels = segment("ct.nii.gz", "out", task="total", fast=True)   # doctest: +SKIP
    >>> labels.extra["label_names"][5]                                  # doctest: +SKIP
    'liver'
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import nibabel as nib

from segkit.io.nifti import to_nifti
from segtool.errors import SegtoolError
from segtool.options import SMALL_BLOB_MM3, SegmentOptions, path_argument
from segtool.registry import BIG, Mode
from segtool.scans import as_scan
from segtool.segmenter import Segmenter


def segment(
    input: str | os.PathLike | nib.Nifti1Image,  # noqa: A002 (the name users expect)
    output: str | os.PathLike | None = None,
    *,
    task: str = "total",
    fast: bool = False,
    fastest: bool = False,
    device: str = "auto",
    roi_subset: str | list[str] | None = None,
    ml: bool = False,
    statistics: bool | str | os.PathLike = False,
    stats_include_incomplete: bool = False,
    stats_aggregation: str = "mean",
    statistics_extra: bool = False,
    skip_saving: bool = False,
    preview: bool = False,
    tta: bool | None = None,
    remove_small_blobs: bool | float = False,
    output_type: str | list[str] = "nifti",
    save_lowres: bool = False,
    robust_crop: bool = False,
    body_seg: bool = False,
    nr_thr_saving: int | None = None,
    resampling_order: int = 1,
    v1_order: bool = False,
    no_derived_masks: bool = False,
    force_split: bool = False,
    higher_order_resampling: bool = False,
    save_probabilities: str | os.PathLike | None = None,
    crop_path: str | os.PathLike | None = None,
    model_size: str = BIG,
    statistics_normalized_intensities: bool = False,
    report: str | os.PathLike | None = None,
) -> nib.Nifti1Image:
    """Segment one scan and return the multilabel map as a NIfTI image on the input grid (the models' grid with
    ``save_lowres``).

    Args:
        input: image path (NIfTI, FreeSurfer MGZ, NRRD, MHA, DICOM folder or zip) or a nibabel image.
        output: folder of per-class masks, or (with ``ml``) a multilabel file (``.nii.gz``, ``.nii``, ``.mgz``,
            ``.mgh``, ``.nrrd``, ``.mha``, ``.mhd``; a name without one of these is a folder that gets
            ``<scan name>.nii.gz``); None writes nothing.
        task, fast, fastest, device, roi_subset, tta, save_lowres, robust_crop, body_seg, resampling_order,
            v1_order, force_split, higher_order_resampling, crop_path, model_size: see `SegmentOptions`.
        ml: write one multilabel file instead of one mask per class.
        statistics: compute per-class volume and mean intensity (in ``result.extra["statistics"]``
            and, with ``output``, in ``statistics.json`` in the masks folder or the multilabel file's folder, as
            TotalSegmentator writes it); a path writes them there instead. Classes cut off by the scan's
            edges are reported as 0, as TotalSegmentator reports them.
        stats_include_incomplete: measure the cut-off classes too (implies ``statistics``).
        stats_aggregation: ``mean`` (default) or ``median`` intensity, as TotalSegmentator's ``stats_aggregation``.
        statistics_extra: also voxel count, intensity std/min/max, centroid and bounding box (implies
            ``statistics``; `segtool.statistics.EXTRA_METRICS`).
        statistics_normalized_intensities: measure intensities min-max normalized over the scan (0..1).
        skip_saving: write no label files to ``output``, only statistics and preview.
        no_derived_masks: write no masks derived from the classes beside the per-class masks (the task's
            `segtool.derived_masks.DERIVED_MASKS`: the body task's ``body`` and ``skin``).
        nr_thr_saving: masks written at a time (None: one per CPU), as TotalSegmentator's ``nr_thr_saving``.
        remove_small_blobs: remove each class's connected components of at most this many mm3 (True:
            `SMALL_BLOB_MM3`), as TotalSegmentator's ``remove_small_blobs``.
        output_type: ``nifti`` (or the format of ``output``'s suffix), ``dicom_seg`` or ``dicom_rtstruct``: a DICOM
            SEG or RTSTRUCT of the input DICOM folder, at ``output`` (a ``.dcm`` file, or a folder that gets
            ``<scan>.dcm``); ``output`` ending in ``.dcm`` with ``ml`` gives a SEG too. Several types: the DICOM
            objects go beside the NIfTI result (``seg.dcm``, ``rtstruct.dcm`` in the folder, or
            ``<name>_seg.dcm``... beside the file).
        preview: with ``output``, also write ``preview_<task>.png`` in the same place as the statistics.
        save_probabilities: also save the models' class probabilities to this ``.npz`` file (see `Segmenter.segment`).
        report: write a JSON record of the run here: versions, models, options, classes, time, files written (as
            the command line's ``--report``).

    Returns:
        The label map, with its class names in a label table (kept by ``nib.save``) and in
        ``extra["label_names"]``.

    Raises:
        SegtoolError: a bad input, option or output, or missing weights (one line each).
    """
    from segtool.derived_masks import derived_for
    from segtool.run import (
        OutputRequest,
        check_no_clash,
        check_side_file,
        plan_targets,
        requested_types,
        side_file_path,
        write_outputs,
    )
    from segtool.statistics import StatisticsOptions

    started = time.perf_counter()

    if preview and output is None:
        raise SegtoolError("preview needs an output to write preview_<task>.png to")
    mode = Mode.of_flags(fast, fastest)
    blobs = SMALL_BLOB_MM3 if remove_small_blobs is True else remove_small_blobs or None
    options = SegmentOptions(task=task, mode=mode, device=device, tta=tta, roi_subset=roi_subset or (),
                             remove_small_blobs=blobs, save_lowres=save_lowres, robust_crop=robust_crop,
                             body_seg=body_seg, resampling_order=resampling_order, v1_order=v1_order,
                             force_split=force_split, higher_order_resampling=higher_order_resampling,
                             crop_path=crop_path, model_size=model_size)
    output = None if output is None else path_argument(output, "output")
    report = None if report is None else side_file_path(report, "report")
    stats_file = side_file_path(statistics, "statistics") if isinstance(statistics, str | os.PathLike) else None
    types = requested_types(output_type, output, ml=ml)
    request = OutputRequest(ml=ml, output_types=types, preview=preview, skip_saving=skip_saving,
                            saving_threads=nr_thr_saving, statistics_file=stats_file,
                            derived_masks=derived_for(task, skip=no_derived_masks),
                            statistics=StatisticsOptions.requested(bool(statistics), stats_include_incomplete,
                                                                   stats_aggregation, statistics_extra,
                                                                   statistics_normalized_intensities),
                            probabilities_file=None if save_probabilities is None
                            else path_argument(save_probabilities, "save_probabilities"))
    image = as_scan(input)
    source = Path(input) if isinstance(input, str | os.PathLike) else None  # None: an image held in memory
    planned = [source or Path("segmentation.nii.gz")]
    target = None if output is None else plan_targets(planned, output, request, batch=False,
                                                      inputs_on_disk=source is not None, lowres=save_lowres)[0]
    for path, what in ((stats_file, "statistics"), (request.probabilities_file, "probabilities")):
        if output is None and path is not None:
            check_side_file(path, planned if source else [], what)
    if report is not None:
        check_side_file(report, planned if source else [], "report")
    check_no_clash([] if target is None else [target], request, report)
    segmenter = Segmenter(options)
    grid, labels = segmenter.segment_for_output(image, probabilities=request.probabilities_file)
    outputs = write_outputs(grid, labels, segmenter.label_names, target, request, task=segmenter.options.task)
    outputs.files += segmenter.probability_files
    stats = outputs.statistics
    if report is not None:
        from segtool.report import run_report, write_report

        write_report(run_report(segmenter, input_path=source, output=output, request=request,
                                done=[(source, outputs)], failures=[], seconds=time.perf_counter() - started), report)
    result = to_nifti(labels)  # with the label table and the scan's qform and sform codes
    result.extra.update({"label_names": segmenter.label_names, **({"statistics": stats} if stats is not None else {})})
    return result
