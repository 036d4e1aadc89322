"""Console scripts of segkit.io: ``segkit-dataset`` (verify, convert-msd) and ``segkit-image``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from segkit.io.console import USAGE_ERROR, App, output_console, progress_bars

dataset_app = App(help="Check and convert nnU-Net v2 raw dataset folders.")
image_app = App(help="Inspect and convert medical images with exact geometry.")

ExistingDir = Annotated[Path, typer.Argument(exists=True, file_okay=False, dir_okay=True)]
Workers = Annotated[int | None, typer.Option("--workers", "-w", min=1, help="Processes (default: all CPUs).")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")]


@dataset_app.command()
def verify(dataset_dir: ExistingDir, workers: Workers = None, quiet: Quiet = False) -> None:
    """Check every case of DATASET_DIR; list every problem and exit 2 if there is any."""
    from segkit.io.dataset import Dataset
    from segkit.io.verify import verify_dataset

    dataset = Dataset.load(dataset_dir)
    with _progress(quiet) as progress:
        task = progress.add_task("verifying", total=len(dataset.training) + len(dataset.test))
        problems = verify_dataset(dataset_dir, workers=workers, on_case_done=lambda: progress.advance(task))
    console = output_console()
    if not problems:
        console.print(f"[green]OK[/]: {len(dataset.training)} training and {len(dataset.test)} test cases "
                      f"in {dataset_dir} passed every check")
        return
    table = Table("case", "file", "problem", title=f"{len(problems)} problem(s) in {dataset_dir}")
    for problem in problems:
        table.add_row(problem.case, problem.file, problem.message)
    output_console(stderr=True).print(table)
    raise typer.Exit(USAGE_ERROR)


@dataset_app.command("convert-msd")
def convert_msd_command(
    msd_task_dir: ExistingDir, out_dir: Path, workers: Workers = None, quiet: Quiet = False
) -> None:
    """Convert a Medical Segmentation Decathlon task folder into OUT_DIR (nnU-Net v2 layout)."""
    from segkit.io.msd import _msd_images, convert_msd

    total = len(_msd_images(msd_task_dir / "imagesTr")) + len(_msd_images(msd_task_dir / "imagesTs"))
    with _progress(quiet) as progress:
        task = progress.add_task("converting", total=total)
        info = convert_msd(msd_task_dir, out_dir, workers=workers, on_case_done=lambda: progress.advance(task))
    output_console().print(f"wrote {info.num_training} training cases with {info.num_channels} channel(s) to {out_dir}")


@image_app.command()
def info(image: Annotated[Path, typer.Argument(help="Image file, DICOM folder or zip.")]) -> None:
    """Print the shape, spacing, orientation and value range of IMAGE."""
    import numpy as np

    from segkit.io.reading import read_image

    img = read_image(image)
    table = Table(show_header=False, title=str(image))
    table.add_row("shape (i, j, k)", str(img.spatial_shape))
    table.add_row("channels", str(img.num_channels))
    table.add_row("spacing (mm)", " x ".join(f"{s:.4g}" for s in img.spacing))
    table.add_row("orientation", "".join(img.axis_codes))
    table.add_row("origin (RAS mm)", ", ".join(f"{v:.2f}" for v in img.origin))
    table.add_row("dtype", str(img.array.dtype))
    finite = img.array[np.isfinite(img.array)] if img.array.dtype.kind == "f" else img.array
    bad = img.array.size - finite.size
    table.add_row("range", (f"{finite.min()} .. {finite.max()}" if finite.size else "-")
                  + (f" ({bad} NaN or infinite voxels)" if bad else ""))
    output_console().print(table)


@image_app.command()
def convert(
    source: Annotated[Path, typer.Argument(help="Image file, DICOM folder or zip.")],
    target: Annotated[Path, typer.Argument(help="Output .nii.gz, .nii, .mgz, .mgh, .nrrd, .mha or .mhd.")],
    canonical: Annotated[bool, typer.Option(help="Reorient to RAS+ first.")] = False,
    label: Annotated[bool, typer.Option(help="Store as a label map (smallest unsigned type).")] = False,
) -> None:
    """Convert SOURCE to TARGET, keeping the geometry exactly."""
    from segkit.io.errors import FileWriteError
    from segkit.io.reading import read_image
    from segkit.io.writing import write_image

    if target.resolve() == source.resolve():
        raise FileWriteError(f"{target}: the output is the input; choose another file (it would be converted in "
                             "place)")
    img = read_image(source)
    write_image(img.to_canonical() if canonical else img, target, label=label)
    output_console().print(f"wrote {target}")


def _progress(quiet: bool) -> Progress:
    return progress_bars(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                         quiet=quiet)


def main() -> None:
    """Entry point of ``segkit-dataset``."""
    dataset_app()


def image_main() -> None:
    """Entry point of ``segkit-image``."""
    image_app()
