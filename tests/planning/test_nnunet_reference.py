"""Plans for synthetic fingerprints against nnU-Net's ExperimentPlanner on the same fingerprints.

``data/nnunet_synthetic_plans.json`` holds the fingerprints and nnU-Net v2.8.1's plans of them,
written by ``benchmarks/bench_planning.py --write-reference-plans`` (the peer runs only there).
They cover what the real datasets do not: 3d_lowres and the cascade, the anisotropy rule with
thick slices, two channels (CT + masked z-score), and the residual-encoder presets M/L/XL.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from segkit.io.dataset import DatasetInfo
from segkit.planning.fingerprint import Fingerprint
from segkit.planning.planner import PlanOptions, plan_dataset

REFERENCE = json.loads((Path(__file__).parent / "data" / "nnunet_synthetic_plans.json").read_text())


def _inputs(entry: dict) -> tuple[Fingerprint, DatasetInfo]:
    n = len(entry["spacings"])
    fingerprint = Fingerprint(
        identifiers=tuple(f"case{i:03d}" for i in range(n)),
        spacings=tuple(tuple(s) for s in entry["spacings"]),
        shapes=tuple(tuple(s) for s in entry["shapes_after_crop"]),
        shapes_after_crop=tuple(tuple(s) for s in entry["shapes_after_crop"]),
        intensity_properties={int(c): p for c, p in entry["intensity"].items()},
        class_voxel_counts={0: 100, 1: 10, 2: 10},
        median_relative_size_after_cropping=entry["median_relative_size_after_cropping"],
    )
    info = DatasetInfo.from_dict(
        {"channel_names": entry["channel_names"], "labels": entry["labels"], "numTraining": n, "file_ending": ".nii.gz"}
    )
    return fingerprint, info


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_plans_equal_nnunet(name, compare_plans):
    entry = REFERENCE[name]
    theirs = entry["nnunet_plans"]["configurations"]
    plans = plan_dataset(*_inputs(entry))
    assert set(plans.configuration_names) == set(theirs)
    for config in theirs:
        if "inherits_from" in theirs[config]:
            assert plans.configurations[config] == theirs[config]  # the cascade: inherits_from + previous_stage
            continue
        compare_plans(plans.configuration(config), theirs[config])
        assert plans.configuration(config).next_stage == theirs[config].get("next_stage")


@pytest.mark.parametrize("name", sorted(REFERENCE))
@pytest.mark.parametrize("preset", ["resenc_m", "resenc_l", "resenc_xl"])
def test_resenc_presets_equal_nnunet(name, preset, compare_plans):
    entry = REFERENCE[name]
    theirs = entry["nnunet_resenc_plans"][preset]["configurations"]
    plans = plan_dataset(*_inputs(entry), PlanOptions(preset=preset))
    assert set(plans.configuration_names) == set(theirs)
    for config in theirs:
        if "inherits_from" not in theirs[config]:
            compare_plans(plans.configuration(config), theirs[config])
