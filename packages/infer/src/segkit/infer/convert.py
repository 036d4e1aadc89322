"""Convert an nnU-Net v2 result folder into a segkit model folder (safetensors weights, segkit plans)."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from segkit.infer.errors import ModelLoadError
from segkit.infer.model_folder import choose_folds, nnunet_configuration, nnunet_setup
from segkit.io.model_folder import NNUNET_CHECKPOINT, WEIGHTS_FILE, ModelInfo, fold_dir, write_model_info
from segkit.nets import ArchitectureSpec, load_nnunet_checkpoint, save_weights
from segkit.planning.plans import Plans


def _planning_architecture(spec: ArchitectureSpec) -> dict:
    return {"network": "unet", "dims": spec.dims, "features_per_stage": list(spec.features_per_stage),
            "kernel_sizes": [list(k) for k in spec.kernel_sizes], "strides": [list(s) for s in spec.strides],
            "blocks_per_stage": list(spec.blocks_per_stage),
            "blocks_per_stage_decoder": list(spec.blocks_per_stage_decoder), "block": spec.block.value,
            "norm": spec.norm.value, "deep_supervision": True}


def convert_nnunet_folder(source: str | os.PathLike, target: str | os.PathLike, *, folds=None,
                          checkpoint: str = NNUNET_CHECKPOINT) -> Path:
    """Write a segkit model folder with the same networks and settings as an nnU-Net v2 result folder.

    Only folders whose ``transpose_forward`` is the identity convert (segkit plans have no transposition).

    Raises:
        ModelLoadError: unsupported folder, missing folds, or the target exists.
    """
    source, target = Path(source), Path(target)
    if target.exists():
        raise ModelLoadError(f"{target} exists already")
    if not source.is_dir():
        raise ModelLoadError(f"nnU-Net result folder not found: {source}")
    chosen = choose_folds(source, folds, checkpoint)
    configuration = nnunet_configuration(source, fold_dir(source, chosen[0]) / checkpoint)
    setup, architecture, num_classes = nnunet_setup(source, configuration)
    plans_nn = json.loads((source / "plans.json").read_text())
    dataset = json.loads((source / "dataset.json").read_text())
    if setup.axis_permutation != (0, 1, 2):
        raise ModelLoadError(f"{source}: transpose_forward {plans_nn.get('transpose_forward')} cannot be converted")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        axes = None
        for fold in chosen:
            net, spec, info = load_nnunet_checkpoint(fold_dir(source, fold) / checkpoint, architecture,
                                                     in_channels=setup.in_channels, num_classes=num_classes)
            fold_dir(staging, fold).mkdir()
            save_weights(net, spec, fold_dir(staging, fold) / WEIGHTS_FILE)
            axes = info.mirroring_axes if axes is None else tuple(a for a in axes if a in info.mirroring_axes)
        config = {"data_identifier": setup.configuration, "batch_size": 2, "patch_size": list(setup.patch_size),
                  "spacing": list(setup.spacing), "median_image_size_in_voxels": [],
                  "normalization_schemes": [s.value for s in setup.normalization],
                  "use_mask_for_norm": list(setup.use_mask_for_norm), "architecture": _planning_architecture(spec),
                  "resampling": setup.resampling.to_dict()}
        if setup.slice_axis is not None:
            config["slice_axis"] = setup.slice_axis
        plans = Plans(dataset_name=str(plans_nn.get("dataset_name", source.parent.name)),
                      configurations={setup.configuration: config},
                      foreground_intensity_properties_per_channel=setup.intensity_stats,
                      original_median_spacing=tuple(plans_nn.get("original_median_spacing_after_transp", ())[::-1]),
                      original_median_shape=tuple(plans_nn.get("original_median_shape_after_transp", ())[::-1]),
                      plans_name=str(plans_nn.get("plans_name", "nnUNetPlans")))
        plans.save(staging / "plans.json")
        (staging / "dataset.json").write_text(json.dumps(dataset, indent=2))
        trainer = source.name.split("__")[0]
        write_model_info(ModelInfo(trainer=trainer, configuration=setup.configuration, folds=chosen,
                                   labels=dict(setup.labels), mirroring_axes=tuple(axes or ()),
                                   versions={"converted-from": "nnunetv2"}), staging)
        os.replace(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target
