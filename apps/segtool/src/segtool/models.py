"""`ModelLoader`: registry model entries installed and loaded into Predictors, each model and setting once."""

from __future__ import annotations

import logging
from collections.abc import Callable

from segtool.errors import SegtoolError
from segtool.options import SegmentOptions
from segtool.registry import LabelExport, ModelEntry, Registry
from segtool.steps import step
from segtool.store import WeightsStore
from segtool.weights import ensure_model

ModelProgress = Callable[[ModelEntry], Callable[[int, int | None], None] | None]


class ModelLoader:
    """Installs missing weights and loads each model entry into a Predictor with the options a segmentation asks
    for (device, mirroring, precision); a model that both finds the region and segments is loaded once.

    Args:
        options: the segmentation's options (its device, test-time augmentation, precision, downloads and
            ``higher_order_resampling``).
        registry: where the entries' weights are listed.
        store: where the weights are installed.
        progress_for: per entry, a callback for its download's progress (or None).
    """

    def __init__(self, options: SegmentOptions, *, registry: Registry, store: WeightsStore,
                 progress_for: ModelProgress) -> None:
        self.options, self.registry, self.store, self.progress_for = options, registry, store, progress_for
        self.device = resolve_device(options.device)
        self._predictors: dict[tuple, object] = {}  # (folder, folds, PredictOptions) -> Predictor

    def load(self, entries: tuple[ModelEntry, ...], *, own: bool = False) -> list:
        """(entry, Predictor) for each of ``entries``; the task's ``own`` parts bring their logits back to the scan
        with ``higher_order_resampling``."""
        from segkit.infer.errors import ModelLoadError
        from segkit.infer.predictor import Predictor

        loaded = []
        for entry in entries:
            folder = ensure_model(entry, registry=self.registry, store=self.store,
                                  allow_download=self.options.allow_download, on_progress=self.progress_for(entry))
            options = self._predict_options(entry, own)
            key = (folder, entry.folds, options)
            if key not in self._predictors:
                try:
                    with step(f"loaded {entry.result_folder}") as notes:
                        predictor = Predictor.from_model_folder(folder, folds=entry.folds, device=self.device,
                                                                options=options)
                        notes.append(f"folds {', '.join(map(str, predictor.folds))}, {self.device}, "
                                     f"{str(predictor.network_dtype).removeprefix('torch.')}, step {options.step}, "
                                     f"mirroring {'on' if options.tta else 'off'}"
                                     + (f", shifts +-{options.shift_tta}" if options.shift_tta else ""))
                except ModelLoadError as err:
                    raise SegtoolError(f"{entry.name}: the installed weights do not load ({err})") from err
                self._predictors[key] = predictor
            loaded.append((entry, self._predictors[key]))
        return loaded

    def _predict_options(self, entry: ModelEntry, own: bool):
        """The entry's prediction settings, with the segmentation's test-time augmentation and precision."""
        from segkit.infer.predictor import PredictOptions

        tta = self.options.tta
        logits_back = own and self.options.higher_order_resampling
        return PredictOptions(step=entry.step_size, tta=entry.mirroring if tta is None else tta,
                              shift_tta=0 if tta is False else entry.shift_tta,
                              precision=resolve_precision(self.options.precision or entry.precision, self.device),
                              fast_export=entry.label_export is LabelExport.NEAREST and not logits_back)


def resolve_precision(precision: str, device: str) -> str:
    """Resolve the registry's ``nnunet`` precision: fp32 on CPU, fp16 autocast (auto) on CUDA, as nnU-Net runs."""
    if precision == "nnunet":
        return "fp32" if device == "cpu" else "auto"
    return precision


def resolve_device(device: str) -> str:
    """The torch device for ``device``: ``auto`` the GPU if there is one; ``gpu`` and ``gpu:N`` (TotalSegmentator's)
    the same, or GPU N, with a warning when they run on the CPU instead, as there; ``cuda`` and ``mps`` fail
    without that device."""
    import torch

    log = logging.getLogger("segtool")
    if device in ("auto", "gpu"):
        if torch.cuda.is_available():
            return "cuda"
        if device == "gpu":
            log.warning("no CUDA GPU found: running on the CPU")
        return "cpu"
    if device.startswith("gpu:"):
        number = int(device[4:])
        if torch.cuda.is_available() and number < torch.cuda.device_count():
            return f"cuda:{number}"
        log.warning("no CUDA GPU %d found: running on the CPU", number)
        return "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise SegtoolError(f"device {device!r} asked for, but no CUDA GPU is available; use device cpu (or auto)")
    if device == "mps" and not torch.backends.mps.is_available():
        raise SegtoolError("device 'mps' asked for, but this machine has no Apple GPU; use device cpu (or auto)")
    return device
