"""Optimizers and learning-rate schedules built from a `TrainConfig` (stepped once per epoch)."""

from __future__ import annotations

import math

import torch

from segkit.train.config import OptimizerName, ScheduleName, TrainConfig


def poly_lr(initial: float, epoch: int, epochs: int, power: float = 0.9) -> float:
    """nnU-Net's polynomial decay: ``initial * (1 - epoch / epochs) ** power``."""
    return initial * (1 - epoch / epochs) ** power


def cosine_lr(initial: float, epoch: int, epochs: int) -> float:
    """Cosine annealing from `initial` to 0 over `epochs`."""
    return initial * 0.5 * (1 + math.cos(math.pi * epoch / epochs))


def learning_rate(config: TrainConfig, epoch: int) -> float:
    """Return the learning rate of `epoch` (0-based) under `config`'s schedule."""
    if config.schedule is ScheduleName.POLY:
        return poly_lr(config.lr, epoch, config.epochs, config.poly_power)
    if config.schedule is ScheduleName.COSINE:
        return cosine_lr(config.lr, epoch, config.epochs)
    return config.lr


def build_optimizer(config: TrainConfig, params) -> torch.optim.Optimizer:
    """Build `config`'s optimizer over `params`."""
    if config.optimizer is OptimizerName.SGD:
        return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum, nesterov=config.nesterov,
                               weight_decay=config.weight_decay)
    cls = torch.optim.Adam if config.optimizer is OptimizerName.ADAM else torch.optim.AdamW
    return cls(params, lr=config.lr, weight_decay=config.weight_decay)


def set_learning_rate(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Set `lr` on every parameter group."""
    for group in optimizer.param_groups:
        group["lr"] = lr
