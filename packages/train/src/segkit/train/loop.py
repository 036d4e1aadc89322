"""The training loop: epochs of `train_step`, `validation_step`, and the `on_epoch_*` hooks.

Everything the loop needs is built elsewhere (`segkit.train.setup`) and handed over as `TrainParts`;
the loop owns only the running state (epoch, EMA pseudo Dice, history), which checkpoints save and restore.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from segkit.train.augment import Augmenter
from segkit.train.checkpoint import load_newest, save_checkpoint
from segkit.train.config import TrainConfig
from segkit.train.data.batches import PatchBatches, iterate_batches
from segkit.train.errors import NonFiniteLossError, ResumeError
from segkit.train.losses import SegmentationLoss
from segkit.train.precision import Autocast
from segkit.train.progress import append_log, plot_progress, rewrite_log
from segkit.train.schedules import learning_rate, set_learning_rate

log = logging.getLogger(__name__)


@dataclass
class TrainParts:
    """The injected parts of a run (see `segkit.train.setup.build_parts`)."""

    config: TrainConfig
    model: nn.Module
    loss: SegmentationLoss
    optimizer: torch.optim.Optimizer
    train_batches: PatchBatches
    val_batches: PatchBatches | None
    device: torch.device
    folder: Path
    autocast: Autocast
    workers: int = 0
    device_augmenter: Augmenter | None = None
    regions: bool = False
    is_main: bool = True
    reduce_mean: Callable[[torch.Tensor], torch.Tensor] = field(default=lambda t: t)
    reduce_sum: Callable[[torch.Tensor], torch.Tensor] = field(default=lambda t: t)
    micro_batch: int | None = None
    memory_format: torch.memory_format = torch.contiguous_format


class Trainer:
    """Run epochs over `TrainParts`; `fit` resumes from `start_epoch` (set by `resume`)."""

    def __init__(self, parts: TrainParts) -> None:
        self.parts = parts
        self.config = parts.config
        self.epoch = 0
        self.ema_dice: float | None = None
        self.history: list[dict] = []
        self.scaler = torch.amp.GradScaler("cuda") if parts.autocast.needs_scaler else None
        self.aug_gen = torch.Generator().manual_seed(parts.config.seed)

    def fit(self, *, stop_after: int | None = None, on_epoch: Callable[[dict], None] | None = None) -> None:
        """Train from `self.epoch` to ``config.epochs`` (or for `stop_after` epochs); checkpoint every N epochs.

        Stopping early (`stop_after`) writes a checkpoint, so ``resume`` continues exactly there.
        """
        cfg, p = self.config, self.parts
        end = cfg.epochs if stop_after is None else min(cfg.epochs, self.epoch + stop_after)
        remaining = end - self.epoch
        if remaining <= 0:
            return
        train_iter = iterate_batches(p.train_batches, self.epoch * cfg.iters_per_epoch,
                                     remaining * cfg.iters_per_epoch, workers=p.workers)
        val_iter = None
        if p.val_batches is not None and cfg.val_iters_per_epoch:
            val_iter = iterate_batches(p.val_batches, self.epoch * cfg.val_iters_per_epoch,
                                       remaining * cfg.val_iters_per_epoch, workers=min(p.workers, 1))
        for epoch in range(self.epoch, end):
            start = time.perf_counter()
            self.on_epoch_start(epoch)
            losses, waited = [], 0.0
            for i in range(cfg.iters_per_epoch):
                asked = time.perf_counter()
                batch = next(train_iter)
                waited += time.perf_counter() - asked
                losses.append(self.train_step(batch, epoch, i))
            val = [self.validation_step(next(val_iter)) for _ in range(cfg.val_iters_per_epoch)] if val_iter else []
            record = self.on_epoch_end(epoch, losses, val, time.perf_counter() - start, data_wait_s=waited)
            if on_epoch is not None:
                on_epoch(record)
        if end < cfg.epochs and p.is_main and end % cfg.checkpoint_every:
            save_checkpoint(p.folder, self.state_dict())

    def on_epoch_start(self, epoch: int) -> None:
        """Set the epoch's learning rate and training mode."""
        set_learning_rate(self.parts.optimizer, learning_rate(self.config, epoch))
        self.parts.model.train()

    def _to_device(self, batch: dict[str, torch.Tensor], augment: bool) -> tuple[torch.Tensor, torch.Tensor]:
        p = self.parts
        image = batch["image"].to(p.device, non_blocking=True).contiguous(memory_format=p.memory_format)
        seg = batch["seg"].to(p.device, non_blocking=True).long()
        if augment and p.device_augmenter is not None:
            image, seg = p.device_augmenter(image, seg, self.aug_gen)
        return image, seg

    def _micro_batches(self, image: torch.Tensor, seg: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """(image, seg) slices of ``parts.micro_batch`` samples (the whole batch when it is None)."""
        size = self.parts.micro_batch or len(image)
        return list(zip(image.split(size), seg.split(size), strict=True))

    def train_step(self, batch: dict[str, torch.Tensor], epoch: int, iteration: int) -> float:
        """One optimizer step on a batch (in micro-batches, gradients accumulated); returns the loss.

        The loss is averaged over ranks. Raises:
            NonFiniteLossError: the loss is NaN or infinite (nothing is stepped or saved).
        """
        p = self.parts
        image, seg = self._to_device(batch, augment=True)
        p.optimizer.zero_grad(set_to_none=True)
        slices = self._micro_batches(image, seg)
        total = torch.zeros((), device=image.device)
        for k, (image_slice, seg_slice) in enumerate(slices):
            sync = k == len(slices) - 1 or not hasattr(p.model, "no_sync")
            with contextlib.nullcontext() if sync else p.model.no_sync():
                with p.autocast.context():
                    outputs = p.model(image_slice)
                loss = p.loss(outputs, seg_slice) * (len(image_slice) / len(image))
                (self.scaler.scale(loss) if self.scaler is not None else loss).backward()
            total += loss.detach()
        value = float(p.reduce_mean(total))
        if not math.isfinite(value):
            kept = f"epoch {self.epoch}" if self.history else "none yet"
            raise NonFiniteLossError(f"training loss is {value} at epoch {epoch} iteration {iteration}; "
                                     f"stopped, last good checkpoint kept ({kept}) in {p.folder}")
        if self.scaler is not None:
            self.scaler.unscale_(p.optimizer)
            torch.nn.utils.clip_grad_norm_(p.model.parameters(), self.config.grad_clip)
            self.scaler.step(p.optimizer)
            self.scaler.update()
        else:
            torch.nn.utils.clip_grad_norm_(p.model.parameters(), self.config.grad_clip)
            p.optimizer.step()
        return value

    @torch.no_grad()
    def validation_step(self, batch: dict[str, torch.Tensor]) -> tuple[float, torch.Tensor]:
        """Loss and (3, classes) true/false positive/negative counts of the full-resolution output.

        Computed in the training step's micro-batches: the same sums, in the layout and memory the step uses.
        """
        p = self.parts
        p.model.eval()
        image, seg = self._to_device(batch, augment=False)
        loss, counts = 0.0, None
        for image_slice, seg_slice in self._micro_batches(image, seg):
            with p.autocast.context():
                outputs = p.model(image_slice)
            loss += float(p.loss(outputs, seg_slice)) * len(image_slice) / len(image)
            logits = (outputs[0] if isinstance(outputs, (list, tuple)) else outputs).float()
            sliced = pseudo_dice_counts(logits, seg_slice, regions=p.regions, loss=p.loss)
            counts = sliced if counts is None else counts + sliced
        p.model.train()
        return loss, counts

    def on_epoch_end(self, epoch: int, losses: list[float], val: list[tuple[float, torch.Tensor]],
                     seconds: float, *, data_wait_s: float = 0.0) -> dict:
        """Log the epoch (JSON line, progress.png), update the EMA Dice, checkpoint when due."""
        p, cfg = self.parts, self.config
        record = {"epoch": epoch, "train_loss": sum(losses) / len(losses), "lr": learning_rate(cfg, epoch),
                  "epoch_time_s": seconds, "data_wait_s": data_wait_s}
        if val:
            counts = p.reduce_sum(torch.stack([c for _, c in val]).sum(0)).cpu()
            tp, fp, fn = counts
            dice = (2 * tp / (2 * tp + fp + fn).clamp_min(1e-8)).tolist()
            mean = sum(dice) / len(dice)
            alpha = cfg.ema_alpha
            self.ema_dice = mean if self.ema_dice is None else alpha * self.ema_dice + (1 - alpha) * mean
            val_loss = float(p.reduce_mean(torch.tensor(sum(v for v, _ in val) / len(val), device=p.device)))
            record.update(val_loss=val_loss, pseudo_dice=dice, mean_pseudo_dice=mean, ema_pseudo_dice=self.ema_dice)
        self.history.append(record)
        self.epoch = epoch + 1
        log.info("%s", epoch_summary(record, cfg.epochs))
        if p.is_main:
            append_log(p.folder, record)
            plot_progress(p.folder, self.history)
            if self.epoch % cfg.checkpoint_every == 0 or self.epoch == cfg.epochs:
                save_checkpoint(p.folder, self.state_dict())
        return record

    def state_dict(self) -> dict:
        """Everything needed to continue: weights, optimizer, epoch, EMA, history, RNG states, config."""
        model = getattr(self.parts.model, "module", self.parts.model)
        state = {"model": model.state_dict(), "optimizer": self.parts.optimizer.state_dict(), "epoch": self.epoch,
                 "ema_dice": self.ema_dice, "history": self.history, "config": self.config.to_dict(),
                 "torch_rng": torch.get_rng_state(), "aug_rng": self.aug_gen.get_state()}
        if self.scaler is not None:
            state["scaler"] = self.scaler.state_dict()
        return state

    def resume(self) -> None:
        """Load the newest valid checkpoint of the fold folder and continue from its epoch.

        Raises:
            ResumeError: no valid checkpoint, or one written for another trainer or seed.
        """
        state = load_newest(self.parts.folder)
        if state["config"].get("name") != self.config.name:
            raise ResumeError(f"{self.parts.folder}: checkpoint is from trainer {state['config'].get('name')!r}, "
                              f"not {self.config.name!r}")
        seed = state["config"].get("seed", 0)
        if seed != self.config.seed:
            raise ResumeError(f"{self.parts.folder}: checkpoint is from a run with seed {seed}, not "
                              f"{self.config.seed}; resume it with --seed {seed}")
        model = getattr(self.parts.model, "module", self.parts.model)
        model.load_state_dict(state["model"])
        self.parts.optimizer.load_state_dict(state["optimizer"])
        self.epoch, self.ema_dice, self.history = int(state["epoch"]), state["ema_dice"], list(state["history"])
        torch.set_rng_state(state["torch_rng"])
        self.aug_gen.set_state(state["aug_rng"])
        if self.scaler is not None and "scaler" in state:
            self.scaler.load_state_dict(state["scaler"])
        if self.parts.is_main:
            rewrite_log(self.parts.folder, self.history)
        log.info("resumed %s at epoch %d", self.parts.folder, self.epoch)


def epoch_summary(record: dict, epochs: int) -> str:
    """One log line for an epoch record, e.g. ``epoch 3/1000: train loss 0.4713, val loss 0.4655, ...``."""
    parts = [f"epoch {record['epoch']}/{epochs}: train loss {record['train_loss']:.4f}"]
    if "val_loss" in record:
        dice = ", ".join(f"{d:.4f}" for d in record["pseudo_dice"])
        parts.append(f"val loss {record['val_loss']:.4f}, pseudo Dice [{dice}] (EMA {record['ema_pseudo_dice']:.4f})")
    parts.append(f"lr {record['lr']:.3g}, {record['epoch_time_s']:.1f} s")
    return ", ".join(parts)


def pseudo_dice_counts(logits: torch.Tensor, seg: torch.Tensor, *, regions: bool,
                       loss: SegmentationLoss) -> torch.Tensor:
    """(3, K) tp/fp/fn of the foreground classes (or regions) over a batch, ignored voxels left out."""
    ignore = getattr(loss, "ignore_label", None)
    mask = (seg != ignore) if ignore is not None else torch.ones_like(seg, dtype=torch.bool)
    if regions:
        pred = logits.sigmoid() > 0.5
        truth = torch.cat([torch.isin(seg, torch.tensor(r, device=seg.device)) for r in loss.regions], 1)
    else:
        classes = torch.arange(1, logits.shape[1], device=logits.device).view(1, -1, *([1] * (logits.ndim - 2)))
        pred = logits.max(1, keepdim=True).indices == classes  # argmax's indices; argmax took 10-30x longer on the CPU
        truth = seg == classes
    pred, truth = pred & mask, truth & mask
    dims = [0, *range(2, logits.ndim)]
    tp = (pred & truth).sum(dims)
    fp = (pred & ~truth).sum(dims)
    fn = (~pred & truth).sum(dims)
    return torch.stack([tp, fp, fn]).double().cpu()
