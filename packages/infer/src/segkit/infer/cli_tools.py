"""Small console scripts: ``segkit-ensemble``, ``segkit-postprocess``, ``segkit-export``, ``segkit-import``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from segkit.infer.cli_predict import NnunetWorkers
from segkit.infer.errors import InferError
from segkit.io.console import App
from segkit.io.errors import SegkitError

ensemble_app = App(user_errors=(SegkitError,), help="Average saved probabilities of several predictions.")
postprocess_app = App(user_errors=(SegkitError,), help="Connected-component postprocessing.")
export_app = App(user_errors=(SegkitError,), help="Zip a segkit model folder.")
find_best_app = App(user_errors=(SegkitError,), help="Pick the best configuration or ensemble on cross-validation.")
import_app = App(user_errors=(SegkitError, "segkit.nets.errors.NetsError"),
                 help="Install a model zip or convert an nnU-Net result folder.")


@ensemble_app.command()
def ensemble(
    output: Annotated[Path, typer.Option("-o", "--output", help="Output folder.")],
    folders: Annotated[list[Path] | None, typer.Argument(help="Prediction folders with CASE.npz probabilities.",
                                                         show_default=False)] = None,
    inputs: Annotated[list[Path] | None, typer.Option("-i", "--input", help="The prediction folders, as "
                                                      "nnUNetv2_ensemble takes them (-i A B).")] = None,
    save_probabilities: Annotated[bool, typer.Option("--save-probabilities", "--save_npz", help="Also write the "
                                                     "averaged probabilities (CASE.npz).")] = False,
    workers: NnunetWorkers = None,
) -> None:
    """Average the probabilities of each case over FOLDERS (all must hold the same cases); write its label map."""
    from segkit.infer.ensemble import ensemble_folders

    given = [*(folders or []), *(inputs or [])]
    if not given:
        raise InferError("give the prediction folders to average, as arguments or after -i")
    ensemble_folders(given, output, save_probabilities_too=save_probabilities)


@postprocess_app.command()
def determine(
    pred_dir: Annotated[Path, typer.Argument(help="Cross-validation predictions.")],
    ref_dir: Annotated[Path, typer.Argument(help="Reference label maps (same names).")],
    output: Annotated[Path, typer.Option("-o", "--output", help="postprocessing.json to write.")],
    labels: Annotated[list[int] | None, typer.Option("-l", "--labels", help="Labels (default: all found).")] = None,
    dataset_json: Annotated[Path | None, typer.Option("--dataset-json", help="Take the labels (or regions) and "
                                                     "the ignore label from this dataset.json.")] = None,
) -> None:
    """Decide which largest-component operations raise the mean Dice; write them as JSON."""
    import numpy as np

    from segkit.infer.evaluate import EvaluateOptions
    from segkit.infer.postprocessing import determine_postprocessing, label_pairs
    from segkit.io.atomic import writable_json_file

    writable_json_file(output)  # the labels, and where the result goes, are checked before any image is read
    options = (EvaluateOptions.from_dataset_json(dataset_json) if dataset_json is not None
               else EvaluateOptions(labels=labels or None))
    labels, ignore = options.labels, options.ignore_label
    pairs = label_pairs(pred_dir, ref_dir)
    if not labels:
        labels = sorted({int(v) for p, r in pairs for v in np.union1d(np.unique(p), np.unique(r)) if 0 < v != ignore})
    plan = determine_postprocessing(pairs, labels, ignore_label=ignore)
    plan.save(output)
    typer.echo(f"foreground: {plan.foreground}, classes: {list(plan.classes)}, "
               f"Dice {plan.dice_before:.4f} -> {plan.dice_after:.4f}")


@postprocess_app.command()
def apply(
    input_dir: Annotated[Path, typer.Argument(help="Predictions to postprocess.")],
    output_dir: Annotated[Path, typer.Argument(help="Output folder.")],
    plan_file: Annotated[Path, typer.Option("-p", "--plan", help="postprocessing.json.")],
) -> None:
    """Apply a postprocessing JSON to every label map in INPUT_DIR."""
    from segkit.infer.cases import check_output_folder, image_files
    from segkit.infer.errors import InferError
    from segkit.infer.evaluate import read_label_map
    from segkit.infer.postprocessing import PostprocessingPlan, apply_postprocessing
    from segkit.io import write_image
    from segkit.io.atomic import output_folder

    check_output_folder(output_dir, [input_dir])
    plan = PostprocessingPlan.load(plan_file)
    files = image_files(input_dir)
    if not files:
        raise InferError(f"no label maps in {input_dir}")
    with output_folder(output_dir) as out:
        for path in files:
            image = read_label_map(path)
            write_image(image.with_array(apply_postprocessing(image.array, plan)), out / path.name, label=True)


@export_app.command()
def export(
    model: Annotated[Path, typer.Argument(help="segkit model folder.")],
    output: Annotated[Path, typer.Argument(help="Zip file to write.")],
    half: Annotated[bool, typer.Option("--half", help="Store weights as float16 (half the size).")] = False,
) -> None:
    """Zip a model folder (model.json, plans.json, dataset.json, fold weights)."""
    from segkit.infer.archive import export_model_folder
    from segkit.io.atomic import writable_folder

    writable_folder(output.parent)
    export_model_folder(model, output, half=half)


@import_app.command(name="import")
def import_(
    source: Annotated[Path, typer.Argument(help="Model zip, or an nnU-Net v2 result folder to convert.")],
    target: Annotated[Path, typer.Argument(help="Folder to install into (zip) or the new model folder (nnU-Net).")],
    folds: Annotated[list[str] | None, typer.Option("-f", "--folds", help="nnU-Net folds to convert.")] = None,
) -> None:
    """Install a model zip into TARGET/<name>, or convert an nnU-Net result folder into TARGET."""
    from segkit.infer.archive import import_model_folder
    from segkit.infer.cli_predict import parse_folds
    from segkit.infer.convert import convert_nnunet_folder

    path = convert_nnunet_folder(source, target, folds=parse_folds(folds)) if source.is_dir() \
        else import_model_folder(source, target)
    typer.echo(str(path))


@find_best_app.command()
def find_best(
    reference: Annotated[Path, typer.Argument(help="Reference label maps.")],
    candidates: Annotated[list[str], typer.Argument(help="NAME=FOLDER of cross-validation predictions.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="inference_instructions.json to write.")],
    no_ensembles: Annotated[bool, typer.Option("--no-ensembles", help="Rank the candidates alone, not the "
                                               "ensembles of their pairs.")] = False,
    dataset_json: Annotated[Path | None, typer.Option("--dataset-json", help="Score the labels (or regions) of "
                                                     "this dataset.json.")] = None,
) -> None:
    """Rank configurations (and pair ensembles) by mean foreground Dice; write how to run the best."""
    from segkit.infer.errors import InferError
    from segkit.infer.evaluate import EvaluateOptions
    from segkit.infer.find_best import find_best as rank
    from segkit.infer.find_best import predict_arguments_of, write_instructions
    from segkit.io.atomic import writable_json_file

    writable_json_file(output)  # before the scoring, which takes a while
    if output.name == "postprocessing.json":  # written beside the instructions
        raise InferError(f"{output}: the winner's postprocessing.json goes beside the instructions; name them "
                         "otherwise (inference_instructions.json)")
    parsed = {}
    for item in candidates:
        name, sep, folder = item.partition("=")
        if not sep or not name or not folder:
            raise InferError(f"candidate {item!r} must be NAME=FOLDER")
        if name in parsed:
            raise InferError(f"candidate name {name!r} is given twice")
        if not Path(folder).is_dir():
            raise InferError(f"candidate {name!r}: {folder} is not a folder of predictions")
        parsed[name] = folder
    options = None if dataset_json is None else EvaluateOptions.from_dataset_json(dataset_json)
    result = rank(parsed, reference, options=options, try_ensembles=not no_ensembles)
    arguments = {name: predict_arguments_of(folder) for name, folder in parsed.items()}
    write_instructions(result, output, predict_arguments=arguments)
    for entry in result["ranking"]:
        typer.echo(f"{entry['foreground_dice']:.4f}  {entry['name']}")


def find_best_main() -> None:
    """Console-script entry point."""
    find_best_app()


def ensemble_main() -> None:
    """Console-script entry point."""
    ensemble_app()


def postprocess_main() -> None:
    """Console-script entry point."""
    postprocess_app()


def export_main() -> None:
    """Console-script entry point."""
    export_app()


def import_main() -> None:
    """Console-script entry point."""
    import_app()
