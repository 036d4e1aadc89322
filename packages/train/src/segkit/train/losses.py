"""Segmentation losses: soft Dice + cross-entropy (or TopK), region (sigmoid) variants, the ignore label,
and deep supervision. Pure torch functions of logits and integer label maps.

Targets are integer label maps ``(batch, 1, *spatial)``; one-hot or region encoding happens here, so the
data pipeline only moves label maps. Voxels equal to ``ignore_label`` add nothing to any term.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from segkit.train.config import LossName, TrainConfig

SMOOTH = 1e-5


def soft_dice(probs: torch.Tensor, onehot: torch.Tensor, mask: torch.Tensor | None, *,
              batch_dice: bool, skip_first: bool) -> torch.Tensor:
    """Return minus the mean soft Dice over channels (nnU-Net's memory-efficient form, smooth 1e-5).

    Args:
        probs: (B, C, *spatial) probabilities.
        onehot: (B, C, *spatial) 0/1 targets.
        mask: (B, 1, *spatial) 1 where voxels count, or None.
        batch_dice: pool the batch into one volume per channel.
        skip_first: leave channel 0 (background) out.
    """
    if skip_first:
        probs, onehot = probs[:, 1:], onehot[:, 1:]
    if mask is not None:
        probs = probs * mask
        onehot = onehot * mask
    axes = tuple(range(2, probs.ndim))
    intersect = (probs * onehot).sum(axes)
    denom = probs.sum(axes) + onehot.sum(axes)
    if batch_dice:
        intersect, denom = intersect.sum(0), denom.sum(0)
    dice = (2 * intersect + SMOOTH) / (denom + SMOOTH).clamp_min(1e-8)
    return -dice.mean()


def _ignore_mask(target: torch.Tensor, ignore_label: int | None) -> tuple[torch.Tensor, torch.Tensor | None]:
    if ignore_label is None:
        return target, None
    mask = target != ignore_label
    return torch.where(mask, target, torch.zeros_like(target)), mask


def dice_ce(logits: torch.Tensor, target: torch.Tensor, *, ignore_label: int | None = None,
            batch_dice: bool = False, topk_percent: float | None = None) -> torch.Tensor:
    """Softmax Dice (background excluded) + cross-entropy, or + TopK cross-entropy.

    Args:
        logits: (B, C, *spatial) network output.
        target: (B, 1, *spatial) integer labels in [0, C) or `ignore_label`.
        ignore_label: label value that contributes nothing.
        batch_dice: Dice pooled over the batch.
        topk_percent: keep only the hardest `topk_percent` % voxels in the CE term.
    """
    labels, mask = _ignore_mask(target.long(), ignore_label)
    logits = logits.float()
    ce = F.cross_entropy(logits, labels[:, 0], reduction="none")
    if mask is not None:
        ce = ce[mask[:, 0]]
    if topk_percent is not None and ce.numel():
        k = max(1, int(ce.numel() * topk_percent / 100))
        ce = ce.flatten().topk(k, sorted=False).values
    ce_term = ce.mean() if ce.numel() else logits.sum() * 0
    onehot = torch.zeros_like(logits).scatter_(1, labels, 1.0)
    fmask = mask.to(logits.dtype) if mask is not None else None
    return ce_term + soft_dice(logits.softmax(1), onehot, fmask, batch_dice=batch_dice, skip_first=True)


def regions_onehot(target: torch.Tensor, regions: tuple[tuple[int, ...], ...]) -> torch.Tensor:
    """Return (B, R, *spatial) float: channel r is 1 where the label is one of ``regions[r]``."""
    return torch.cat([torch.isin(target, torch.tensor(r, device=target.device)) for r in regions], 1).float()


def region_dice_bce(logits: torch.Tensor, target: torch.Tensor, *, regions: tuple[tuple[int, ...], ...],
                    ignore_label: int | None = None, batch_dice: bool = False) -> torch.Tensor:
    """Sigmoid Dice (every region counts) + binary cross-entropy, for region-based training.

    Args:
        logits: (B, R, *spatial), one channel per region.
        target: (B, 1, *spatial) integer label map.
        regions: label values forming each region (dataset.json lists, background excluded).
    """
    labels, mask = _ignore_mask(target.long(), ignore_label)
    logits = logits.float()
    onehot = regions_onehot(labels, regions)
    bce = F.binary_cross_entropy_with_logits(logits, onehot, reduction="none")
    if mask is not None:
        fmask = mask.to(logits.dtype)
        bce_term = (bce * fmask).sum() / (fmask.sum() * logits.shape[1]).clamp_min(1)
    else:
        fmask, bce_term = None, bce.mean()
    return bce_term + soft_dice(logits.sigmoid(), onehot, fmask, batch_dice=batch_dice, skip_first=False)


def deep_supervision_weights(levels: int) -> list[float]:
    """nnU-Net's weights: halving per level, the lowest resolution 0, normalized to sum 1."""
    weights = [0.5 ** i for i in range(levels)]
    if levels > 1:
        weights[-1] = 0.0
    total = sum(weights)
    return [w / total for w in weights]


def downsample_target(target: torch.Tensor, size: tuple[int, ...]) -> torch.Tensor:
    """Nearest-neighbour downsampling of an integer label map (B, 1, *spatial) to `size`."""
    if tuple(target.shape[2:]) == tuple(size):
        return target
    return F.interpolate(target.float(), size=size, mode="nearest-exact").to(target.dtype)


@dataclass(frozen=True)
class SegmentationLoss:
    """A loss over one output or a deep-supervision list of outputs (full resolution first)."""

    term: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    ignore_label: int | None = None
    regions: tuple[tuple[int, ...], ...] | None = None

    def __call__(self, outputs: torch.Tensor | list[torch.Tensor], target: torch.Tensor) -> torch.Tensor:
        if isinstance(outputs, torch.Tensor):
            return self.term(outputs, target)
        weights = deep_supervision_weights(len(outputs))
        total = outputs[0].new_zeros((), dtype=torch.float32)
        for weight, out in zip(weights, outputs, strict=False):
            if weight:
                total = total + weight * self.term(out, downsample_target(target, tuple(out.shape[2:])))
            else:  # weight 0: no loss, but every head gets a (zero) gradient, as DistributedDataParallel needs
                total = total + out.float().sum() * 0.0
        return total


def build_loss(config: TrainConfig, *, regions: tuple[tuple[int, ...], ...] | None = None,
               ignore_label: int | None = None, batch_dice: bool = False) -> SegmentationLoss:
    """Build the loss of `config` (region-based when `regions` is given)."""
    if regions is not None:
        def term(out, tgt):
            return region_dice_bce(out, tgt, regions=regions, ignore_label=ignore_label, batch_dice=batch_dice)
    else:
        topk = config.topk_percent if config.loss is LossName.DICE_TOPK else None

        def term(out, tgt):
            return dice_ce(out, tgt, ignore_label=ignore_label, batch_dice=batch_dice, topk_percent=topk)
    return SegmentationLoss(term, ignore_label=ignore_label, regions=regions)
