"""The ``segtool`` command: ``segtool -i INPUT -o OUTPUT -ta TASK`` plus management commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from segkit.io.console import USAGE_ERROR, App, print_error
from segkit.io.errors import SegkitError
from segtool.cli import combine, crop, download, info, tasks, weights
from segtool.cli.choices import OutputType, Precision, StatsAggregation
from segtool.cli.totalseg_style import TotalSegmentatorStyle
from segtool.registry import BIG

MODELS, REGIONS, STATISTICS = "Models", "Regions", "Statistics"  # groups of options in --help

app = App(user_errors=(SegkitError,), no_args_is_help=False, cls=TotalSegmentatorStyle,
          help="Segment medical images with pretrained models, by task, in one command.\n\n"
               "Example: segtool -i ct.nii.gz -o out -ta total --fast")


def _show_version(value: bool) -> None:
    if value:
        from segtool.versions import versions

        typer.echo(f"segtool {versions(('segtool',))['segtool']}")
        raise typer.Exit(0)


def _list_tasks(value: bool) -> None:
    if value:
        tasks.tasks()
        raise typer.Exit(0)


def _list_classes(task: str | None) -> None:
    if task is not None:
        try:
            tasks.classes(task)
        except SegkitError as err:  # parsing is not yet inside the command's error handling
            raise typer.BadParameter(str(err)) from None
        raise typer.Exit(0)


@app.callback(invoke_without_command=True)
def segment(
    ctx: typer.Context,
    input_path: Annotated[Path | None, typer.Option(
        "--input", "-i", help="Scan (NIfTI/MGZ/NRRD/MHA), DICOM folder or zip, or a folder of scans.")] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o",
                                                help="Output folder (one mask per class) or file with --ml.")] = None,
    task: Annotated[str, typer.Option("--task", "-ta", help="Task (see 'segtool tasks').")] = "total",
    fast: Annotated[bool, typer.Option(
        "--fast", "-f", help="Faster, lower-resolution (3 mm) models.", rich_help_panel=MODELS)] = False,
    fastest: Annotated[bool, typer.Option(
        "--fastest", "-ff", help="Fastest, coarsest (6 mm) models.", rich_help_panel=MODELS)] = False,
    model_size: Annotated[str, typer.Option(
        "--model-size", "-ms", metavar="SIZE", help="big, or another size the task comes in (total_v3: small, its "
                                                    "ResEnc models).", rich_help_panel=MODELS)] = BIG,
    device: Annotated[str, typer.Option(
        "--device", "-d", help="auto, cpu, cuda, cuda:N or mps; gpu or gpu:N as in TotalSegmentator (that GPU, else "
                               "the CPU with a warning).", rich_help_panel=MODELS)] = "auto",
    ml: Annotated[bool, typer.Option("--ml", "-ml", help="One multilabel file instead of one mask per class.")] = False,
    save_lowres: Annotated[bool, typer.Option(
        "--save-lowres", "-sl", help="Keep the masks at the models' resolution (3 mm with --fast, 6 mm with "
                                     "--fastest) instead of the scan's.", rich_help_panel=MODELS)] = False,
    v1_order: Annotated[bool, typer.Option(
        "--v1-order", "-v1o", help="Number the classes as TotalSegmentator v1 did (task total; classes new in v2 "
                                   "are left out).")] = False,
    output_type: Annotated[list[OutputType] | None, typer.Option(
        "--output-type", "-ot",
        help="nifti (or the format of -o's suffix); dicom_seg or dicom_rtstruct: a DICOM SEG or RTSTRUCT (.dcm) of the "
             "input DICOM series (also: --ml -o NAME.dcm). Several (-ot nifti dicom_seg): the DICOM objects go beside "
             "the NIfTI result.")] = None,
    roi_subset: Annotated[list[str] | None, typer.Option(
        "--roi-subset", "-rs", help="Only these classes (-rs liver spleen, or repeat the option).",
        rich_help_panel=REGIONS)] = None,
    roi_subset_robust: Annotated[list[str] | None, typer.Option(
        "--roi-subset-robust", "-rsr", help="As --roi-subset, with --robust-crop.", rich_help_panel=REGIONS)] = None,
    robust_crop: Annotated[bool, typer.Option(
        "--robust-crop", "-rc", help="Locate a ROI subset, or a sub-task's region, with the 3 mm models instead of "
                                     "the 6 mm ones.", rich_help_panel=REGIONS)] = False,
    crop_path: Annotated[Path | None, typer.Option(
        "--crop-path", "-cp", metavar="DIR",
        help="Masks of the classes a sub-task is cropped to (<class>.nii.gz on the scan's grid, e.g. an earlier "
             "'-ta total' output), used instead of finding them.", rich_help_panel=REGIONS)] = None,
    body_seg: Annotated[bool, typer.Option(
        "--body-seg", "-bs", help="Crop a CT scan to the body (found by the 'body' task's 6 mm model) first.",
        rich_help_panel=REGIONS)] = False,
    statistics: Annotated[str | None, typer.Option(
        "--statistics", "-s", metavar="[PATH]",
        help="Write per-class volume and intensity to statistics.json beside the masks (or to PATH; in a batch of "
             "--ml files, NAME_statistics.json beside each).",
        rich_help_panel=STATISTICS)] = None,
    stats_include_incomplete: Annotated[bool, typer.Option(
        "--stats-include-incomplete", "-sii",
        help="Statistics also for classes cut off by the scan's edges (else reported as 0).",
        rich_help_panel=STATISTICS)] = False,
    stats_aggregation: Annotated[StatsAggregation, typer.Option(
        "--stats-aggregation", "-sa", help="Intensity statistic: mean or median.",
        rich_help_panel=STATISTICS)] = StatsAggregation.MEAN,
    statistics_extra: Annotated[bool, typer.Option(
        "--statistics-extra", "-sx",
        help="Statistics also give voxel count, intensity std/min/max, centroid and bounding box (voxels).",
        rich_help_panel=STATISTICS)] = False,
    no_derived_masks: Annotated[bool, typer.Option(
        "--no-derived-masks", "-ndm", help="No masks derived from the classes (the body task's body and skin).")
    ] = False,
    skip_saving: Annotated[bool, typer.Option(
        "--skip-saving", "-ss", help="Write no masks, only statistics, preview and report.")] = False,
    nr_thr_resamp: Annotated[int | None, typer.Option(
        "--nr-thr-resamp", "-nr", metavar="N", min=1,
        help="Accepted as TotalSegmentator takes it; its threads resample the volumes of a 4D image, and a 3D scan is "
             "one (here too).")] = None,
    nr_thr_saving: Annotated[int | None, typer.Option(
        "--nr-thr-saving", "-ns", metavar="N", help="Masks written at a time (default: one per CPU).")] = None,
    report: Annotated[Path | None, typer.Option(
        "--report", "-rp", metavar="PATH",
        help="Write a JSON record of the run: versions, models, options, classes, time, files written ('-': to "
             "standard output, the messages then to standard error).")] = None,
    preview: Annotated[bool, typer.Option(
        "--preview", "-p", help="Write preview_TASK.png beside the masks (as statistics.json).")] = False,
    save_probabilities: Annotated[Path | None, typer.Option(
        "--save-probabilities", "-sp", metavar="PATH",
        help="Also save the models' class probabilities on their grid to PATH (.npz, nnU-Net's layout, a .json "
             "beside it names the channels and places the grid; several models: PATH_partN.npz).")] = None,
    remove_small_blobs: Annotated[float | None, typer.Option(
        "--remove-small-blobs", "-rmb", metavar="[MM3]",
        help="Remove each class's connected components of at most MM3 mm3 (200 if no size is given).",
        rich_help_panel=REGIONS)] = None,
    resampling_order: Annotated[int, typer.Option(
        "--resampling-order", "-ro", min=0, max=5, metavar="0-5",
        help="Spline order for resampling the scan to the spacing of TotalSegmentator's weights (1: linear; 3: "
             "smoother, slower).", rich_help_panel=MODELS)] = 1,
    force_split: Annotated[bool, typer.Option(
        "--force-split", "-fs", help="Predict the scan in three overlapping slabs along z, for less memory (large "
                                     "scans only).", rich_help_panel=MODELS)] = False,
    higher_order_resampling: Annotated[bool, typer.Option(
        "--higher-order-resampling", "--high-order-resampling", "-ho",
        help="Bring the scan to the models' spacing as nnU-Net does (3rd-order splines) and their logits back "
             "(smoother masks, slower), instead of TotalSegmentator's linear zoom and nearest labels; -ro then has no "
             "effect.", rich_help_panel=MODELS)] = False,
    no_tta: Annotated[bool, typer.Option("--no-tta", help="No test-time augmentation (mirroring, and a model's "
                                         "shifts).", rich_help_panel=MODELS)] = False,
    precision: Annotated[Precision | None, typer.Option(help="Network precision (default: the model's).",
        rich_help_panel=MODELS)] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars or messages.")] = False,
    verbose: Annotated[bool, typer.Option(
        "--verbose", "-v", help="Also print each step (models loaded, resampling, region found, each model's "
                                "prediction, writing) with its time.")] = False,
    version: Annotated[bool, typer.Option("--version", callback=_show_version, is_eager=True,
                                          help="Print segtool's version and exit.")] = False,
    list_tasks: Annotated[bool, typer.Option("--list-tasks", "-lt", callback=_list_tasks, is_eager=True,
                                             help="List the tasks and exit (as 'segtool tasks').")] = False,
    list_classes: Annotated[str | None, typer.Option(
        "--list-classes", "-lc", metavar="[TASK]", callback=_list_classes, is_eager=True,
        help="List the classes of TASK (default: total) and exit (as 'segtool classes TASK').")] = None,
) -> None:
    """Segment INPUT into OUTPUT (run without a sub-command)."""
    if ctx.invoked_subcommand is not None:
        return
    if input_path is None and output is None:
        typer.echo(ctx.get_help())
        raise typer.Exit(0)
    if input_path is None or output is None:
        print_error(f"missing {'-i INPUT' if input_path is None else '-o OUTPUT'}; see 'segtool --help'")
        raise typer.Exit(USAGE_ERROR)
    from segtool.cli.segment import run_segment
    from segtool.derived_masks import derived_for
    from segtool.options import SegmentOptions
    from segtool.registry import Mode
    from segtool.run import OutputRequest, requested_types, side_file_path
    from segtool.statistics import StatisticsOptions

    options = SegmentOptions(
        task=task, mode=Mode.of_flags(fast, fastest), device=device, tta=False if no_tta else None,
        precision=precision.value if precision else None, roi_subset=(*(roi_subset or ()), *(roi_subset_robust or ())),
        robust_crop=robust_crop or bool(roi_subset_robust), body_seg=body_seg, remove_small_blobs=remove_small_blobs,
        save_lowres=save_lowres, resampling_order=resampling_order, v1_order=v1_order, force_split=force_split,
        higher_order_resampling=higher_order_resampling, crop_path=crop_path, model_size=model_size)
    request = OutputRequest(
        ml=ml, output_types=requested_types([t.value for t in output_type or [OutputType.NIFTI]], output, ml=ml),
        preview=preview, skip_saving=skip_saving, saving_threads=nr_thr_saving,
        derived_masks=derived_for(task, skip=no_derived_masks),
        statistics=StatisticsOptions.requested(statistics is not None, stats_include_incomplete,
                                               stats_aggregation.value, statistics_extra),
        statistics_file=side_file_path(statistics, "statistics") if statistics else None,
        probabilities_file=save_probabilities)
    code = run_segment(input_path, output, options, request, report=report, quiet=quiet, verbose=verbose)
    raise typer.Exit(code)


app.command("tasks")(tasks.tasks)
app.command("classes")(tasks.classes)
app.command("download")(download.download)
app.command("combine")(combine.combine)
app.command("crop-to-body")(crop.crop_to_body)
app.command("info")(info.info)
app.add_typer(weights.app, name="weights")


def main() -> None:
    """Entry point of the ``segtool`` console script."""
    app()
