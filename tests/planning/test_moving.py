"""Moving plans to another dataset."""

import pytest

from segkit.io.dataset import DatasetInfo
from segkit.planning.errors import PlansError
from segkit.planning.moving import move_plans
from segkit.planning.planner import plan_dataset


def test_move_keeps_network_and_renames_data(hippocampus, hippocampus_fingerprint):
    plans = plan_dataset(hippocampus_fingerprint, hippocampus.info, dataset_name="Dataset004_Hippocampus")
    target = DatasetInfo({0: "T1"}, {"background": 0, "lesion": 1}, ".nii.gz", 10)
    moved = move_plans(plans, target, dataset_name="Dataset010_Lesions", plans_name="fromHippocampus")
    assert moved.configuration("3d_fullres").architecture == plans.configuration("3d_fullres").architecture
    assert moved.configuration("2d").data_identifier == "fromHippocampus_2d"
    assert moved.extra["label_values"] == [0, 1] and moved.extra["moved_from"] == "Dataset004_Hippocampus"
    assert plans.configuration("2d").data_identifier == "segkitPlans_2d"  # the source is untouched


def test_channel_mismatch_is_an_error(hippocampus, hippocampus_fingerprint):
    plans = plan_dataset(hippocampus_fingerprint, hippocampus.info)
    two_channels = DatasetInfo({0: "T1", 1: "T2"}, {"background": 0, "a": 1}, ".nii.gz", 3)
    with pytest.raises(PlansError, match="expect 1 channel"):
        move_plans(plans, two_channels, dataset_name="Dataset011_Two")
