"""Load the weights of an nnU-Net v2 checkpoint (PlainConvUNet / ResidualEncoderUNet) into a segkit UNet.

The imported network works in segkit's axis order: the spec's per-axis lists are reversed (see
`nnunet_plans`) and every conv / transposed-conv kernel has its spatial dimensions reversed too. A conv
is equivariant under an axis permutation when its kernel, stride and padding are permuted alike, and
instance/batch norm do not care about the spatial order, so for an input `x` in nnU-Net's order,
``ours(x.permute(reversed spatial)) == nnunet(x).permute(reversed spatial)``.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from segkit.nets.checkpoint import read_checkpoint
from segkit.nets.errors import CheckpointError
from segkit.nets.nnunet_plans import spec_from_nnunet_architecture
from segkit.nets.registry import build_with_weights
from segkit.nets.spec import ArchitectureSpec

logger = logging.getLogger(__name__)

# nnU-Net key -> segkit key; keys under `all_modules` and `decoder.encoder` are nnU-Net's aliases of others.
_KEY_RULES = (
    (re.compile(r"^encoder\.stages\.(\d+)\.0\.convs\.(\d+)\.(conv|norm)\."), r"encoder.stages.\1.\2.\3."),
    (re.compile(r"^encoder\.stem\.convs\.0\.(conv|norm)\."), r"encoder.stem.\1."),
    (re.compile(r"^encoder\.stages\.(\d+)\.blocks\.(\d+)\.(conv1|conv2)\.(conv|norm)\."),
     r"encoder.stages.\1.\2.\3.\4."),
    (re.compile(r"^encoder\.stages\.(\d+)\.blocks\.(\d+)\.skip\.\d+\.(conv|norm)\."),
     r"encoder.stages.\1.\2.skip_proj.\3."),
    (re.compile(r"^decoder\.stages\.(\d+)\.convs\.(\d+)\.(conv|norm)\."), r"decoder.stages.\1.\2.\3."),
    (re.compile(r"^decoder\.transpconvs\."), "decoder.upsamplers."),
    (re.compile(r"^decoder\.seg_layers\."), "decoder.heads."),
)


@dataclass(frozen=True)
class NnunetCheckpointInfo:
    """The non-tensor facts of an nnU-Net checkpoint; mirroring axes in both axis orders."""

    trainer_name: str
    configuration: str | None
    fold: str | None
    current_epoch: int | None
    mirroring_axes: tuple[int, ...]
    mirroring_axes_nnunet: tuple[int, ...]
    weights_dtype: str


def _is_alias(key: str) -> bool:
    return ".all_modules." in key or key.startswith("decoder.encoder.")


def map_nnunet_key(key: str) -> str | None:
    """Return the segkit state-dict key for an nnU-Net key, or None for nnU-Net's alias keys."""
    if _is_alias(key):
        return None
    for pattern, repl in _KEY_RULES:
        new, count = pattern.subn(repl, key)
        if count:
            return new
    return key


def convert_state_dict(weights: dict[str, torch.Tensor], dims: int) -> dict[str, torch.Tensor]:
    """Rename nnU-Net's keys to ours and reverse the spatial kernel axes of conv weights (segkit order)."""
    spatial = list(range(2, 2 + dims))
    order = [0, 1] + spatial[::-1]
    out = {}
    for key, tensor in weights.items():
        new = map_nnunet_key(key)
        if new is None:
            continue
        if not isinstance(tensor, torch.Tensor):
            raise CheckpointError(f"nnU-Net network_weights[{key!r}] is a {type(tensor).__name__}, not a tensor")
        out[new] = tensor.permute(order) if tensor.dim() == 2 + dims and key.endswith("weight") else tensor
    return out


def checkpoint_configuration(checkpoint_path: str | Path) -> str | None:
    """The configuration (``3d_fullres``...) an nnU-Net v2 checkpoint was trained as, None when it does not say.

    Raises:
        CheckpointError: unreadable or unsafe checkpoint.
    """
    configuration = _init_args(read_checkpoint(checkpoint_path)).get("configuration")
    return configuration if isinstance(configuration, str) and configuration else None


def _init_args(ckpt: dict[str, Any]) -> dict[str, Any]:
    """The trainer's constructor arguments that nnU-Net stores (plans, configuration, fold, dataset_json)."""
    return ckpt.get("init_args") if isinstance(ckpt.get("init_args"), dict) else {}


def _info(ckpt: dict[str, Any], dims: int, dtype: str) -> NnunetCheckpointInfo:
    init_args = _init_args(ckpt)
    axes = tuple(int(a) for a in (ckpt.get("inference_allowed_mirroring_axes") or ()))
    epoch = ckpt.get("current_epoch")
    fold = init_args.get("fold")
    return NnunetCheckpointInfo(
        trainer_name=str(ckpt.get("trainer_name", "")),
        configuration=init_args.get("configuration"),
        fold=None if fold is None else str(fold),
        current_epoch=None if epoch is None else int(epoch),
        mirroring_axes=tuple(sorted(dims - 1 - a for a in axes)),
        mirroring_axes_nnunet=axes,
        weights_dtype=dtype,
    )


def load_nnunet_checkpoint(checkpoint_path: str | Path, plans_config_architecture: dict[str, Any], *,
                           in_channels: int, num_classes: int) -> tuple[nn.Module, ArchitectureSpec,
                                                                         NnunetCheckpointInfo]:
    """Build our network from nnU-Net plans and load an nnU-Net v2 checkpoint's weights into it.

    Args:
        checkpoint_path: ``fold_K/checkpoint_final.pth`` (fp32 or fp16 tensors; read with weights_only).
        plans_config_architecture: ``plans["configurations"][configuration]["architecture"]``.
        in_channels: number of input channels (modalities).
        num_classes: number of network outputs (labels incl. background, or regions).

    Returns:
        (model in eval mode, float32, segkit axis order, deep supervision off; its spec; checkpoint info).

    Raises:
        CheckpointError: unreadable or unsafe checkpoint, or no ``network_weights``.
        WeightsMismatchError: the tensors do not fit the architecture (names the first mismatched key).
        ArchitectureSpecError: the plans describe something we do not support.
    """
    spec = spec_from_nnunet_architecture(plans_config_architecture)
    ckpt = read_checkpoint(checkpoint_path)
    weights = ckpt.get("network_weights")
    if not isinstance(weights, dict) or not weights:
        raise CheckpointError(f"{checkpoint_path}: no 'network_weights' dict; is this an nnU-Net v2 checkpoint?")
    state = convert_state_dict(weights, spec.dims)
    source_keys = {map_nnunet_key(k): k for k in weights if map_nnunet_key(k) is not None}
    model = build_with_weights(spec, in_channels, num_classes, state, source_keys=source_keys)
    dtype = str(next(iter(weights.values())).dtype).replace("torch.", "")
    info = _info(ckpt, spec.dims, dtype)
    logger.info("loaded nnU-Net checkpoint %s (%s, %s weights)", checkpoint_path, info.trainer_name, dtype)
    return model, spec, info
