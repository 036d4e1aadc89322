"""``segkit-train PREPROCESSED_DIR CONFIG FOLD``: train one fold into a model folder.

Multi-GPU / multi-node: ``torchrun --nproc_per_node N -m segkit.train.cli PREPROCESSED_DIR CONFIG FOLD``.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Annotated

import typer

from segkit.io.console import App
from segkit.io.errors import SegkitError

app = App(user_errors=(SegkitError, "segkit.nets.errors.NetsError"),
          help="Train a segkit model on a planned, preprocessed dataset.",
          no_args_is_help=True)


def parse_fold(value: str) -> int | str:
    """``0``..``N`` or ``all``."""
    if value == "all":
        return value
    if value.isdigit():
        return int(value)
    from segkit.train.errors import TrainDataError

    raise TrainDataError(f"fold must be an integer or 'all', got {value!r}")


@app.command()
def main(
    preprocessed: Annotated[Path, typer.Argument(help="Folder with plans.json, dataset.json and preprocessed cases; "
                                                 "or, as nnU-Net takes it, the dataset's number or name in "
                                                 "$nnUNet_preprocessed.")],
    configuration: Annotated[str, typer.Argument(help="Plans configuration, e.g. 3d_fullres.")],
    fold: Annotated[str, typer.Argument(help="Fold 0-4, or 'all'.")],
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Model folder to write.")] = None,
    trainer: Annotated[str, typer.Option(
        "-tr", "--trainer", help="Registered trainer name or a .json file.")] = "default",
    device: Annotated[str, typer.Option(help="cpu, cuda, cuda:N or auto.")] = "auto",
    epochs: Annotated[int | None, typer.Option(help="Override the trainer's epochs.")] = None,
    iters_per_epoch: Annotated[int | None, typer.Option(help="Override iterations per epoch.")] = None,
    val_iters_per_epoch: Annotated[int | None, typer.Option(help="Override pseudo-Dice batches per epoch.")] = None,
    seed: Annotated[int | None, typer.Option(help="Override the trainer's seed (initialization, sampling, "
                                             "augmentation): the same recipe trained again, to ensemble.")] = None,
    resume: Annotated[bool, typer.Option(
        "--resume", "--c", help="Continue from the newest valid checkpoint (nnU-Net's --c).")] = False,
    pretrained: Annotated[Path | None, typer.Option(
        "--pretrained", "--pretrained-weights", help="Initialise from this weights file (heads fresh): a fold's "
        "weights.safetensors or checkpoint_latest.pt, or nnU-Net's checkpoint_final.pth.")] = None,
    val_only: Annotated[bool, typer.Option(
        "--val-only", "--val", help="Only run the final validation (nnU-Net's --val).")] = False,
    save_probabilities: Annotated[bool, typer.Option(
        "--save-probabilities", "--npz", help="Keep each validation case's probabilities as CASE.npz on the "
        "preprocessed grid (float16, segkit's axis order); nnU-Net's files on the original images: segkit-crossval "
        "--save-probabilities.")] = False,
    workers: Annotated[int | None, typer.Option(
        min=0, help="Data worker processes (default: CPUs - 1; 0 for CPU training on 2 CPUs).")] = None,
    dataset_json: Annotated[Path | None, typer.Option(
        "--dataset-json", help="dataset.json (or the raw dataset folder) if PREPROCESSED has none.")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="Log warnings only.")] = False,
) -> None:
    """Train FOLD of CONFIGURATION on PREPROCESSED and write the model folder."""
    console = logging.StreamHandler()
    console.setLevel(logging.WARNING if quiet else logging.INFO)  # the console only: the fold's log keeps every line
    logging.basicConfig(level=logging.INFO, format="%(message)s", handlers=[console])
    from segkit.train.run import RunOptions, train

    preprocessed, results = _preprocessed_folder(preprocessed)
    options = RunOptions(output=output, results=results, trainer=trainer, device=device, epochs=epochs,
                         iters_per_epoch=iters_per_epoch, val_iters_per_epoch=val_iters_per_epoch, seed=seed,
                         resume=resume, pretrained=pretrained, val_only=val_only,
                         save_probabilities=save_probabilities, workers=workers, dataset_json=dataset_json)
    folder = train(preprocessed, configuration, parse_fold(fold), options)
    typer.echo(str(folder))


def _preprocessed_folder(preprocessed: Path) -> tuple[Path, Path | None]:
    """PREPROCESSED as it is, or (a dataset number or ``DatasetXXX_Name`` that is no path here, as ``nnUNetv2_train``
    takes it) its folder in ``$nnUNet_preprocessed``, with ``$nnUNet_results`` (if set) to hold the model folder."""
    name = str(preprocessed)
    if preprocessed.exists() or preprocessed.name != name or not (name.isdigit() or name.startswith("Dataset")):
        return preprocessed, None
    from segkit.io.nnunet_folders import PREPROCESSED, RESULTS, dataset_folder, nnunet_folder

    root = nnunet_folder(PREPROCESSED, looked_up="a dataset given by number or name",
                         instead="give its preprocessed folder")
    results = os.environ.get(RESULTS)
    return dataset_folder(root, name, kind="preprocessed"), Path(results) if results else None


if __name__ == "__main__":
    app()
