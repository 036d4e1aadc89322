"""Training the nnU-Net way: folds, deep supervision, augmentation, resume, fine-tuning.

Public API::

    TrainConfig, AugmentConfig                 the training configuration (segkit.train.config)
    register_trainer, get_trainer, trainer_names   named variants (segkit.train.registry)
    train, RunOptions                          one fold from preprocessed data to a model folder (segkit.train.run)
    Trainer, TrainParts                        the loop and its injected parts (segkit.train.loop)
"""

from segkit.io.lazy import lazy_exports

_EXPORTS = {
    "AugmentConfig": "config", "TrainConfig": "config", "register_trainer": "registry", "get_trainer": "registry",
    "trainer_names": "registry", "train": "run", "RunOptions": "run", "Trainer": "loop", "TrainParts": "loop",
}
__getattr__, __all__ = lazy_exports(__name__, _EXPORTS)
