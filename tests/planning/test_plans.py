"""Plans JSON: lossless round trip, inherits_from, and errors."""

from __future__ import annotations

import json

import pytest

from segkit.planning.architecture import ArchitectureSpec
from segkit.planning.errors import PlansError
from segkit.planning.planner import plan_dataset
from segkit.planning.plans import Plans


@pytest.fixture(scope="module")
def plans(hippocampus, hippocampus_fingerprint) -> Plans:
    return plan_dataset(hippocampus_fingerprint, hippocampus.info, dataset_name="Dataset004_Hippocampus")


def test_round_trip_is_lossless(tmp_path, plans):
    path = tmp_path / "plans.json"
    plans.save(path)
    loaded = Plans.load(path)
    assert loaded == plans
    assert json.loads(path.read_text()) == plans.to_dict()
    data = json.loads(path.read_text())
    assert data["configurations"]["3d_fullres"]["patch_size"] == [40, 56, 40]  # nnU-Net's key names


def test_user_variant_inherits(plans):
    data = plans.to_dict()
    data["configurations"]["3d_fullres_bs4"] = {"inherits_from": "3d_fullres", "batch_size": 4}
    edited = Plans.from_dict(data)
    variant = edited.configuration("3d_fullres_bs4")
    assert variant.batch_size == 4 and variant.patch_size == (40, 56, 40) and variant.name == "3d_fullres_bs4"
    assert Plans.from_dict(edited.to_dict()) == edited


def test_unknown_configuration_lists_valid(plans):
    with pytest.raises(PlansError, match="valid: 2d, 3d_fullres"):
        plans.configuration("3d_lowres")


def test_cycle_and_bad_entries_are_errors(plans):
    data = plans.to_dict()
    data["configurations"]["a"] = {"inherits_from": "b"}
    data["configurations"]["b"] = {"inherits_from": "a"}
    with pytest.raises(PlansError, match="cycle"):
        Plans.from_dict(data)
    data = plans.to_dict()
    data["configurations"]["3d_fullres"]["normalization_schemes"] = ["Fancy"]
    with pytest.raises(PlansError, match="valid: CTNormalization"):
        Plans.from_dict(data)
    data = plans.to_dict()
    data["configurations"]["3d_fullres"]["architecture"]["norm"] = "layer"
    with pytest.raises(PlansError, match="valid: instance, batch, group"):
        Plans.from_dict(data)


def test_load_errors(tmp_path):
    with pytest.raises(PlansError, match="cannot read"):
        Plans.load(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(PlansError, match="invalid JSON"):
        Plans.load(tmp_path / "bad.json")


def test_architecture_contract_keys(plans):
    arch = plans.to_dict()["configurations"]["3d_fullres"]["architecture"]
    assert set(arch) == {
        "network",
        "dims",
        "features_per_stage",
        "kernel_sizes",
        "strides",
        "blocks_per_stage",
        "blocks_per_stage_decoder",
        "block",
        "norm",
        "deep_supervision",
    }
    assert arch["dims"] == 3 and arch["strides"][0] == [1, 1, 1] and arch["deep_supervision"] is True
    assert ArchitectureSpec.from_dict(arch).to_dict() == arch
    with pytest.raises(PlansError, match="blocks_per_stage_decoder needs 3"):
        ArchitectureSpec.from_dict({**arch, "blocks_per_stage_decoder": [2]})


def test_nnunet_plans_file_is_named_as_such(nnunet_reference_dir, tmp_path):
    path = nnunet_reference_dir / "Dataset004_Hippocampus" / "nnUNetPlans.json"
    with pytest.raises(PlansError, match="nnU-Net v2 plans file, not segkit plans.*segkit-plan") as err:
        Plans.load(path)
    assert str(err.value).startswith(str(path)) and "\n" not in str(err.value)
    for content, message in (([1, 2], "expected a JSON object, found list"),
                             ({"format": "other-plans/9"}, "format 'other-plans/9' is not supported")):
        (tmp_path / "plans.json").write_text(json.dumps(content))
        with pytest.raises(PlansError, match=message):
            Plans.load(tmp_path / "plans.json")
