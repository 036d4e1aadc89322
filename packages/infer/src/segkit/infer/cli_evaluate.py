"""``segkit-evaluate PRED_DIR REF_DIR``: per-case and per-class metrics, ``summary.json`` and a table."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from segkit.infer.cli_predict import NnunetWorkers
from segkit.io.console import App, output_console
from segkit.io.errors import SegkitError

app = App(user_errors=(SegkitError,), help="Compare predicted label maps with reference label maps.")


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.4f}"


def _cells(means: dict) -> list[str]:
    from segkit.infer.evaluate import HD95_INFINITE, METRICS

    cells = [_fmt(means[m]) for m in METRICS]
    if means.get(HD95_INFINITE):  # older summaries lack the count
        cells[METRICS.index("HD95")] += f" (+{means[HD95_INFINITE]} inf)"
    return cells


def print_summary(summary: dict, title: str) -> None:
    """Print the per-label means and the foreground mean of an evaluation summary as a table; an HD95 mean that
    leaves out cases where a class is in one map only says how many (``+N inf``)."""
    from segkit.infer.evaluate import METRICS

    table = Table(title=title)
    table.add_column("label")
    for metric in METRICS:
        table.add_column(metric, justify="right")
    names = summary.get("names", {})
    for label, values in summary["mean"].items():
        table.add_row(f"{label} {names[label]}" if label in names else label, *_cells(values))
    table.add_row("foreground", *_cells(summary["foreground_mean"]), style="bold")
    output_console().print(table)


@app.command()
def evaluate(
    pred_dir: Annotated[Path, typer.Argument(help="Folder of predicted label maps.")],
    ref_dir: Annotated[Path, typer.Argument(help="Folder of reference label maps (same file names).")],
    labels: Annotated[list[int] | None, typer.Option("-l", "--labels", help="Labels to score (default: all).")] = None,
    ignore_label: Annotated[int | None, typer.Option("--ignore-label", "-il",
                                                     help="Reference label excluded from scoring.")] = None,
    tolerance: Annotated[float, typer.Option(help="Normalized surface Dice tolerance in mm.")] = 1.0,
    dataset_json: Annotated[Path | None, typer.Option(
        "--dataset-json", "-djfile",
        help="Score the labels (regions, for a region-based dataset) and ignore label of this dataset.json.")] = None,
    output: Annotated[Path | None, typer.Option("-o", "--output", help="summary.json path.")] = None,
    chill: Annotated[bool, typer.Option("--chill", help="Score only the references that have a prediction "
                                        "(default: every reference needs one).")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", help="No table.")] = False,
    plans_file: Annotated[Path | None, typer.Option("-pfile", hidden=True, help="nnU-Net's plans.json, which names "
                                                    "its image reader; segkit reads images by their file ending")
                          ] = None,
    workers: NnunetWorkers = None,
) -> None:
    """Compute Dice, IoU, NSD and HD95 per case and class; write summary.json (default: PRED_DIR/summary.json)."""
    from segkit.infer.evaluate import EvaluateOptions, evaluate_folders, write_summary
    from segkit.io.atomic import writable_json_file

    if output is not None:
        writable_json_file(output)  # before the scoring
    if dataset_json is not None:
        options = EvaluateOptions.from_dataset_json(dataset_json, tolerance_mm=tolerance)
    else:
        options = EvaluateOptions(labels=tuple(labels) if labels else None, ignore_label=ignore_label,
                                  tolerance_mm=tolerance)
    summary = evaluate_folders(pred_dir, ref_dir, options=options, allow_missing=chill)
    write_summary(summary, output or pred_dir / "summary.json")
    if not quiet:
        print_summary(summary, f"{len(summary['metric_per_case'])} case(s), NSD tolerance {tolerance} mm")


def main() -> None:
    """Console-script entry point."""
    app()
