"""``segkit-plan``: fingerprint, plan and preprocess a dataset (each step also on its own).

``segkit-plan DATASET_DIR -o OUT_DIR`` runs every step; ``segkit-plan fingerprint|plan|
preprocess|move-plans ...`` run one.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn

from segkit.io.console import App, progress_bars

app = App(help="Plan and preprocess an nnU-Net v2 raw dataset for segkit training.")

DatasetDir = Annotated[Path, typer.Argument(exists=True, file_okay=False, help="nnU-Net v2 raw dataset folder.")]
OutDir = Annotated[Path, typer.Option("--output", "-o", help="Output folder (fingerprint.json, plans.json, cases).")]
Workers = Annotated[int | None, typer.Option("--workers", "-w", "-np", min=1,
                                             help="Processes (default: all CPUs; -np as nnU-Net spells it).")]
Configs = Annotated[
    list[str] | None,
    typer.Option("--configs", "-c", help="Configurations to preprocess (default: 2d 3d_fullres 3d_lowres)."),
]
GpuMemory = Annotated[
    float | None, typer.Option("--gpu-memory", help="GPU memory to plan for, GB (default: 8, or the preset's).")
]
Preset = Annotated[str, typer.Option("--preset", help="Planner: default, resenc_m, resenc_l, resenc_xl.")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")]
Device = Annotated[str, typer.Option("--device", help="Where preprocessing resamples: cpu, cuda, cuda:N.")]

COMMANDS = {"run", "fingerprint", "plan", "preprocess", "move-plans"}


def _workers(value: int | None) -> int:
    from segkit.io.cpus import available_cpus

    return value or available_cpus()


def _progress(quiet: bool):
    @contextlib.contextmanager
    def open_bar(description: str, total: int) -> Iterator:
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with progress_bars(*columns, quiet=quiet, transient=False) as bar:
            task = bar.add_task(description, total=total)
            yield lambda: bar.advance(task)

    return open_bar


def _report(plans, quiet: bool) -> None:
    if quiet:
        return
    console = Console(stderr=True)
    for line in plans.extra.get("decisions", []):
        console.print(f"  {line}", highlight=False)


@app.command()
def run(
    dataset_dir: Annotated[Path | None, typer.Argument(
        exists=True, file_okay=False, help="nnU-Net v2 raw dataset folder (or -d).")] = None,
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", help="Output folder (fingerprint.json, plans.json, cases); with -d, default: "
        "$nnUNet_preprocessed/DatasetXXX_Name.")] = None,
    dataset: Annotated[str | None, typer.Option(
        "-d", "--dataset", help="The raw dataset by number or name in $nnUNet_raw, as nnU-Net takes it.")] = None,
    configs: Configs = None,
    gpu_memory: GpuMemory = None,
    preset: Preset = "default",
    no_preprocess: Annotated[bool, typer.Option("--no-preprocess", help="Stop after planning.")] = False,
    no_verify: Annotated[bool, typer.Option("--no-verify", help="Skip dataset verification.")] = False,
    workers: Workers = None,
    device: Device = "cpu",
    quiet: Quiet = False,
) -> None:
    """Verify, fingerprint, plan and preprocess DATASET_DIR (or -d DATASET) into OUTPUT."""
    from segkit.planning.planner import PlanOptions
    from segkit.planning.runner import DEFAULT_CONFIGURATIONS, RunOptions, plan_and_preprocess

    dataset_dir, output = _dataset_and_output(dataset_dir, output, dataset)
    options = RunOptions(
        workers=_workers(workers),
        plan=PlanOptions(preset=preset, gpu_memory_gb=gpu_memory),
        configurations=tuple(configs) if configs else None,
        preprocess=not no_preprocess,
        verify=not no_verify,
        device=device,
    )
    plans = plan_and_preprocess(dataset_dir, output, options=options, progress=_progress(quiet))
    _report(plans, quiet)
    if not quiet:
        done = [c for c in options.configurations or DEFAULT_CONFIGURATIONS if c in plans.configurations
                ] if options.preprocess else []
        where = ", ".join(str(output / c) for c in done) or "nothing preprocessed"
        Console(stderr=True).print(f"wrote {output / 'plans.json'}; {where}", highlight=False)


def _dataset_and_output(dataset_dir: Path | None, output: Path | None, dataset: str | None) -> tuple[Path, Path]:
    """The raw dataset folder and the output folder, given as such or (``-d``) the way nnU-Net finds them."""
    from segkit.planning.errors import PlanningError

    if (dataset_dir is None) == (dataset is None):
        raise PlanningError("give the raw dataset as DATASET_DIR or as -d DATASET (its number or name in "
                            "$nnUNet_raw), one of the two")
    if dataset is None:
        if output is None:
            raise PlanningError("-o OUTPUT is needed with DATASET_DIR (with -d DATASET it defaults to "
                                "$nnUNet_preprocessed/DatasetXXX_Name)")
        return dataset_dir, output
    from segkit.io.nnunet_folders import PREPROCESSED, RAW, dataset_folder, nnunet_folder

    raw = dataset_folder(nnunet_folder(RAW, looked_up="a dataset given by -d", instead="give its folder"),
                         dataset, kind="raw datasets")
    if output is None:
        output = nnunet_folder(PREPROCESSED, looked_up="the output of -d DATASET",
                               instead="give it with -o") / raw.name
    return raw, output


@app.command()
def fingerprint(dataset_dir: DatasetDir, output: OutDir, workers: Workers = None, quiet: Quiet = False) -> None:
    """Compute OUTPUT/fingerprint.json for DATASET_DIR."""
    from segkit.io.atomic import output_folder
    from segkit.io.dataset import Dataset
    from segkit.planning.runner import fingerprint_step

    with output_folder(output) as output:
        fingerprint_step(Dataset.load(dataset_dir), output, workers=_workers(workers), progress=_progress(quiet))


@app.command()
def plan(
    dataset_dir: DatasetDir,
    output: OutDir,
    gpu_memory: GpuMemory = None,
    preset: Preset = "default",
    workers: Workers = None,
    quiet: Quiet = False,
) -> None:
    """Write OUTPUT/plans.json (computing the fingerprint first if it is missing)."""
    from segkit.io.atomic import output_folder
    from segkit.io.dataset import Dataset
    from segkit.planning.planner import PlanOptions
    from segkit.planning.runner import fingerprint_step, plan_step

    with output_folder(output) as output:
        dataset = Dataset.load(dataset_dir)
        fp = fingerprint_step(dataset, output, workers=_workers(workers), progress=_progress(quiet))
        plans = plan_step(dataset, fp, output, options=PlanOptions(preset=preset, gpu_memory_gb=gpu_memory))
    _report(plans, quiet)


@app.command()
def preprocess(
    dataset_dir: DatasetDir,
    output: OutDir,
    configs: Configs = None,
    workers: Workers = None,
    device: Device = "cpu",
    quiet: Quiet = False,
) -> None:
    """Preprocess DATASET_DIR with OUTPUT/plans.json into OUTPUT/<configuration>/ (and write OUTPUT/dataset.json)."""
    from segkit.io.atomic import output_folder
    from segkit.io.dataset import Dataset
    from segkit.planning.plans import Plans
    from segkit.planning.runner import PLANS_FILE, preprocess_step

    with output_folder(output) as output:
        preprocess_step(
            Dataset.load(dataset_dir),
            Plans.load(output / PLANS_FILE),
            output,
            configurations=tuple(configs) if configs else None,
            workers=_workers(workers),
            device=device,
            progress=_progress(quiet),
        )


@app.command("move-plans")
def move_plans_command(
    source_plans: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="plans.json to copy.")],
    target_dataset: DatasetDir,
    output: OutDir,
    plans_name: Annotated[str | None, typer.Option("--plans-name", help="Name of the new plans.")] = None,
) -> None:
    """Copy SOURCE_PLANS onto TARGET_DATASET (for fine-tuning a pretrained network) as OUTPUT/plans.json."""
    from segkit.io.atomic import output_folder
    from segkit.io.dataset import Dataset
    from segkit.planning.moving import move_plans
    from segkit.planning.plans import Plans
    from segkit.planning.runner import PLANS_FILE

    with output_folder(output) as output:
        target = Dataset.load(target_dataset)
        moved = move_plans(Plans.load(source_plans), target.info, dataset_name=target.root.name, plans_name=plans_name)
        moved.save(output / PLANS_FILE)
    Console(stderr=True).print(f"wrote {output / PLANS_FILE} ({len(moved.configurations)} configurations)")


def with_default_command(args: list[str]) -> list[str]:
    """Insert ``run`` unless the arguments start with a command name or a help flag."""
    if (
        args
        and args[0] not in COMMANDS
        and args[0] not in ("--help", "-h", "--install-completion", "--show-completion")
    ):
        return ["run", *args]
    return args


def main() -> None:
    """Entry point of ``segkit-plan``."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    app(args=with_default_command(sys.argv[1:]), prog_name="segkit-plan")
