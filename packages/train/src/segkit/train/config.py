"""`TrainConfig`: every knob of a training run that is not a path or a device, as one frozen dataclass.

Trainer variants (`segkit.train.registry`) are named `TrainConfig` values; a run records the config it
used in ``fold_K/train_config.json`` so it can be resumed and reproduced.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from segkit.train.errors import TrainConfigError


class OptimizerName(str, Enum):
    """Optimizer of the network weights."""

    SGD = "sgd"
    ADAM = "adam"
    ADAMW = "adamw"


class ScheduleName(str, Enum):
    """Learning-rate schedule over the whole run (stepped once per epoch)."""

    POLY = "poly"
    COSINE = "cosine"
    CONSTANT = "constant"


class LossName(str, Enum):
    """Segmentation loss (deep supervision wraps it)."""

    DICE_CE = "dice_ce"
    DICE_TOPK = "dice_topk"


class Precision(str, Enum):
    """Autocast precision: ``auto`` = bf16 on GPUs that support it, fp16 on older GPUs, bf16 on CPUs where it pays
    (`segkit.nets.cpu_bf16_pays`), else fp32."""

    AUTO = "auto"
    FP32 = "fp32"
    BF16 = "bf16"
    FP16 = "fp16"


def _number(value: Any, key: str) -> float:
    """`value` as a float; strings, booleans and other types are an error."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TrainConfigError(f"{key}: expected a number, found {value!r}")
    return float(value)


def _pair(value: Any, key: str) -> tuple[float, float]:
    """`value` as a (low, high) pair of floats."""
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise TrainConfigError(f"{key}: expected (low, high), found {value!r}")
    low, high = (_number(v, key) for v in value)
    if low > high:
        raise TrainConfigError(f"{key}: expected (low, high), found {list(value)}")
    return low, high


def _enum(cls: type[Enum], value: Any, key: str) -> Enum:
    try:
        return cls(value.value if isinstance(value, Enum) else value)
    except ValueError as err:
        valid = ", ".join(m.value for m in cls)
        raise TrainConfigError(f"train config {key!r}: unknown value {value!r}; valid: {valid}") from err


@dataclass(frozen=True)
class AugmentConfig:
    """Augmentation probabilities and ranges (nnU-Net's defaults).

    Angles are in radians; ``mirror_axes`` are spatial axes in (i, j, k) order (empty = no mirroring).
    """

    p_rotation: float = 0.2
    rotation_range: float = 0.5235987755982988  # 30 degrees, each axis
    p_scaling: float = 0.2
    scaling_range: tuple[float, float] = (0.7, 1.4)
    p_noise: float = 0.1
    noise_variance: tuple[float, float] = (0.0, 0.1)
    p_blur: float = 0.2
    blur_sigma: tuple[float, float] = (0.5, 1.0)
    p_brightness: float = 0.15
    brightness_range: tuple[float, float] = (0.75, 1.25)
    p_contrast: float = 0.15
    contrast_range: tuple[float, float] = (0.75, 1.25)
    p_lowres: float = 0.25
    lowres_range: tuple[float, float] = (0.5, 1.0)
    p_gamma_inverted: float = 0.1
    p_gamma: float = 0.3
    gamma_range: tuple[float, float] = (0.7, 1.5)
    mirror_axes: tuple[int, ...] = (0, 1, 2)

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            key, value = f"augmentation {f.name!r}", getattr(self, f.name)
            if f.name.startswith("p_"):
                value = _number(value, key)
                if not 0.0 <= value <= 1.0:
                    raise TrainConfigError(f"{key}: expected a probability in [0, 1], found {value}")
            elif f.name == "rotation_range":
                value = _number(value, key)
            elif f.name != "mirror_axes":
                value = _pair(value, key)
            object.__setattr__(self, f.name, value)
        axes = self.mirror_axes
        if not isinstance(axes, (list, tuple)) or any(isinstance(a, bool) or a not in (0, 1, 2) for a in axes):
            raise TrainConfigError(f"augmentation 'mirror_axes': expected axes among 0, 1, 2, found {axes!r}")
        object.__setattr__(self, "mirror_axes", tuple(int(a) for a in axes))

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {f.name: list(v) if isinstance(v := getattr(self, f.name), tuple) else v
                for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AugmentConfig:
        """Parse `to_dict` output (unknown keys are an error)."""
        _check_keys(cls, data, "augmentation")
        return cls(**data)


def _check_keys(cls: type, data: dict, what: str) -> None:
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise TrainConfigError(f"{what}: unknown keys {unknown}; valid: {', '.join(sorted(known))}")


@dataclass(frozen=True)
class TrainConfig:
    """A named training configuration (defaults = nnU-Net's ``nnUNetTrainer``).

    Args:
        name: the trainer name recorded in model.json.
        epochs: number of epochs.
        iters_per_epoch: training iterations per epoch.
        val_iters_per_epoch: validation patches batches per epoch (pseudo Dice).
        optimizer, lr, momentum, nesterov, weight_decay: the optimizer.
        schedule, poly_power: learning-rate schedule, stepped per epoch.
        loss, topk_percent: loss (Dice + CE, or Dice + TopK CE keeping the hardest ``topk_percent``%).
        deep_supervision: supervise every decoder resolution (weights halve per level, lowest one 0).
        grad_clip: gradient-norm clipping threshold.
        precision: autocast precision.
        oversample_foreground: fraction of each batch centred on a foreground voxel.
        augmentation: probabilities and ranges.
        norm: override the plans' normalization layer (``"batch"`` for full fusion at inference).
        checkpoint_every: write a checkpoint every this many epochs (and at the end).
        num_folds, split_seed: cross-validation split.
        seed: seed of sampling, augmentation and initialization.
        ema_alpha: smoothing of the logged pseudo Dice.
        compile: run the network through torch.compile.
        micro_batch: samples per forward/backward pass, gradients accumulated over the batch
            (null = automatic: see `segkit.train.micro_batches`).
        fast_weight_grads: on CPU, compute conv weight gradients the fastest measured way
            (`segkit.nets.weight_grad`; the same sums in another order).
    """

    name: str = "default"
    epochs: int = 1000
    iters_per_epoch: int = 250
    val_iters_per_epoch: int = 50
    optimizer: OptimizerName = OptimizerName.SGD
    lr: float = 1e-2
    momentum: float = 0.99
    nesterov: bool = True
    weight_decay: float = 3e-5
    schedule: ScheduleName = ScheduleName.POLY
    poly_power: float = 0.9
    loss: LossName = LossName.DICE_CE
    topk_percent: float = 10.0
    deep_supervision: bool = True
    grad_clip: float = 12.0
    precision: Precision = Precision.AUTO
    oversample_foreground: float = 0.33
    augmentation: AugmentConfig = field(default_factory=AugmentConfig)
    norm: str | None = None
    checkpoint_every: int = 50
    num_folds: int = 5
    split_seed: int = 12345
    seed: int = 0
    ema_alpha: float = 0.9
    compile: bool = False
    micro_batch: int | None = None
    fast_weight_grads: bool = True

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "optimizer", _enum(OptimizerName, self.optimizer, "optimizer"))
        set_(self, "schedule", _enum(ScheduleName, self.schedule, "schedule"))
        set_(self, "loss", _enum(LossName, self.loss, "loss"))
        set_(self, "precision", _enum(Precision, self.precision, "precision"))
        if isinstance(self.augmentation, dict):
            set_(self, "augmentation", AugmentConfig.from_dict(self.augmentation))
        elif not isinstance(self.augmentation, AugmentConfig):
            raise TrainConfigError(f"train config 'augmentation': expected an object, found {self.augmentation!r}")
        self._check_types()
        for key in ("epochs", "iters_per_epoch", "checkpoint_every", "num_folds"):
            if getattr(self, key) < 1:
                raise TrainConfigError(f"train config {key!r}: expected an integer >= 1, found {getattr(self, key)!r}")
        if self.val_iters_per_epoch < 0:
            raise TrainConfigError(
                f"train config 'val_iters_per_epoch': expected >= 0, found {self.val_iters_per_epoch}")
        if not self.lr > 0 or self.weight_decay < 0 or not self.grad_clip > 0:
            raise TrainConfigError(f"train config: expected lr > 0, weight_decay >= 0, grad_clip > 0, found "
                                   f"{self.lr}, {self.weight_decay}, {self.grad_clip}")
        if not 0.0 <= self.oversample_foreground <= 1.0:
            raise TrainConfigError(
                f"train config 'oversample_foreground': expected [0, 1], found {self.oversample_foreground}")
        if not 0.0 < self.topk_percent <= 100.0:
            raise TrainConfigError(f"train config 'topk_percent': expected (0, 100], found {self.topk_percent}")
        if self.norm not in (None, "instance", "batch", "group"):
            raise TrainConfigError(f"train config 'norm': expected null, instance, batch or group, found {self.norm!r}")
        if self.micro_batch is not None and (isinstance(self.micro_batch, bool) or not isinstance(
                self.micro_batch, int) or self.micro_batch < 1):
            raise TrainConfigError(f"train config 'micro_batch': expected null or an integer >= 1, "
                                   f"found {self.micro_batch!r}")
        if self.num_folds < 2:
            raise TrainConfigError(f"train config 'num_folds': expected >= 2, found {self.num_folds}")

    def _check_types(self) -> None:
        """Fields annotated int, float and bool, and the name, must have those JSON types (``"0.01"`` is not a
        number); floats are stored as floats."""
        for f in dataclasses.fields(self):
            key, value = f"train config {f.name!r}", getattr(self, f.name)
            if f.type == "int" and (not isinstance(value, int) or isinstance(value, bool)):
                raise TrainConfigError(f"{key}: expected an integer, found {value!r}")
            if f.type == "float":
                object.__setattr__(self, f.name, _number(value, key))
            if f.type == "bool" and not isinstance(value, bool):
                raise TrainConfigError(f"{key}: expected true or false, found {value!r}")
        if not isinstance(self.name, str) or not self.name:
            raise TrainConfigError(f"train config 'name': expected a non-empty string, found {self.name!r}")

    def replace(self, **changes: Any) -> TrainConfig:
        """Return a copy with some fields changed (checked again)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict; `from_dict` inverts it exactly."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, Enum):
                value = value.value
            elif isinstance(value, AugmentConfig):
                value = value.to_dict()
            out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Parse `to_dict` output; missing keys take their defaults, unknown keys are an error."""
        _check_keys(cls, data, "train config")
        return cls(**data)
