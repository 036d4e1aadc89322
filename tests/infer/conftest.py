"""Fixtures of the infer tests: the genuine nnU-Net hippocampus model and its reference predictions, and small
segkit model folders with seeded random weights (for behaviour that no shared model has: 2D, regions)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from segkit.infer.archive import import_model_folder
from segkit.infer.predictor import PredictOptions, Predictor
from segkit.io.model_folder import ModelInfo, write_model_info
from segkit.nets import ArchitectureSpec, build_network, save_weights
from segkit.planning import Plans

REPO_ROOT = Path(__file__).resolve().parents[2]


def write_small_model_folder(folder: Path, *, configuration: str, patch_size: list[int], labels: dict,
                             folds: int = 1, slice_axis: int | None = None,
                             regions_class_order: list[int] | None = None) -> Path:
    """A hippocampus-like segkit model folder: a 2-stage U-Net (seeded random weights per fold), 1 mm spacing."""
    dims = len(patch_size)
    architecture = {"network": "unet", "dims": dims, "features_per_stage": [8, 16], "kernel_sizes": [[3] * dims] * 2,
                    "strides": [[1] * dims, [2] * dims], "blocks_per_stage": [1, 1], "blocks_per_stage_decoder": [1],
                    "block": "plain", "norm": "instance", "deep_supervision": False}
    config = {"data_identifier": configuration, "batch_size": 2, "patch_size": patch_size, "spacing": [1.0] * dims,
              "median_image_size_in_voxels": [35.0, 50.0, 35.0][:dims],
              "normalization_schemes": ["ZScoreNormalization"], "use_mask_for_norm": [False],
              "architecture": architecture}
    if slice_axis is not None:
        config["slice_axis"] = slice_axis
    folder.mkdir(parents=True)
    Plans(dataset_name="Dataset004_Hippocampus", configurations={configuration: config},
          foreground_intensity_properties_per_channel={}, original_median_spacing=(1.0, 1.0, 1.0),
          original_median_shape=(36.0, 50.0, 35.0)).save(folder / "plans.json")
    dataset = {"channel_names": {"0": "MRI"}, "labels": labels, "file_ending": ".nii.gz"}
    if regions_class_order is not None:
        dataset["regions_class_order"] = regions_class_order
    (folder / "dataset.json").write_text(json.dumps(dataset))
    spec = ArchitectureSpec.from_dict(architecture)
    outputs = len(labels) - (regions_class_order is not None)
    for fold in range(folds):
        torch.manual_seed(fold)
        (folder / f"fold_{fold}").mkdir()
        save_weights(build_network(spec, 1, outputs), spec, folder / f"fold_{fold}" / "weights.safetensors")
    info_labels = {k: tuple(v) if isinstance(v, list) else v for k, v in labels.items()}
    write_model_info(ModelInfo(trainer="test", configuration=configuration, folds=tuple(range(folds)),
                               labels=info_labels, mirroring_axes=tuple(range(dims))), folder)
    return folder


@pytest.fixture(scope="session")
def shipped_hippocampus_dir(tmp_path_factory) -> Path:
    """segtool's shipped hippocampus model (segkit's 16..128-feature U-Net, fold all, mirrored left-right only)."""
    registry = json.loads((REPO_ROOT / "weights_registry.json").read_text())
    (entry,) = registry["tasks"]["hippocampus"]["modes"]["default"]
    return import_model_folder(REPO_ROOT / entry["url"], tmp_path_factory.mktemp("shipped"))


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


@pytest.fixture
def four_d_prediction(hippocampus_dir: Path, tmp_path: Path) -> tuple[Path, Path]:
    """``(pred_dir, ref_dir)``: a real label map as reference, and as prediction the same map stored twice in one
    4D NIfTI (x, y, z, 2), as a probability or time-series export would be."""
    import nibabel as nib
    import numpy as np

    source = hippocampus_dir / "labelsTr" / "hippocampus_001.nii.gz"
    label = nib.load(source)
    data = np.asarray(label.dataobj)
    pred_dir, ref_dir = tmp_path / "pred4d", tmp_path / "ref"
    pred_dir.mkdir()
    ref_dir.mkdir()
    nib.save(label, ref_dir / source.name)
    nib.save(nib.Nifti1Image(np.stack([data, data], -1), label.affine), pred_dir / source.name)
    return pred_dir, ref_dir
