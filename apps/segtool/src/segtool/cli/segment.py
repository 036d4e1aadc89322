"""``segtool -i INPUT -o OUTPUT [-ta TASK] ...``: the main command."""

from __future__ import annotations

from pathlib import Path

from segkit.io.console import USAGE_ERROR, print_error
from segtool.api import Segmenter, SegmentOptions
from segtool.cli import context
from segtool.errors import SegtoolError
from segtool.registry import Mode
from segtool.run import find_scans, plan_targets, run_many
from segtool.statistics import StatisticsOptions


def run_segment(input_path: Path, output: Path, *, task: str, fast: bool, fastest: bool, device: str, ml: bool,
                dicom_seg: bool, roi_subset: list[str], remove_small_blobs: float | None,
                statistics: StatisticsOptions | None, preview: bool, no_tta: bool, precision: str | None,
                quiet: bool) -> int:
    """Segment INPUT (file, DICOM folder/zip or folder of scans) into OUTPUT; return the exit code."""
    if fast and fastest:
        raise SegtoolError("choose either --fast or --fastest, not both")
    context.show_messages(quiet)
    ml = ml or dicom_seg
    scans, batch = find_scans(input_path)
    # before the models load: a bad output fails fast
    targets = plan_targets(scans, output, ml=ml, batch=batch, dicom_seg=dicom_seg)
    mode = Mode.FASTEST if fastest else Mode.FAST if fast else Mode.DEFAULT
    options = SegmentOptions(task=task, mode=mode, device=device, tta=False if no_tta else None,
                             precision=precision, roi_subset=tuple(roi_subset), remove_small_blobs=remove_small_blobs)
    with context.download_bars(quiet) as bars:
        segmenter = Segmenter(options, registry=context.registry(), store=context.store(),
                              progress_for=context.progress_for(bars))
    console = context.out()
    with context.step_bars(quiet) as bars:
        progress = bars.add_task(f"segmenting ({task}, {mode.value})", total=len(scans))

        def done(scan: Path, target: Path) -> None:
            bars.advance(progress)
            if not quiet:
                console.print(f"{scan.name} -> {target}")

        failures = run_many(scans, targets, segmenter, ml=ml, statistics=statistics, preview=preview, batch=batch,
                            on_done=done)
    for scan, message in failures:
        print_error(message if str(scan) in message else f"{scan}: {message}")
    if not quiet:
        console.print(f"done: {len(scans) - len(failures)} of {len(scans)} scan(s) segmented into {output}")
    return USAGE_ERROR if failures else 0
