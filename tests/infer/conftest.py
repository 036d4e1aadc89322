"""Fixtures of the infer tests: the genuine nnU-Net hippocampus model and its reference predictions."""

from __future__ import annotations

from pathlib import Path

import pytest

from segkit.infer.predictor import PredictOptions, Predictor


@pytest.fixture(scope="session")
def hippo_model_dir(nnunet_reference_dir: Path) -> Path:
    """nnU-Net v2 result folder of the short hippocampus training run."""
    return nnunet_reference_dir / "Dataset004_Hippocampus" / "nnUNetTrainer_refShort__nnUNetPlans__3d_fullres"


@pytest.fixture(scope="session")
def predictions_dir(nnunet_reference_dir: Path) -> Path:
    """nnUNetv2_predict inputs and outputs."""
    return nnunet_reference_dir / "predictions"


@pytest.fixture(scope="session")
def hippo_predictor_notta(hippo_model_dir: Path) -> Predictor:
    """fp32 predictor without TTA (the reference's settings apart from TTA)."""
    return Predictor.from_model_folder(hippo_model_dir, folds=[0], options=PredictOptions(tta=False, precision="fp32"))
