"""`train`: one call from a preprocessed dataset to a model folder (what ``segkit-train`` runs).

Model folder written (rank 0 only)::

    MODEL_DIR/plans.json, dataset.json, model.json, splits_final.json
    MODEL_DIR/fold_K/weights.safetensors       final weights (segkit.nets format)
    MODEL_DIR/fold_K/train_config.json         the TrainConfig used
    MODEL_DIR/fold_K/progress.jsonl, progress.png, checkpoint_latest.pt, checkpoint_previous.pt
    MODEL_DIR/fold_K/validation/summary.json   per-case Dice of the fold's validation cases
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

from segkit.io.model_folder import WEIGHTS_FILE, fold_dir
from segkit.nets import cudnn_autotuning, load_weights, save_weights
from segkit.train.checkpoint import has_checkpoint, load_newest
from segkit.train.config import TrainConfig
from segkit.train.data.batches import default_workers
from segkit.train.distributed import DistContext, all_reduce_mean, all_reduce_sum, barrier, process_group, wrap_model
from segkit.train.errors import ResumeError, TrainConfigError
from segkit.train.final_validation import validate_cases
from segkit.train.loop import Trainer, TrainParts
from segkit.train.micro_batches import micro_batch_size
from segkit.train.model_dir import check_model_folder, prepare_fold, record_fold
from segkit.train.precision import Autocast
from segkit.train.pretrained import load_pretrained
from segkit.train.registry import get_trainer
from segkit.train.setup import DataSetup, build_batches, build_model_and_optimizer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunOptions:
    """Options of one run that are not part of the trainer config (paths, device, overrides)."""

    output: Path | None = None
    trainer: str = "default"
    device: str = "auto"
    epochs: int | None = None
    iters_per_epoch: int | None = None
    val_iters_per_epoch: int | None = None
    seed: int | None = None
    resume: bool = False
    pretrained: Path | None = None
    val_only: bool = False
    save_probabilities: bool = False
    workers: int | None = None
    checkpoint_every: int | None = None
    stop_after_epochs: int | None = None
    dataset_json: Path | None = None
    results: Path | None = None  # nnU-Net's results root: see `default_output`

    def __post_init__(self) -> None:
        if self.workers is not None and self.workers < 0:
            raise TrainConfigError(f"workers: expected 0 (build batches in the main process) or more, found "
                                   f"{self.workers}")

    def config(self) -> TrainConfig:
        """The registered trainer config with this run's overrides applied."""
        config = get_trainer(self.trainer)
        overrides = {k: v for k, v in (("epochs", self.epochs), ("iters_per_epoch", self.iters_per_epoch),
                                       ("val_iters_per_epoch", self.val_iters_per_epoch),
                                       ("checkpoint_every", self.checkpoint_every), ("seed", self.seed))
                     if v is not None}
        return config.replace(**overrides) if overrides else config


def resolve_device(name: str, ctx: DistContext) -> torch.device:
    """``auto`` = CUDA if available; under torchrun each rank takes GPU ``LOCAL_RANK``."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name not in ("cpu", "cuda") and not (name.startswith("cuda:") and name[5:].isdigit()):
        raise TrainConfigError(f"unknown device {name!r}; use cpu, cuda, cuda:N or auto")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise TrainConfigError(f"device {name!r} requested but CUDA is not available")
    if name == "cuda" and ctx.distributed:
        name = f"cuda:{ctx.local_rank}"
    return torch.device(name)


def default_output(preprocessed: Path, config: TrainConfig, configuration: str, *, plans_name: str,
                   results: Path | None = None) -> Path:
    """``<results>/<dataset folder>/<trainer>__<plans>__<configuration>`` as nnU-Net places a result folder (where
    `segkit-predict -d` finds it), or without ``results`` ``<preprocessed>/../models/<dataset
    folder>__<trainer>__<configuration>``."""
    preprocessed = Path(os.path.abspath(preprocessed))  # normalized, links kept: their names are the datasets'
    if results is not None:
        return Path(results) / preprocessed.name / f"{config.name}__{plans_name}__{configuration}"
    return preprocessed.parent / "models" / f"{preprocessed.name}__{config.name}__{configuration}"


def train(preprocessed: Path, configuration: str, fold: int | str, options: RunOptions | None = None) -> Path:
    """Train one fold and write/extend the model folder; return the model folder.

    Raises:
        SegkitError subclasses: bad input (not planned, fold out of range, unknown trainer, bad pretrained
            weights, NaN loss, checkpoints that cannot be read for a resume).
    """
    options = options or RunOptions()
    config = options.config()
    ctx = DistContext.from_env()
    device = resolve_device(options.device, ctx)
    data = DataSetup.load(Path(preprocessed), configuration, fold, config, dataset_json=options.dataset_json)
    output = Path(options.output) if options.output else default_output(
        Path(preprocessed), config, configuration, plans_name=data.plans.plans_name, results=options.results)
    folder = fold_dir(output, fold)
    resume = options.resume and _can_resume(folder)
    if ctx.is_main:
        check_model_folder(output, data, config)
    with process_group(ctx, device), cudnn_autotuning(device):
        spec, model, loss, optimizer = build_model_and_optimizer(data, config, device)
        autocast = Autocast.choose(config.precision, device)
        memory_format = autocast.memory_format(spec.dims)
        model.to(memory_format=memory_format)
        if options.pretrained is not None and not resume:
            load_pretrained(model, options.pretrained)
        on_device = device.type == "cuda"
        train_batches, val_batches, augmenter = build_batches(data, config, rank=ctx.rank, world=ctx.world,
                                                              augment_on_device=on_device)
        workers = default_workers(device) if options.workers is None else options.workers
        parts = TrainParts(config=config, model=wrap_model(model, ctx, device), loss=loss, optimizer=optimizer,
                           train_batches=train_batches, val_batches=val_batches, device=device, folder=folder,
                           autocast=autocast, memory_format=memory_format, workers=workers,
                           device_augmenter=augmenter if on_device else None, regions=data.regions is not None,
                           is_main=ctx.is_main, reduce_mean=all_reduce_mean, reduce_sum=all_reduce_sum,
                           micro_batch=micro_batch_size(config, batch_size=data.configuration.batch_size,
                                                        first_stage_features=spec.features_per_stage[0],
                                                        patch_size=data.configuration.patch_size, device=device,
                                                        batch_dice=data.configuration.batch_dice,
                                                        channels_last=memory_format is torch.channels_last_3d))
        trainer = Trainer(parts)
        if options.val_only:
            _load_for_validation(model, folder)
        elif resume:
            trainer.resume()  # reads the checkpoint before anything is written
        if ctx.is_main:
            prepare_fold(output, fold, data, fresh=not (options.val_only or resume))
        barrier()
        with _log_file(folder if ctx.is_main else None):
            doing = "validating" if options.val_only else f"resuming at epoch {trainer.epoch}" if resume else "training"
            log.info("%s fold %s of %s with %s: %d training / %d validation cases, %s%s, batch %d, patch %s, %d x %d "
                     "iterations", doing, fold, configuration, config.name,
                     len(data.train_ids), len(data.val_ids), device, f" ({autocast.dtype})" if autocast.dtype else "",
                     data.configuration.batch_size, "x".join(map(str, data.configuration.patch_size)), config.epochs,
                     config.iters_per_epoch)
            if not options.val_only:
                if config.compile:
                    parts.model = torch.compile(parts.model)
                trainer.fit(stop_after=options.stop_after_epochs)
            finished = options.val_only or trainer.epoch >= config.epochs
            if ctx.is_main:
                save_weights(model, spec, folder / WEIGHTS_FILE)
                record_fold(output, data, config, fold)
                if data.val_ids and finished:
                    validate_cases(model, data, folder / "validation", device=device, autocast=parts.autocast,
                                   save_probabilities=options.save_probabilities)
        barrier()
    return output


@contextlib.contextmanager
def _log_file(folder: Path | None) -> Iterator[None]:
    """Copy segkit.train's log lines inside the block to ``folder/training_log_<time>.txt`` (nnU-Net keeps one per
    run in the fold folder too); None: no file (ranks other than the main one)."""
    if folder is None:
        yield
        return
    handler = logging.FileHandler(folder / f"training_log_{time.strftime('%Y_%m_%d_%H_%M_%S')}.txt")
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    handler.setLevel(logging.INFO)
    logger = logging.getLogger("segkit.train")
    previous = logger.level
    logger.setLevel(min(previous or logging.INFO, logging.INFO))
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)
        handler.close()


def _can_resume(folder: Path) -> bool:
    """Whether ``--resume`` continues a run: a fold without any checkpoint starts afresh, as nnU-Net's ``--c``
    does (a job resubmitted before its first checkpoint); unreadable checkpoints stay an error."""
    if has_checkpoint(folder):
        return True
    log.warning("%s has no checkpoint to resume from; starting a new training", folder)
    return False


def _load_for_validation(model: torch.nn.Module, folder: Path) -> None:
    """Load the fold's final weights, else its newest checkpoint (for ``--val-only``).

    Raises:
        ResumeError: the fold has neither (it was never trained into this model folder).
    """
    if (folder / WEIGHTS_FILE).is_file():
        model.load_state_dict(load_weights(folder / WEIGHTS_FILE).state_dict)
        return
    try:
        state = load_newest(folder)
    except ResumeError as err:
        raise ResumeError(f"{folder}: nothing to validate (no {WEIGHTS_FILE} and no valid checkpoint); "
                          f"train the fold first or pass its model folder with -o") from err
    model.load_state_dict(state["model"])
