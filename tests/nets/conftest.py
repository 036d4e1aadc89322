"""Fixtures for segkit.nets tests: the two genuine nnU-Net models of the shared reference data."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

HIPPO = "Dataset004_Hippocampus/nnUNetTrainer_refShort__nnUNetPlans__3d_fullres"


@pytest.fixture(scope="session")
def hippocampus_model_dir(nnunet_reference_dir: Path) -> Path:
    """nnU-Net result folder of the hippocampus PlainConvUNet (fp32)."""
    return nnunet_reference_dir / HIPPO


@pytest.fixture(scope="session")
def totalseg_model_dir(nnunet_reference_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The TotalSegmentator-layout 3 mm model (fp16, 118 outputs), extracted to a temporary folder."""
    archive = next((nnunet_reference_dir / "totalseg").glob("Dataset297_*.zip"))
    target = tmp_path_factory.mktemp("totalseg")
    with zipfile.ZipFile(archive) as zf:
        members = [m for m in zf.namelist() if m.endswith(("plans.json", "checkpoint_final.pth"))]
        zf.extractall(target, members=members)
    return next(target.glob("Dataset297_*/nnUNetTrainer_*"))


def architecture_of(model_dir: Path, configuration: str = "3d_fullres") -> dict:
    """Return the ``architecture`` section of a result folder's plans.json."""
    plans = json.loads((model_dir / "plans.json").read_text())
    return plans["configurations"][configuration]["architecture"]
