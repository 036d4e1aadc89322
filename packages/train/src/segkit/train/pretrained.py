"""Fine-tuning: load matching weights from a pretrained model, leaving the segmentation heads fresh."""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch import nn

from segkit.nets import NetsError, load_weights, read_checkpoint
from segkit.nets.nnunet_import import convert_state_dict
from segkit.train.errors import PretrainedError

log = logging.getLogger(__name__)
HEAD_PREFIX = "decoder.heads."
ACCEPTED = ("a fold's weights.safetensors or checkpoint_latest.pt (segkit), or nnU-Net v2's checkpoint_final.pth / "
            "checkpoint_best.pth")


def _read_state(path: Path, dims: int) -> dict[str, torch.Tensor]:
    if path.suffix == ".safetensors":
        return load_weights(path).state_dict
    state = read_checkpoint(path)
    if isinstance(state, dict) and isinstance(state.get("network_weights"), dict):  # nnU-Net v2 checkpoint
        return convert_state_dict(state["network_weights"], dims)
    for key in ("model", "state_dict"):
        if isinstance(state, dict) and key in state and isinstance(state[key], dict):
            return state[key]
    return state


def load_pretrained(model: nn.Module, path: str | Path) -> list[str]:
    """Copy every weight of `path` except the segmentation heads into `model`; return the loaded keys.

    Accepts segkit weights (``.safetensors``), segkit training checkpoints and nnU-Net v2 checkpoints
    (``checkpoint_final.pth``: keys and axis order converted by segkit.nets).

    Raises:
        PretrainedError: missing/unreadable file, a key the model lacks, or a tensor of another shape.
    """
    path = Path(path)
    if path.is_dir():
        raise PretrainedError(f"{path} is a folder; pretrained weights are one file: {ACCEPTED}")
    if not path.is_file():
        raise PretrainedError(f"pretrained weights not found: {path} (expected {ACCEPTED})")
    try:
        source = _read_state(path, model.spec.dims if hasattr(model, "spec") else 3)
    except NetsError as err:
        raise PretrainedError(f"{path}: {err}") from err
    target = model.state_dict()
    body = {k: v for k, v in source.items() if not k.startswith(HEAD_PREFIX)}
    missing = sorted(set(target) - set(body) - {k for k in target if k.startswith(HEAD_PREFIX)})
    if missing:
        raise PretrainedError(f"{path}: {len(missing)} network weights missing from the pretrained file "
                              f"(first: {missing[0]}); was it trained with the same plans architecture?")
    for key, value in body.items():
        if key not in target:
            raise PretrainedError(f"{path}: weight {key!r} does not exist in this network")
        if tuple(value.shape) != tuple(target[key].shape):
            raise PretrainedError(f"{path}: weight {key!r} has shape {tuple(value.shape)}, the network expects "
                                  f"{tuple(target[key].shape)}")
    model.load_state_dict({**target, **{k: v.to(target[k].dtype) for k, v in body.items()}})
    log.info("loaded %d pretrained tensors from %s (segmentation heads re-initialized)", len(body), path)
    return sorted(body)
