"""Plans against nnU-Net's own plans of the same data (every per-axis list reversed)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from segkit.io.dataset import DatasetInfo
from segkit.planning.architecture import Block
from segkit.planning.errors import PlansError
from segkit.planning.fingerprint import Fingerprint
from segkit.planning.planner import PlanOptions, plan_dataset


def test_hippocampus_plans_equal_nnunet(hippocampus, hippocampus_fingerprint, hippocampus_reference, compare_plans):
    plans = plan_dataset(hippocampus_fingerprint, hippocampus.info, dataset_name="Dataset004_Hippocampus")
    assert set(plans.configuration_names) == set(hippocampus_reference["configurations"]) == {"2d", "3d_fullres"}
    fullres = plans.configuration("3d_fullres")
    assert fullres.patch_size == (40, 56, 40) and fullres.batch_size == 8 and fullres.spacing == (1.0, 1.0, 1.0)
    assert fullres.architecture.features_per_stage == (32, 64, 128, 256)
    for name in ("2d", "3d_fullres"):
        compare_plans(plans.configuration(name), hippocampus_reference["configurations"][name])
    assert list(plans.original_median_shape) == hippocampus_reference["original_median_shape_after_transp"][::-1]


def test_ct_plans_equal_nnunet(ct_dataset, ct_fingerprint, totalseg_reference, compare_plans):
    reference = totalseg_reference["plans"]
    plans = plan_dataset(ct_fingerprint, ct_dataset.info)
    assert set(plans.configuration_names) == set(reference["configurations"])
    for name in reference["configurations"]:
        compare_plans(plans.configuration(name), reference["configurations"][name])
    assert plans.configuration("3d_fullres").patch_size == (128, 112, 80)
    assert plans.configuration("2d").slice_axis == 2
    assert any("occur in no training case" in line for line in plans.extra["decisions"])


def _synthetic(spacings, shapes) -> Fingerprint:
    n = len(spacings)
    props = {
        0: {
            "mean": 0.0,
            "std": 1.0,
            "median": 0.0,
            "min": -1.0,
            "max": 1.0,
            "percentile_00_5": -1.0,
            "percentile_99_5": 1.0,
        }
    }
    return Fingerprint(
        tuple(f"c{i}" for i in range(n)),
        tuple(map(tuple, spacings)),
        tuple(map(tuple, shapes)),
        tuple(map(tuple, shapes)),
        props,
        {0: 10, 1: 5},
        1.0,
    )


INFO = DatasetInfo({0: "MRI"}, {"background": 0, "tumour": 1}, ".nii.gz", 3)


def test_anisotropic_brain_plans_in_plane_first():
    # the NRRD brain: 0.78 x 0.78 x 6.5 mm, 256 x 256 x 25 voxels
    fp = _synthetic([(0.78, 0.78, 6.5)] * 3, [(256, 256, 25)] * 3)
    plans = plan_dataset(fp, INFO)
    fullres = plans.configuration("3d_fullres")
    assert fullres.spacing == pytest.approx((0.78, 0.78, 6.5))
    assert fullres.architecture.kernel_sizes[0] == (3, 3, 1)  # no 3-wide kernel across coarse slices
    assert fullres.architecture.strides[1] == (2, 2, 1)  # no pooling along the coarse axis at first
    assert plans.configuration("2d").slice_axis == 2


def test_large_images_get_lowres_and_cascade():
    fp = _synthetic([(0.8, 0.8, 0.8)] * 10, [(400, 400, 400)] * 10)
    plans = plan_dataset(fp, INFO)
    assert {"3d_lowres", "3d_cascade_fullres"} <= set(plans.configuration_names)
    cascade = plans.configuration("3d_cascade_fullres")
    assert cascade.previous_stage == "3d_lowres" and cascade.patch_size == plans.configuration("3d_fullres").patch_size
    assert plans.configuration("3d_lowres").spacing[0] > 0.8
    assert plans.configuration("3d_lowres").next_stage == "3d_cascade_fullres"


def test_two_d_dataset_and_single_case():
    fp = _synthetic([(0.5, 0.5, 1.0)], [(512, 512, 1)])
    plans = plan_dataset(fp, INFO)
    assert plans.configuration_names == ("2d",)
    config = plans.configuration("2d")
    assert config.slice_axis == 2 and config.batch_size >= 2 and config.architecture.features_per_stage[-1] <= 512


def test_gpu_memory_budget_grows_patch_or_batch():
    fp = _synthetic([(1.0, 1.0, 1.0)] * 50, [(300, 300, 300)] * 50)
    small = plan_dataset(fp, INFO, PlanOptions(gpu_memory_gb=8)).configuration("3d_fullres")
    big = plan_dataset(fp, INFO, PlanOptions(gpu_memory_gb=40)).configuration("3d_fullres")
    assert np.prod(big.patch_size) * big.batch_size > np.prod(small.patch_size) * small.batch_size
    assert small.architecture.features_per_stage[-1] == 320


@pytest.mark.parametrize("preset", ["resenc_m", "resenc_l", "resenc_xl"])
def test_resenc_presets(preset):
    fp = _synthetic([(1.0, 1.0, 1.0)] * 50, [(300, 300, 300)] * 50)
    config = plan_dataset(fp, INFO, PlanOptions(preset=preset)).configuration("3d_fullres")
    assert config.architecture.block is Block.RESIDUAL
    assert config.architecture.blocks_per_stage[:4] == (1, 3, 4, 6)
    assert set(config.architecture.blocks_per_stage_decoder) == {1}


def test_bad_options_are_errors():
    with pytest.raises(PlansError, match="valid: default, resenc_m"):
        PlanOptions(preset="huge")
    with pytest.raises(PlansError, match="positive"):
        PlanOptions(gpu_memory_gb=-1)
    fp = _synthetic([(1.0, 1.0, 1.0)] * 2, [(300, 300, 300)] * 2)
    with pytest.raises(PlansError, match="GPU budget"):
        plan_dataset(fp, INFO, PlanOptions(gpu_memory_gb=1e-6))


def test_planning_is_deterministic(hippocampus, hippocampus_fingerprint):
    a = plan_dataset(hippocampus_fingerprint, hippocampus.info)
    b = plan_dataset(dataclasses.replace(hippocampus_fingerprint), hippocampus.info)
    assert a == b


def test_ct_without_any_foreground_is_an_error():
    fp = _synthetic([(1.0, 1.0, 1.0)] * 2, [(64, 64, 64)] * 2)
    nan = float("nan")
    empty = dataclasses.replace(fp, intensity_properties={0: dict.fromkeys(fp.intensity_properties[0], nan)})
    ct = DatasetInfo({0: "CT"}, {"background": 0, "organ": 1}, ".nii.gz", 2)
    with pytest.raises(PlansError, match="no training case has a foreground voxel"):
        plan_dataset(empty, ct)
    assert plan_dataset(empty, INFO).configuration("3d_fullres")  # z-score does not need them
