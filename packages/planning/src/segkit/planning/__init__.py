"""Dataset fingerprint, plans, preprocessing and resampling (nnU-Net's self-configuration).

Everything per-axis is in segkit's ``(i, j, k)`` order (the reverse of nnU-Net's).
The pure functions here (cropping, normalization, resampling, preprocessing) serve both
training and inference. Torch is imported only when resampling is used.
"""

from segkit.io.lazy import lazy_exports

# Names are imported on first use, so that e.g. the CLI's --help does not import torch.
_EXPORTS = {
    "ArchitectureSpec": "architecture",
    "Block": "architecture",
    "Norm": "architecture",
    "crop_to_nonzero": "cropping",
    "uncrop": "cropping",
    "FingerprintError": "errors",
    "PlanningError": "errors",
    "PlansError": "errors",
    "PreprocessingError": "errors",
    "WorkerError": "errors",
    "Fingerprint": "fingerprint",
    "extract_fingerprint": "fingerprint",
    "feature_map_size": "memory",
    "Scheme": "normalization",
    "normalize": "normalization",
    "scheme_for_channel": "normalization",
    "PlanOptions": "planner",
    "plan_dataset": "planner",
    "Configuration": "plans",
    "Plans": "plans",
    "preprocess_arrays": "preprocessing",
    "revert_to_original_grid": "preprocessing",
    "resample_image": "resampling",
    "resample_labels": "resampling",
    "resample_logits": "resampling",
    "CaseProperties": "storage",
    "PreprocessedCase": "storage",
}

__getattr__, __all__ = lazy_exports(__name__, _EXPORTS)
