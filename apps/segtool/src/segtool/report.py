"""A machine-readable record of a segtool run (TotalSegmentator's ``--report``): software and model versions, the
options, the classes, the run time and every file written."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from segkit.io.atomic import atomic_path
from segtool.errors import SegtoolError
from segtool.run import OutputRequest, ScanOutputs
from segtool.segmenter import Segmenter
from segtool.versions import versions

STDOUT = Path("-")  #: the report path that means standard output


def run_report(segmenter: Segmenter, *, input_path: Path | None, output: Path | None, request: OutputRequest,
               done: list[tuple[Path | None, ScanOutputs]], failures: list[tuple[Path, str]], seconds: float) -> dict:
    """The report of one run of ``segmenter`` over the scans of ``input_path``; it holds TotalSegmentator's keys
    (``fast``, ``fastest``, ``output_files``: the ``.nii.gz`` files written into the output folder, by name) too.

    Args:
        input_path, output: the run's input and output (None: an image held in memory; nothing written).
        done: each segmented scan with what was written for it.
        failures: each scan that failed with its error (a batch goes on past them).
        seconds: wall time of the whole run.
    """
    options, task = segmenter.options, segmenter.task
    return {
        "software": versions(),
        "task": task.name,
        "modality": task.modality,
        "mode": options.mode.value,
        "fast": options.mode.value == "fast",  # TotalSegmentator's report keys, for pipelines that read them
        "fastest": options.mode.value == "fastest",
        "model_size": options.model_size,
        "device": segmenter.device,
        "models": [{"name": entry.name, "format": entry.format.value, "plans": entry.plans,
                    "configuration": entry.configuration, "folds": list(predictor.folds), "sha256": entry.sha256,
                    "step": predictor.options.step, "tta": predictor.options.tta,
                    "shift_tta": predictor.options.shift_tta,
                    "precision": str(predictor.network_dtype).removeprefix("torch.")}
                   for entry, predictor in segmenter.all_models],
        "roi_subset": list(options.roi_subset),
        "robust_crop": options.robust_crop,
        "body_seg": options.body_seg,
        "crop_path": None if options.crop_path is None else str(options.crop_path),
        "remove_small_blobs_mm3": options.remove_small_blobs,
        "save_lowres": options.save_lowres,
        "resampling_order": options.resampling_order,
        "v1_order": options.v1_order,
        "force_split": options.force_split,
        "higher_order_resampling": options.higher_order_resampling,
        "multilabel": request.ml,
        "output_type": list(request.output_types),
        "skip_saving": request.skip_saving,
        "input": None if input_path is None else str(input_path),
        "output": None if output is None else str(output),
        "num_classes": len(segmenter.label_names),
        "classes": {str(value): name for value, name in sorted(segmenter.label_names.items())},
        "runtime_seconds": round(seconds, 2),
        "scans": [{"input": None if scan is None else str(scan), "files": [str(f) for f in outputs.files]}
                  for scan, outputs in done],
        "failed": [{"input": str(scan), "error": message} for scan, message in failures],
        "output_files": sorted(f.name for _, outputs in done for f in map(Path, outputs.files)
                               if output is not None and f.parent == output and f.name.endswith(".nii.gz")),
    }


def write_report(report: dict, path: Path) -> Path:
    """Write ``report`` as JSON to ``path`` (all or nothing), or to standard output for `STDOUT`."""
    if path == STDOUT:
        sys.stdout.write(json.dumps(report, indent=1) + "\n")
        return path
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps(report, indent=1))
    except OSError as err:
        raise SegtoolError(f"cannot write {path}: {err.strerror or err}") from err
    return path
