"""Trainer variants by name: registered `TrainConfig` values, not subclasses.

Users add their own without editing the package, either in Python::

    from segkit.train import TrainConfig, register_trainer
    register_trainer(TrainConfig(name="myTrainer", epochs=300, lr=3e-3))

or with a JSON file passed to ``segkit-train -tr my_trainer.json``: a `TrainConfig` dict, optionally
with ``"inherits_from": "<registered name>"`` to change only some keys.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from segkit.train.config import AugmentConfig, LossName, OptimizerName, ScheduleName, TrainConfig
from segkit.train.errors import TrainConfigError

_REGISTRY: dict[str, TrainConfig] = {}
#: nnU-Net's names of trainers that are built in here (``nnUNetv2_train -tr``); ``nnUNetTrainer_<name>`` also names
#: the registered ``<name>`` (``nnUNetTrainer_5epochs``)
NNUNET_NAMES = {"nnUNetTrainer": "default", "nnUNetTrainerNoMirroring": "noMirroring",
                "nnUNetTrainerNoDA": "noAugmentation", "nnUNetTrainerBN": "batchNorm"}


def register_trainer(config: TrainConfig, *, replace: bool = False) -> None:
    """Register `config` under ``config.name``.

    Raises:
        TrainConfigError: the name is taken and `replace` is false.
    """
    if config.name in _REGISTRY and not replace:
        raise TrainConfigError(f"trainer {config.name!r} is already registered; pass replace=True to override")
    _REGISTRY[config.name] = config


def trainer_names() -> list[str]:
    """Return the registered trainer names, sorted."""
    return sorted(_REGISTRY)


def get_trainer(name: str) -> TrainConfig:
    """Return the config registered as `name` (or under nnU-Net's name for it, `NNUNET_NAMES`), or read it from a
    JSON file when `name` is a path.

    Raises:
        TrainConfigError: unknown name (the message lists the registered ones) or a bad JSON file.
    """
    nnunet_suffix = name.removeprefix("nnUNetTrainer_")
    name = NNUNET_NAMES.get(name, nnunet_suffix if nnunet_suffix in _REGISTRY else name)
    if name in _REGISTRY:
        return _REGISTRY[name]
    if name.endswith(".json"):
        return load_trainer_file(name)
    raise TrainConfigError(f"unknown trainer {name!r}; registered: {', '.join(trainer_names())} "
                           f"(or pass a .json trainer file)")


def load_trainer_file(path: str | Path) -> TrainConfig:
    """Read a trainer JSON file (a `TrainConfig` dict with optional ``inherits_from``)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except OSError as err:
        raise TrainConfigError(f"{path}: cannot read trainer file ({err.strerror})") from err
    except json.JSONDecodeError as err:
        raise TrainConfigError(f"{path}: invalid JSON ({err})") from err
    if not isinstance(data, dict):
        raise TrainConfigError(f"{path}: expected a JSON object")
    parent = data.pop("inherits_from", "default")
    if not isinstance(parent, str):
        raise TrainConfigError(f"{path}: 'inherits_from' must be a trainer name, found {parent!r}")
    base = get_trainer(parent).to_dict()
    changed = data.pop("augmentation", {})
    if not isinstance(changed, dict):
        raise TrainConfigError(f"{path}: 'augmentation' must be an object of changed keys, found {changed!r}")
    augmentation = {**base.pop("augmentation"), **changed}
    merged = {**base, "name": path.stem, **data, "augmentation": augmentation}
    try:
        return TrainConfig.from_dict(merged)
    except TrainConfigError as err:
        raise TrainConfigError(f"{path}: {err}") from err


def _builtin() -> list[TrainConfig]:
    default = TrainConfig()
    out = [default]
    for epochs in (1, 5, 10, 20, 50, 100, 250, 500, 2000, 4000):
        out.append(default.replace(name=f"{epochs}epoch" + ("s" if epochs > 1 else ""), epochs=epochs))
    no_mirror = dataclasses.replace(default.augmentation, mirror_axes=())
    out.append(default.replace(name="noMirroring", augmentation=no_mirror))
    out.append(default.replace(name="topkDice", loss=LossName.DICE_TOPK))
    out.append(default.replace(name="adamCosine", optimizer=OptimizerName.ADAM, lr=3e-4, weight_decay=0.0,
                               schedule=ScheduleName.COSINE))
    out.append(default.replace(name="adamwCosine", optimizer=OptimizerName.ADAMW, lr=1e-3, weight_decay=1e-2,
                               schedule=ScheduleName.COSINE))
    out.append(default.replace(name="batchNorm", norm="batch"))
    out.append(default.replace(name="noAugmentation", augmentation=AugmentConfig(
        p_rotation=0, p_scaling=0, p_noise=0, p_blur=0, p_brightness=0, p_contrast=0, p_lowres=0,
        p_gamma_inverted=0, p_gamma=0, mirror_axes=())))
    return out


for _config in _builtin():
    register_trainer(_config)
