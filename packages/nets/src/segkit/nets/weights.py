"""segkit's own weights format: safetensors, with the spec and channel counts in the file's metadata."""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save
from torch import nn

from segkit.nets.errors import CheckpointError, NetsError
from segkit.nets.registry import build_with_weights
from segkit.nets.spec import ArchitectureSpec

FORMAT = "segkit-nets-weights/1"


@dataclass(frozen=True)
class StoredWeights:
    """The content of a weights file: tensors, the spec they belong to, in/out channel counts."""

    state_dict: dict[str, torch.Tensor]
    spec: ArchitectureSpec
    in_channels: int
    num_classes: int

    def build(self) -> nn.Module:
        """Build the network from the spec and load the tensors into it (eval mode, float32)."""
        return build_with_weights(self.spec, self.in_channels, self.num_classes, self.state_dict)


def save_weights(model_or_state: nn.Module | dict[str, torch.Tensor], spec: ArchitectureSpec, path: str | Path, *,
                 in_channels: int | None = None, num_classes: int | None = None) -> Path:
    """Write weights atomically as safetensors, with spec and channel counts in the metadata.

    Args:
        model_or_state: an unfused network from `build_network`, or its state dict.
        spec: the spec the weights belong to.
        path: target file (conventionally ``weights.safetensors``).
        in_channels: needed for a state dict; read from the model otherwise.
        num_classes: needed for a state dict; read from the model otherwise.

    Returns:
        The written path.

    Raises:
        NetsError: a fused model (its tensors no longer match the spec) or missing channel counts.
    """
    if isinstance(model_or_state, nn.Module):
        if getattr(model_or_state, "is_fused", False):
            raise NetsError("save_weights: got a fused model; save the unfused one (fusing is done at load time)")
        in_channels = in_channels or getattr(model_or_state, "in_channels", None)
        num_classes = num_classes or getattr(model_or_state, "num_classes", None)
        state = model_or_state.state_dict()
    else:
        state = model_or_state
    if not in_channels or not num_classes:
        raise NetsError("save_weights: pass in_channels and num_classes with a state dict")
    tensors = {k: v.detach().cpu().contiguous() for k, v in state.items()}
    meta = {"format": FORMAT, "spec": json.dumps(spec.to_dict()), "in_channels": str(int(in_channels)),
            "num_classes": str(int(num_classes))}
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")  # segkit.io.atomic's naming: a stale one is found
    try:
        with open(tmp, "xb") as handle:  # the mode the umask gives any new file
            _write_reproducibly(handle, tensors, meta)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def _write_reproducibly(handle: BinaryIO, tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> None:
    """Write the safetensors file of ``tensors``, byte for byte the same for the same input.

    safetensors orders the JSON header (the metadata, the tensor entries) through a hash map, so the same weights
    gave other bytes, and another sha256, on every save. The header is written again with sorted keys, padded
    with spaces to a multiple of 8 bytes as the format asks; the tensor data follows unchanged.
    """
    data = memoryview(save(tensors, metadata=metadata))
    size = int.from_bytes(data[:8], "little")
    header = json.dumps(json.loads(bytes(data[8:8 + size])), separators=(",", ":"), sort_keys=True).encode()
    header += b" " * (-len(header) % 8)
    handle.write(len(header).to_bytes(8, "little"))
    handle.write(header)
    handle.write(data[8 + size:])


def load_weights(path: str | Path) -> StoredWeights:
    """Read a file written by `save_weights`.

    Raises:
        CheckpointError: missing file, not safetensors, or metadata without a segkit spec.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"weights file not found: {path}")
    try:
        with safe_open(str(path), framework="pt") as handle:
            meta = handle.metadata() or {}
        state = load_file(str(path))
    except (SafetensorError, OSError) as err:
        raise CheckpointError(f"{path} is not a safetensors file: {err}") from err
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{path}: expected metadata format {FORMAT!r}, found {meta.get('format')!r}")
    spec = ArchitectureSpec.from_dict(json.loads(meta["spec"]))
    return StoredWeights(state_dict=state, spec=spec, in_channels=int(meta["in_channels"]),
                         num_classes=int(meta["num_classes"]))
