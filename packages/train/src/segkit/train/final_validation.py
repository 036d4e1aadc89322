"""After training: predict each validation case whole (train's own sliding window) and write Dice.

Predictions are made and scored in the preprocessed grid (segkit.infer, which maps results back to the
original images, is not imported here: train must not depend on infer).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import torch
from torch import nn

from segkit.io import atomic_path
from segkit.train.precision import Autocast
from segkit.train.validation import dice_per_class, sliding_window

log = logging.getLogger(__name__)


def _labels_from_output(logits: torch.Tensor, regions, order) -> tuple[np.ndarray, torch.Tensor]:
    if regions is None:
        probs = logits.softmax(0)
        return probs.max(0).indices.numpy().astype(np.int16), probs  # argmax's indices: 0.5 ms, argmax 15 ms
    probs = logits.sigmoid()
    seg = torch.zeros(probs.shape[1:], dtype=torch.int16)
    for channel, label in enumerate(order):
        seg[probs[channel] > 0.5] = label
    return seg.numpy(), probs


def _predict_case(predict, image: torch.Tensor, tile: tuple[int, ...], data) -> torch.Tensor:
    """(outputs, *spatial) logits of a whole (C, *spatial) case; 2D configurations go slice by slice."""
    axis = data.configuration.slice_axis
    if axis is None:
        return sliding_window(predict, image, tile, data.num_outputs)
    slices = [sliding_window(predict, image.select(1 + axis, s), tile, data.num_outputs)
              for s in range(image.shape[1 + axis])]
    return torch.stack(slices, 1 + axis)


def validate_cases(model: nn.Module, data, folder: Path, *, device: torch.device, autocast: Autocast,
                   save_probabilities: bool = False) -> dict:
    """Sliding-window predict `data.val_ids`, write ``folder/summary.json`` (Dice per case and class, their means
    and the foreground mean, laid out as segkit-evaluate's summary); return the summary.

    Args:
        model: the unwrapped network (deep supervision is switched off while predicting).
        data: the run's `DataSetup`.
        folder: output folder (``fold_K/validation``).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tile = tuple(data.configuration.patch_size)
    regions = data.regions
    order = data.dataset.regions_class_order
    ignore = data.dataset.ignore_label
    classes = list(regions) if regions is not None else list(range(1, data.num_outputs))
    had_ds = getattr(model, "deep_supervision", False)
    if had_ds:
        model.deep_supervision = False
    model.eval()

    def predict(x: torch.Tensor) -> torch.Tensor:
        with autocast.context():
            return model(x.to(device)).float().cpu()

    cases = []
    try:
        for case_id in data.val_ids:
            shape = data.store.shape(case_id)
            image, truth = data.store.read(case_id, tuple(slice(0, n) for n in shape))
            truth = np.maximum(truth, 0)  # -1 (outside the nonzero mask) is background
            logits = _predict_case(predict, torch.from_numpy(image), tile, data)
            pred, probs = _labels_from_output(logits, regions, order)
            dice = dice_per_class(pred, truth[0], classes, ignore_label=ignore)
            cases.append({"metrics": {key: {"Dice": value} for key, value in dice.items()}, "case": case_id})
            if save_probabilities:
                with atomic_path(folder / f"{case_id}.npz") as tmp:
                    np.savez_compressed(tmp, probabilities=probs.numpy().astype(np.float16))
    finally:
        if had_ds:
            model.deep_supervision = True
    mean = {}
    for key in (cases[0]["metrics"] if cases else {}):
        values = [case["metrics"][key]["Dice"] for case in cases if case["metrics"][key]["Dice"] is not None]
        mean[key] = float(np.mean(values)) if values else None
    present = [v for v in mean.values() if v is not None]
    foreground = float(np.mean(present)) if present else None
    # segkit-evaluate's layout (with Dice only), so that one reader serves both files
    summary = {"grid": "preprocessed", "metric_per_case": cases, "mean": {k: {"Dice": v} for k, v in mean.items()},
               "foreground_mean": {"Dice": foreground}}
    with atomic_path(folder / "summary.json") as tmp:
        tmp.write_text(json.dumps(summary, indent=2))
    scores = ", ".join(f"{key} {value:.4f}" for key, value in mean.items() if value is not None)
    log.info("validation Dice (%d cases, preprocessed grid, no mirroring): %s; foreground mean %s", len(cases),
             scores or "none", "n/a" if foreground is None else f"{foreground:.4f}")
    return summary
