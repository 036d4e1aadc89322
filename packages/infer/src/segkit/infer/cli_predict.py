"""``segkit-predict``: predict an image or a folder of images with a model folder; ``segkit-crossval``: predict
each fold's validation cases with that fold's network and score them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from segkit.infer.errors import InferError
from segkit.io.console import App, info_to_stderr
from segkit.io.errors import SegkitError

app = App(user_errors=(SegkitError, "segkit.nets.errors.NetsError"),
          help="Predict label maps with a segkit or nnU-Net v2 model folder.")
crossval_app = App(user_errors=(SegkitError, "segkit.nets.errors.NetsError"),
                   help="Cross-validation on the raw images: each fold's network predicts its validation cases.")

Models = Annotated[list[Path], typer.Option("-m", "--model", help="segkit model folder or nnU-Net v2 result folder; "
                                           "repeat it for an ensemble of folders trained with the same plans.")]
Step = Annotated[float, typer.Option("--step", "-step_size", help="Sliding-window step as a fraction of the patch.")]
NoTTA = Annotated[bool, typer.Option("--no-tta", "--disable_tta", help="Disable mirroring test-time augmentation.")]
ShiftTTA = Annotated[int, typer.Option("--shift-tta", min=0, metavar="VOXELS", help=(
    "Translation test-time augmentation: also predict the image with VOXELS zero voxels padded before it, then "
    "after it, along each axis in turn (moving it by up to VOXELS), and average the predictions (at least 7x the "
    "tiles of a 3D model); 0: off."))]
Device = Annotated[str, typer.Option("--device", "-device", help="auto (the CUDA GPU where there is one, else the "
                                     "CPU), cpu, cuda, cuda:N or mps.")]
PrecisionOption = Annotated[str, typer.Option(help="auto, fp32, bf16 or fp16.")]
SaveProbabilities = Annotated[bool, typer.Option("--save-probabilities", "--save_probabilities",
                                                  help="Also write CASE.npz.")]
Resume = Annotated[bool, typer.Option("--continue", "--continue_prediction", help="Skip cases whose output exists.")]
Quiet = Annotated[bool, typer.Option("--quiet", "--disable_progress_bar", help="No progress bar.")]
#: help of nnUNetv2_predict's -npp/-nps, accepted so that its command lines run as they are
NNUNET_PROCESSES = ("nnUNetv2_predict's process count; segkit reads the next case and writes the last in a thread "
                    "each while the current one is predicted")
#: nnU-Net's -np (worker processes) of evaluate and ensemble, accepted so that their command lines run as they are
NnunetWorkers = Annotated[int | None, typer.Option("-np", hidden=True, help="nnU-Net's worker process count; segkit "
                                                   "works in one process")]


def parse_folds(folds: list[str] | None) -> tuple[int | str, ...] | None:
    """Parse ``-f 0,1`` / ``-f all`` values (``-f 0 1`` arrives as ``-f 0 -f 1``, see `segkit.io.console`)."""
    if not folds:
        return None
    out: list[int | str] = []
    for value in folds:
        for part in value.replace(",", " ").split():
            if part == "all":
                out.append("all")
            elif part.isdigit():
                out.append(int(part))
            else:
                raise InferError(f"fold {part!r} is neither a number nor 'all'")
    return tuple(out)


@app.command()
def predict(
    input: Annotated[Path, typer.Option("-i", "--input", help="Image file or folder of CASE_XXXX images.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Output folder (created).")],
    model: Annotated[list[Path] | None, typer.Option("-m", "--model", help="segkit model folder or nnU-Net v2 result "
                                                     "folder (or find one with -d and -c); repeat it for an ensemble "
                                                     "of folders trained with the same plans.")] = None,
    dataset: Annotated[str | None, typer.Option("-d", "--dataset", help="nnU-Net dataset number or name: its result "
                                                "folder is found under $nnUNet_results, as nnUNetv2_predict finds "
                                                "it.")] = None,
    configuration: Annotated[str | None, typer.Option("-c", "--configuration", help="With -d: the configuration "
                                                      "(3d_fullres, 2d...).")] = None,
    trainer: Annotated[str | None, typer.Option("-tr", "--trainer", help="With -d: the trainer (default: "
                                                "nnUNetTrainer).")] = None,
    plans: Annotated[str | None, typer.Option("-p", "--plans", help="With -d: the plans (default: nnUNetPlans).")
                     ] = None,
    folds: Annotated[list[str] | None, typer.Option("-f", "--folds", help="Folds to ensemble (default: every "
                                                    "numbered fold_K; fold_all only when named or alone).")] = None,
    step: Step = 0.5,
    no_tta: NoTTA = False,
    shift_tta: ShiftTTA = 0,
    device: Device = "auto",
    precision: PrecisionOption = "auto",
    batch_size: Annotated[int | None, typer.Option(help="Network inputs per forward pass (default: 4 on CUDA, "
                                                         "1 on the CPU).")] = None,
    checkpoint: Annotated[str, typer.Option("--checkpoint", "-chk", help="nnU-Net checkpoint file name.")] = (
        "checkpoint_final.pth"),
    save_probabilities: SaveProbabilities = False,
    fast_export: Annotated[bool, typer.Option("--fast-export", help="Argmax on the model grid, then nearest.")] = False,
    resume: Resume = False,
    threads: Annotated[int | None, typer.Option(min=1, help="CPU threads for torch (default: torch's).")] = None,
    quiet: Quiet = False,
    prev_stage: Annotated[Path | None, typer.Option(
        "--prev-stage", "-prev_stage_predictions", help="Cascade: folder of the previous stage's label maps.")] = None,
    timing: Annotated[Path | None, typer.Option(help="Write wall and forward-pass seconds to this JSON.")] = None,
    num_parts: Annotated[int, typer.Option(
        "--num-parts", "-num_parts", min=1,
        help="Split the cases into this many parts (one process per GPU, say), as nnUNetv2_predict does...")] = 1,
    part_id: Annotated[int, typer.Option(
        "--part-id", "-part_id", min=0,
        help="...and predict this part of them (0 to num-parts - 1): every num-parts-th case in name order.")] = 0,
    preprocessing_processes: Annotated[int | None, typer.Option("-npp", hidden=True, help=NNUNET_PROCESSES)] = None,
    export_processes: Annotated[int | None, typer.Option("-nps", hidden=True, help=NNUNET_PROCESSES)] = None,
    not_on_device: Annotated[bool, typer.Option("--not_on_device", hidden=True, help=(
        "nnUNetv2_predict's option to keep the results off the GPU; segkit moves them to the CPU by itself when GPU "
        "memory runs out"))] = False,
    verbose: Annotated[bool, typer.Option("--verbose", help="Log what is loaded and how (checkpoints, folds, "
                                          "precision) to standard error.")] = False,
) -> None:
    """Predict every case of INPUT and write CASE.nii.gz label maps (named as nnUNetv2_predict names them)."""
    import time

    began = time.perf_counter()
    with info_to_stderr(verbose):
        from segkit.infer.batch import BatchOptions, predict_folder
        from segkit.infer.cases import check_output_folder, find_input_cases
        from segkit.infer.predictor import PredictOptions, Predictor
        from segkit.infer.progress import case_progress
        from segkit.io.atomic import writable_json_file, write_json

        options = PredictOptions(step=step, tta=not no_tta, shift_tta=shift_tta, batch_size=batch_size,
                                 precision=precision, fast_export=fast_export, num_threads=threads)
        if not input.exists():
            raise InferError(f"input {input} does not exist")
        if part_id >= num_parts:
            raise InferError(f"--part-id must be below --num-parts ({num_parts}), got {part_id}")
        check_output_folder(output, [input])  # before loading the model
        if timing is not None:
            writable_json_file(timing)
        predictor = Predictor.from_model_folder(_model_folders(model, dataset, configuration, trainer, plans),
                                                folds=parse_folds(folds), device=device, checkpoint=checkpoint,
                                                options=options)
        cases = find_input_cases(input, num_channels=predictor.setup.in_channels)[part_id::num_parts]
        if not cases:
            if not quiet:
                typer.echo(f"part {part_id} of {num_parts} has no cases: nothing to predict", err=True)
            return
        skipped = []
        with case_progress(len(cases), quiet=quiet) as advance:
            def on_case(case, status: str) -> None:
                if status == "skipped":
                    skipped.append(case)
                advance(case, status)

            written = predict_folder(predictor, input, output, on_case=on_case,
                                     options=BatchOptions(save_probabilities=save_probabilities, skip_existing=resume,
                                                         previous_stage_dir=prev_stage,
                                                         case_ids=frozenset(case.identifier for case in cases)))
        if not quiet:
            kept = f"; {len(skipped)} already there, kept (--continue)" if skipped else ""
            typer.echo(f"{len(written)} case(s) written to {output}{kept}", err=True)
        if timing is not None:
            write_json({"cases": len(written), "wall_s": time.perf_counter() - began,
                        "forward_s": predictor.clock.seconds, "forward_calls": predictor.clock.calls}, timing,
                       indent=None)


def _model_folders(model: list[Path] | None, dataset: str | None, configuration: str | None, trainer: str | None,
                   plans: str | None) -> list[Path]:
    """The model folders given by ``-m``, or the one found by ``-d``/``-c``/``-tr``/``-p`` (`find_result_folder`)."""
    from segkit.infer.results_folder import PLANS, TRAINER, find_result_folder

    if (not model) == (dataset is None):
        raise InferError("give the model as -m MODEL_FOLDER or as -d DATASET -c CONFIGURATION, one of the two")
    if dataset is None:
        given = [flag for flag, value in (("-c", configuration), ("-tr", trainer), ("-p", plans)) if value is not None]
        if given:
            raise InferError(f"{'/'.join(given)}: these pick a result folder under -d DATASET, but -m {model[0]} "
                             "gives the folder itself; leave them out, or use -d instead of -m")
        return model
    if configuration is None:
        raise InferError("-d DATASET needs -c CONFIGURATION (3d_fullres, 2d, 3d_lowres...)")
    return [find_result_folder(dataset, configuration, trainer=trainer or TRAINER, plans=plans or PLANS)]


@crossval_app.command()
def crossval(
    model: Models,
    dataset: Annotated[Path, typer.Option("-d", "--dataset", help="Raw nnU-Net dataset folder (imagesTr, labelsTr).")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Folder for all folds' predictions (created).")],
    folds: Annotated[list[str] | None, typer.Option("-f", "--folds", help="Folds (default: every fold_K of the "
                                                    "model that the splits define).")] = None,
    splits: Annotated[Path | None, typer.Option(help="splits_final.json (default: the model folder's).")] = None,
    step: Step = 0.5,
    no_tta: NoTTA = False,
    shift_tta: ShiftTTA = 0,
    device: Device = "auto",
    precision: PrecisionOption = "auto",
    save_probabilities: SaveProbabilities = False,
    resume: Resume = False,
    quiet: Quiet = False,
) -> None:
    """Predict every fold's validation cases with that fold's network (of every model folder given, averaged);
    write OUTPUT/summary.json (all cases and per fold), ready for segkit-find-best and segkit-postprocess
    determine."""
    from segkit.infer.batch import BatchOptions
    from segkit.infer.cli_evaluate import print_summary
    from segkit.infer.crossval import crossval_cases, predict_crossval
    from segkit.infer.predictor import PredictOptions
    from segkit.infer.progress import case_progress

    chosen = parse_folds(folds)
    if chosen is not None and "all" in chosen:
        raise InferError("fold 'all' has no validation cases; name cross-validation folds by number")
    cases = crossval_cases(model, dataset, folds=chosen, splits_file=splits)
    options = PredictOptions(step=step, tta=not no_tta, shift_tta=shift_tta, precision=precision)
    batch = BatchOptions(save_probabilities=save_probabilities, skip_existing=resume)
    with case_progress(sum(len(ids) for ids in cases.values()), quiet=quiet) as advance:
        summary = predict_crossval(model, dataset, output, cases, device=device, options=options, batch=batch,
                                   on_case=advance)
    if quiet:
        return
    # the folder may hold other folds' cases from earlier runs: they count in the overall means
    print_summary(summary, f"cross-validation: {len(summary['metric_per_case'])} case(s) in {output} (this run: "
                           f"fold{'s' if len(cases) > 1 else ''} {', '.join(map(str, cases))})")
    for fold, entry in summary["folds"].items():
        dice = ", ".join(f"{label} {value:.4f}" for label, value in entry["Dice"].items() if value is not None)
        typer.echo(f"fold {fold} ({entry['cases']} cases) Dice: {dice}")


def main() -> None:
    """Console-script entry point."""
    app()


def crossval_main() -> None:
    """Console-script entry point."""
    crossval_app()
