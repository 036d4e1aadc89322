"""Fixtures: a small real hippocampus dataset planned and preprocessed by segkit.planning."""

from __future__ import annotations

from pathlib import Path

import pytest

from segkit.io.dataset import Dataset
from segkit.planning.fingerprint import extract_fingerprint
from segkit.planning.pipeline import preprocess_dataset
from segkit.planning.planner import plan_dataset
from segkit.planning.plans import Plans

NUM_CASES = 20
TINY_ARCH = {"network": "unet", "dims": 3, "features_per_stage": [4, 8, 16],
             "kernel_sizes": [[3, 3, 3]] * 3, "strides": [[1, 1, 1], [2, 2, 2], [2, 2, 2]],
             "blocks_per_stage": [1, 1, 1], "blocks_per_stage_decoder": [1, 1], "block": "plain",
             "norm": "instance", "deep_supervision": True}


def preprocess(raw: Path, out: Path) -> Path:
    """Plan and preprocess `raw` into `out` (plans.json, dataset.json, 3d_fullres/, 2d/), with tiny configs."""
    dataset = Dataset.load(raw)
    plans = plan_dataset(extract_fingerprint(dataset), dataset.info, dataset_name=raw.name)
    configs = dict(plans.configurations)
    configs["tiny2d"] = {"inherits_from": "2d", "batch_size": 4, "patch_size": [32, 32], "architecture": {
        **TINY_ARCH, "dims": 2, "kernel_sizes": [[3, 3]] * 3, "strides": [[1, 1], [2, 2], [2, 2]]}}
    configs["tiny"] = {"inherits_from": "3d_fullres", "batch_size": 2, "patch_size": [16, 24, 16],
                       "architecture": TINY_ARCH}
    plans = Plans.from_dict({**plans.to_dict(), "configurations": configs})
    out.mkdir(parents=True, exist_ok=True)
    plans.save(out / "plans.json")
    (out / "dataset.json").write_text((raw / "dataset.json").read_text())
    preprocess_dataset(dataset, plans, configuration="3d_fullres", output=out)
    preprocess_dataset(dataset, plans, configuration="2d", output=out)
    return out


@pytest.fixture(scope="session")
def hippo_preprocessed(hippocampus_subset, tmp_path_factory) -> Path:
    """20 real hippocampus cases, planned and preprocessed (3d_fullres, 2d, and tiny configurations of both)."""
    root = tmp_path_factory.mktemp("hippo")
    raw = hippocampus_subset(root / "Dataset004_Hippocampus", NUM_CASES)
    return preprocess(raw, root / "preprocessed")
