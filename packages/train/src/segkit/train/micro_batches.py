"""Micro-batches: one optimizer step over a batch computed in slices, gradients accumulated.

On CPU a whole-batch step is slow for a memory reason, not an arithmetic one: activations of a batch
of 8 hippocampus patches (32 x 40x56x40 floats, 46 MB each) exceed glibc's largest heap allocation
(32 MiB), so each one is mmapped, page-faulted in and unmapped again every step. In slices they stay
in reused heap memory and in cache: the nnU-Net-sized U-Net's step took 7.0 s whole and 4.5 s in four
slices of 2 (2 cores). The gradient is the same when every layer and the loss treat samples
independently (instance or group norm, per-sample Dice, mean cross-entropy), so ``auto`` slices only then.
Channels-last (bf16) training takes one sample per pass, where instance norm keeps that layout
(`segkit.train.precision`).
"""

from __future__ import annotations

import math

import torch

from segkit.train.config import LossName, TrainConfig

#: ``auto`` slices a CPU batch so that the largest activation (first stage, fp32) stays under this.
AUTO_SLICE_BYTES = 12 * 2**20


def micro_batch_size(config: TrainConfig, *, batch_size: int, first_stage_features: int,
                     patch_size: tuple[int, ...], device: torch.device, batch_dice: bool,
                     channels_last: bool = False) -> int:
    """Samples per forward/backward pass: ``config.micro_batch``, or the ``auto`` choice described above."""
    if config.micro_batch is not None:
        return min(config.micro_batch, batch_size)
    exact = config.norm in (None, "instance", "group") and config.loss is LossName.DICE_CE and not batch_dice
    if device.type != "cpu" or not exact:
        return batch_size
    if channels_last:
        return 1
    per_sample = first_stage_features * math.prod(patch_size) * 4
    return max(1, min(batch_size, AUTO_SLICE_BYTES // per_sample))
