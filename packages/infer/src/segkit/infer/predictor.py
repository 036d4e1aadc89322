"""`Predictor`: a model loaded once, predicting many images (sliding window, TTA, fold ensemble)."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from segkit.infer.errors import InferError
from segkit.infer.export import labels_from_logits, probabilities_from_logits, probability_slabs
from segkit.infer.model_folder import LoadedModel, ModelFolders, load_model_folders
from segkit.infer.model_setup import ModelSetup
from segkit.infer.preprocessing import PreparedCase, preprocess
from segkit.infer.probabilities import write_probabilities
from segkit.infer.runtime import Precision, autocast_dtype, parse_device, torch_threads
from segkit.infer.slicewise import Slicewise
from segkit.infer.sliding_window import ForwardClock, TileProgress, WindowOptions, predict_sliding_window
from segkit.infer.tiling import check_shift
from segkit.io import Image, ImageSource, as_image
from segkit.io.model_folder import NNUNET_CHECKPOINT
from segkit.nets import cudnn_autotuning, fuse

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PredictOptions:
    """How to predict.

    Args:
        step: sliding-window step as a fraction of the patch size.
        tta: mirroring test-time augmentation over the axes the model allows.
        shift_tta: translation test-time augmentation (not in nnU-Net): the image is also predicted with this many
            zero voxels of the network grid padded before it, then after it, along each axis in turn (moving it by
            up to that many voxels among the tiles), and the predictions are averaged with equal weight (at least 7
            times the tiles of a 3D model, 5 of a 2D one); 0 for none. With 6, the hippocampus task's posterior Dice
            rose by 0.002-0.004 in each cross-validation fold.
        batch_size: network inputs per forward pass (tiles x flips), halved on out-of-memory; None: 4 on CUDA,
            1 on the CPU (larger CPU batches were measured no faster and cost memory).
        precision: network precision (`Precision`).
        fast_export: argmax on the network grid, then nearest-neighbour back (instead of resampling logits).
        num_threads: torch CPU threads during prediction (None: torch's default).
    """

    step: float = 0.5
    tta: bool = True
    shift_tta: int = 0
    batch_size: int | None = None
    precision: Precision = Precision.AUTO
    fast_export: bool = False
    num_threads: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "precision", Precision.parse(self.precision))
        for name in ("tta", "fast_export"):
            if not isinstance(getattr(self, name), bool):
                raise InferError(f"{name} must be True or False, got {getattr(self, name)!r}")
        if not 0 < self.step <= 1:
            raise InferError(f"step must be in (0, 1], got {self.step}")
        if self.batch_size is not None and self.batch_size < 1:
            raise InferError(f"batch_size must be >= 1, got {self.batch_size}")
        check_shift(self.shift_tta, "shift_tta")


class Predictor:
    """A loaded model that predicts label maps, logits or probabilities for many images.

    ``tile_progress``, if set, is called with (tiles done, tiles in all) as each network (fold) slides over an image.

    Example:
        >>> predictor = Predictor.from_model_folder("MODEL", folds=[0])  # doctest: +SKIP
        >>> labels = predictor.predict(read_image("case_0000.nii.gz"))  # doctest: +SKIP
    """

    def __init__(self, model: LoadedModel, *, device: str | torch.device = "auto",
                 options: PredictOptions | None = None, fused: bool = True) -> None:
        self.device = parse_device(device)
        self.options = options or PredictOptions()
        self.setup: ModelSetup = model.setup
        self.folds = model.folds
        self.clock = ForwardClock()
        self.tile_progress: TileProgress | None = None
        dtype = autocast_dtype(self.options.precision, self.device)
        # oneDNN runs channels-last convolutions without copying their input and output to and from its blocked
        # layout: bf16 forwards of the hippocampus U-Net on an AMX CPU about 20% faster; float32 ones of the 3 mm CT
        # U-Net about 15% faster, with 140 MB less peak memory per 64-channel 128x112x80 convolution
        channels_last = self.device.type == "cpu" and self.setup.slice_axis is None
        # fused=False: the networks as they were built (the same function, other sums), to measure rounding
        networks = tuple((fuse(n) if fused and not getattr(n, "is_fused", False) else n.eval()).to(self.device)
                         for n in model.networks)
        if channels_last:
            networks = tuple(n.to(memory_format=torch.channels_last_3d) for n in networks)
        if self.setup.slice_axis is not None:
            networks = tuple(Slicewise(n, self.setup.slice_axis) for n in networks)
        self.networks: tuple[nn.Module, ...] = networks
        self._window = WindowOptions(
            tile_size=self.setup.tile_size, step=self.options.step,
            mirror_axes=self.setup.tile_mirror_axes if self.options.tta else (), shift=self.options.shift_tta,
            batch_size=self.options.batch_size or (4 if self.device.type == "cuda" else 1),
            autocast_dtype=dtype, channels_last=channels_last)
        logger.info("%s: fold(s) %s on %s, %s, step %g, mirroring %s, shifts %s, %d tile(s) per forward pass",
                    self.setup.configuration, ", ".join(map(str, self.folds)), self.device,
                    str(self.network_dtype).removeprefix("torch."), self.options.step,
                    "on" if self._window.mirror_axes else "off",
                    f"+-{self.options.shift_tta} voxels" if self.options.shift_tta else "off", self._window.batch_size)

    @property
    def network_dtype(self) -> torch.dtype:
        """The precision the networks compute in: the autocast dtype, else float32."""
        return self._window.autocast_dtype or torch.float32

    @classmethod
    def from_model_folder(cls, path: ModelFolders, *, folds: int | str | Iterable[int | str] | None = None,
                          device: str | torch.device = "auto", checkpoint: str = NNUNET_CHECKPOINT,
                          options: PredictOptions | None = None) -> Predictor:
        """Load a segkit model folder or an nnU-Net v2 result folder (no pickled code is executed).

        Args:
            path: the model folder, or several trained with the same plans (seeds or trainers of one recipe):
                the chosen folds of each are then averaged together.
            folds: a fold (a number or ``"all"``) or several to ensemble (None: every numbered fold, as nnU-Net;
                ``fold_all`` only where it is the only one).
            device: ``auto`` (the CUDA GPU where there is one, else the CPU), ``cpu``, ``cuda``, ``cuda:N``, ``mps``.
            checkpoint: nnU-Net checkpoint file name in each fold folder.
            options: prediction options.
        """
        model = load_model_folders(path, folds=folds, checkpoint=checkpoint)
        owned = replace(model, networks=tuple(fuse(n, in_place=True) for n in model.networks))
        return cls(owned, device=device, options=options)

    def prepare(self, image: ImageSource, *, previous: ImageSource | None = None) -> PreparedCase:
        """Run the pre-processing of ``image`` (see `preprocess`; ``previous``: cascade input)."""
        previous = None if previous is None else as_image(previous)
        return preprocess(as_image(image), self.setup, device=self.device, previous=previous)

    def logits_of(self, case: PreparedCase) -> torch.Tensor:
        """Return the ``(classes, *network_shape)`` logits of a prepared case, folds ensembled.

        Several folds are averaged in probability space; the result is returned as float32 log-probabilities
        (region models: as the logits of the averaged sigmoids) so that labels and probabilities of it are those of
        the averaged probabilities. Each fold's probabilities are added to a running sum as soon as its prediction
        ends: one float32 map in memory besides the current fold's logits, whatever the number of folds.
        """
        regions = self.setup.regions_class_order is not None
        total = None
        for net in self.networks:
            with torch_threads(self.options.num_threads), cudnn_autotuning(self.device):
                logits = predict_sliding_window(net, case.data, self._window, num_classes=self.setup.num_classes,
                                                clock=self.clock, progress=self.tile_progress)
            if len(self.networks) == 1:
                return logits
            probabilities = logits.float().sigmoid_() if regions else torch.softmax(logits, 0, dtype=torch.float32)
            del logits
            total = probabilities if total is None else total.add_(probabilities)
            del probabilities
        mean = total.div_(len(self.networks))
        return mean.logit_(eps=1e-6) if regions else mean.clamp_min_(1e-12).log_()

    def predict_logits(self, image: ImageSource, *,
                       previous: ImageSource | None = None) -> tuple[torch.Tensor, PreparedCase]:
        """Return network-grid logits of ``image`` and the prepared case they belong to."""
        case = self.prepare(image, previous=previous)
        return self.logits_of(case), case

    def predict(self, image: ImageSource, *, previous: ImageSource | None = None) -> Image:
        """Return the label map of ``image``, exactly on its grid (same shape and affine).

        Args:
            image: the input, any orientation: an `Image`, a path, one file per channel, or a nibabel image
                (`segkit.io.as_image`).
            previous: for a cascade stage, the previous stage's label map on the same grid.
        """
        image = as_image(image)
        logits, case = self.predict_logits(image, previous=previous)
        return labels_from_logits(logits, case.geometry, self.setup, image=image, fast=self.options.fast_export)

    def predict_probabilities(self, image: ImageSource) -> tuple[Image, np.ndarray]:
        """Return the label map and the ``(classes, i, j, k)`` probabilities of ``image`` on its grid."""
        image = as_image(image)
        logits, case = self.predict_logits(image)
        labels = labels_from_logits(logits, case.geometry, self.setup, image=image, fast=self.options.fast_export)
        return labels, probabilities_from_logits(logits, case.geometry, self.setup, image=image)

    def predict_writing_probabilities(self, image: ImageSource, path: str | Path) -> Image:
        """`predict`, also writing the probabilities of ``image``'s grid to ``path`` (`write_probabilities`:
        nnU-Net's ``.npz``) a slab at a time, so that all classes on the whole grid never exist at once."""
        image = as_image(image)
        logits, case = self.predict_logits(image)
        labels = labels_from_logits(logits, case.geometry, self.setup, image=image, fast=self.options.fast_export)
        write_probabilities(path, (len(logits), *image.spatial_shape),
                            probability_slabs(logits, case.geometry, self.setup, image=image))
        return labels

    def predict_many(self, images: Iterable[ImageSource]) -> Iterator[Image]:
        """Yield the label map of each image; the next image is read and pre-processed while the current one
        predicts."""
        iterator = iter(images)
        with ThreadPoolExecutor(max_workers=1) as pool:
            pending = _submit_next(pool, iterator, self._read_and_prepare)
            while pending is not None:
                image, case = pending.result()
                pending = _submit_next(pool, iterator, self._read_and_prepare)
                logits = self.logits_of(case)
                yield labels_from_logits(logits, case.geometry, self.setup, image=image,
                                         fast=self.options.fast_export)

    def _read_and_prepare(self, source: ImageSource) -> tuple[Image, PreparedCase]:
        image = as_image(source)
        return image, self.prepare(image)


def _submit_next(pool: ThreadPoolExecutor, iterator: Iterator[ImageSource], work) -> Future | None:
    source = next(iterator, None)
    return None if source is None else pool.submit(work, source)
