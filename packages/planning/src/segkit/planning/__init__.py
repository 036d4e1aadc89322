"""Dataset fingerprint, plans, preprocessing and resampling (nnU-Net's self-configuration).

Everything per-axis is in segkit's ``(i, j, k)`` order (the reverse of nnU-Net's).
The pure functions here (cropping, normalization, resampling, preprocessing) serve both
training and inference.
"""

from segkit.planning.architecture import ArchitectureSpec, Block, Norm
from segkit.planning.cropping import crop_to_nonzero, uncrop
from segkit.planning.errors import (
    FingerprintError,
    PlanningError,
    PlansError,
    PreprocessingError,
    WorkerError,
)
from segkit.planning.fingerprint import Fingerprint, extract_fingerprint
from segkit.planning.memory import feature_map_size
from segkit.planning.normalization import Scheme, normalize, scheme_for_channel
from segkit.planning.planner import PlanOptions, plan_dataset
from segkit.planning.plans import Configuration, Plans
from segkit.planning.preprocessing import preprocess_arrays, revert_to_original_grid
from segkit.planning.resampling import resample_image, resample_labels, resample_logits
from segkit.planning.storage import CaseProperties, PreprocessedCase

__all__ = [
    "ArchitectureSpec",
    "Block",
    "CaseProperties",
    "Configuration",
    "Fingerprint",
    "FingerprintError",
    "Norm",
    "PlanOptions",
    "PlanningError",
    "Plans",
    "PlansError",
    "PreprocessedCase",
    "PreprocessingError",
    "Scheme",
    "WorkerError",
    "crop_to_nonzero",
    "extract_fingerprint",
    "feature_map_size",
    "normalize",
    "plan_dataset",
    "preprocess_arrays",
    "resample_image",
    "resample_labels",
    "resample_logits",
    "revert_to_original_grid",
    "scheme_for_channel",
    "uncrop",
]
