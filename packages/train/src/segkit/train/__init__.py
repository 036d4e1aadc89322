"""Training the nnU-Net way: folds, deep supervision, augmentation, resume, fine-tuning.

Public API::

    TrainConfig, AugmentConfig                 the training configuration (segkit.train.config)
    register_trainer, get_trainer, trainer_names   named variants (segkit.train.registry)
    train, RunOptions                          one fold from preprocessed data to a model folder (segkit.train.run)
    Trainer, TrainParts                        the loop and its injected parts (segkit.train.loop)
"""

import importlib

_EXPORTS = {
    "AugmentConfig": "config", "TrainConfig": "config", "register_trainer": "registry", "get_trainer": "registry",
    "trainer_names": "registry", "train": "run", "RunOptions": "run", "Trainer": "loop", "TrainParts": "loop",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"segkit.train.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'segkit.train' has no attribute {name!r}")
