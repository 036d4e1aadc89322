"""``segtool -i INPUT -o OUTPUT [-ta TASK] ...``: the main command."""

from __future__ import annotations

import time
from pathlib import Path

from rich.console import Console

from segkit.io.console import USAGE_ERROR, print_error
from segtool.cli import context
from segtool.options import SegmentOptions
from segtool.registry import ModelEntry
from segtool.report import STDOUT, run_report, write_report
from segtool.run import (
    OutputRequest,
    ScanOutputs,
    check_no_clash,
    check_side_file,
    find_scans,
    plan_targets,
    run_many,
)
from segtool.scans import ScanReader
from segtool.segmenter import Segmenter


def run_segment(input_path: Path, output: Path, options: SegmentOptions, request: OutputRequest, *,
                report: Path | None, quiet: bool, verbose: bool = False) -> int:
    """Segment INPUT (file, DICOM folder/zip or folder of scans) into OUTPUT; return the exit code."""
    started = time.perf_counter()
    context.show_messages(quiet, verbose)
    scans, batch = find_scans(input_path)
    # before the models load: a bad output fails fast
    targets = plan_targets(scans, output, request, batch=batch, lowres=options.save_lowres)
    if report is not None and report != STDOUT:
        check_side_file(report, scans, "report")
    check_no_clash(targets, request, None if report == STDOUT else report)
    with ScanReader(scans) as reader:  # the first scan is read while the models load
        with context.download_bars(quiet) as bars:
            segmenter = Segmenter(options, registry=context.registry(), store=context.store(),
                                  progress_for=context.progress_for(bars))
        console = Console(stderr=True, soft_wrap=True) if report == STDOUT else context.out()  # stdout: the report's
        done: list[tuple[Path, ScanOutputs]] = []
        with context.step_bars(quiet) as bars:
            progress = bars.add_task(f"segmenting ({options.task}, {options.mode.value})", total=len(scans))
            tiles = bars.add_task("", total=None, visible=False)

            def tile_done(entry: ModelEntry, done: int, total: int) -> None:
                bars.update(tiles, description=f"  {entry.name}: tiles", completed=done, total=total, visible=True)

            segmenter.follow_tiles(tile_done)

            def finished(scan: Path, target: Path, outputs: ScanOutputs) -> None:
                done.append((scan, outputs))
                bars.advance(progress)
                if not quiet:
                    written = ", ".join(str(f) for f in outputs.files) or "nothing written"
                    console.print(f"{scan.name} -> {written if request.skip_saving else target}")

            failures = run_many(scans, targets, segmenter, request, batch=batch, on_done=finished, reader=reader)
    for scan, message in failures:
        print_error(message if str(scan) in message else f"{scan}: {message}")
    if report is not None:
        write_report(run_report(segmenter, input_path=input_path, output=output,
                                request=request, done=done, failures=failures,
                                seconds=time.perf_counter() - started), report)
    if not quiet:
        console.print(f"done: {len(scans) - len(failures)} of {len(scans)} scan(s) segmented into {output}")
    return USAGE_ERROR if failures else 0
