"""nnU-Net v2 checkpoint import: our network with imported weights reproduces nnU-Net's own logits."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch

from segkit.nets.errors import ArchitectureSpecError, WeightsMismatchError
from segkit.nets.fusion import fuse
from segkit.nets.nnunet_import import load_nnunet_checkpoint, map_nnunet_key
from segkit.nets.spec import Block, Norm

from .conftest import architecture_of


def _reverse_spatial(array: np.ndarray) -> np.ndarray:
    """(b, c, z, y, x) in nnU-Net's order -> (b, c, i, j, k) in ours."""
    return np.ascontiguousarray(array.transpose(0, 1, 4, 3, 2))


def _max_rel_diff(model: torch.nn.Module, reference_dir: Path, name: str) -> float:
    x = np.load(reference_dir / "logits" / f"{name}_input.npy").astype(np.float32)
    ref = np.load(reference_dir / "logits" / f"{name}_logits.npy").astype(np.float32)
    with torch.no_grad():
        ours = model(torch.from_numpy(_reverse_spatial(x))).numpy()
    assert ours.shape == _reverse_spatial(ref).shape
    return float(np.abs(ours - _reverse_spatial(ref)).max() / np.abs(ref).max())


def test_hippocampus_logits_match_nnunet(hippocampus_model_dir: Path, nnunet_reference_dir: Path) -> None:
    model, spec, info = load_nnunet_checkpoint(
        hippocampus_model_dir / "fold_0" / "checkpoint_final.pth", architecture_of(hippocampus_model_dir),
        in_channels=1, num_classes=3)
    assert spec.block is Block.PLAIN and spec.norm is Norm.INSTANCE and not spec.deep_supervision
    assert info.trainer_name == "nnUNetTrainer_refShort" and info.weights_dtype == "float32"
    assert info.mirroring_axes == (0, 1, 2) and info.fold == "0"
    assert _max_rel_diff(model, nnunet_reference_dir, "hippocampus") < 1e-5
    assert _max_rel_diff(fuse(model), nnunet_reference_dir, "hippocampus") < 1e-5


def test_totalseg_fp16_logits_match_nnunet(totalseg_model_dir: Path, nnunet_reference_dir: Path) -> None:
    model, spec, info = load_nnunet_checkpoint(
        totalseg_model_dir / "fold_0" / "checkpoint_final.pth", architecture_of(totalseg_model_dir),
        in_channels=1, num_classes=118)
    assert spec.num_stages == 5 and spec.features_per_stage[-1] == 320
    assert info.weights_dtype == "float16" and info.fold == "all"
    # the reference logits are stored in float16: half an ulp at |13.7| is 0.0039, i.e. 2.9e-4 relative
    assert _max_rel_diff(model, nnunet_reference_dir, "ct_total_fast") < 1e-3


def test_anisotropic_axis_order_is_reversed() -> None:
    arch = {"network_class_name": "x.PlainConvUNet", "arch_kwargs": {
        "n_stages": 3, "features_per_stage": [4, 8, 16], "conv_op": "torch.nn.modules.conv.Conv3d",
        "kernel_sizes": [[1, 3, 3], [3, 3, 3], [3, 3, 3]], "strides": [[1, 1, 1], [1, 2, 2], [2, 2, 1]],
        "n_conv_per_stage": [1, 1, 1], "n_conv_per_stage_decoder": [1, 1], "conv_bias": True,
        "norm_op": "torch.nn.modules.instancenorm.InstanceNorm3d", "norm_op_kwargs": {"eps": 1e-5, "affine": True},
        "nonlin": "torch.nn.LeakyReLU", "nonlin_kwargs": {"inplace": True}}}
    from segkit.nets.nnunet_plans import spec_from_nnunet_architecture

    spec = spec_from_nnunet_architecture(arch)
    assert spec.kernel_sizes[0] == (3, 3, 1)
    assert spec.strides == ((1, 1, 1), (2, 2, 1), (1, 2, 2))


def test_wrong_architecture_names_first_mismatched_key(hippocampus_model_dir: Path) -> None:
    arch = copy.deepcopy(architecture_of(hippocampus_model_dir))
    arch["arch_kwargs"]["features_per_stage"] = [32, 64, 128, 320]
    with pytest.raises(WeightsMismatchError, match=r"'encoder\.stages\.3\.0\.convs\.0\.conv\.weight'.*\(256, 128"):
        load_nnunet_checkpoint(hippocampus_model_dir / "fold_0" / "checkpoint_final.pth", arch,
                               in_channels=1, num_classes=3)


def test_wrong_class_count_names_head_key(hippocampus_model_dir: Path) -> None:
    with pytest.raises(WeightsMismatchError, match=r"decoder\.seg_layers\.0\.weight"):
        load_nnunet_checkpoint(hippocampus_model_dir / "fold_0" / "checkpoint_final.pth",
                               architecture_of(hippocampus_model_dir), in_channels=1, num_classes=5)


def test_unsupported_plans_are_rejected(hippocampus_model_dir: Path) -> None:
    arch = copy.deepcopy(architecture_of(hippocampus_model_dir))
    arch["network_class_name"] = "dynamic_network_architectures.architectures.primus.Primus"
    with pytest.raises(ArchitectureSpecError, match="PlainConvUNet"):
        load_nnunet_checkpoint(hippocampus_model_dir / "fold_0" / "checkpoint_final.pth", arch,
                               in_channels=1, num_classes=3)


@pytest.mark.parametrize(("key", "expected"), [
    ("encoder.stages.2.0.convs.1.norm.weight", "encoder.stages.2.1.norm.weight"),
    ("encoder.stem.convs.0.conv.weight", "encoder.stem.conv.weight"),
    ("encoder.stages.1.blocks.0.skip.1.norm.running_var", "encoder.stages.1.0.skip_proj.norm.running_var"),
    ("encoder.stages.0.blocks.2.conv2.conv.bias", "encoder.stages.0.2.conv2.conv.bias"),
    ("decoder.transpconvs.0.weight", "decoder.upsamplers.0.weight"),
    ("decoder.seg_layers.3.bias", "decoder.heads.3.bias"),
    ("decoder.encoder.stages.0.0.convs.0.conv.weight", None),
    ("encoder.stages.0.0.convs.0.all_modules.0.weight", None),
])
def test_key_mapping(key: str, expected: str | None) -> None:
    assert map_nnunet_key(key) == expected
