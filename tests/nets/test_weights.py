"""segkit weights files: safetensors with the spec in the metadata."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from torch import nn

from segkit.nets.errors import CheckpointError, NetsError, WeightsMismatchError
from segkit.nets.fusion import fuse
from segkit.nets.registry import build_network, build_with_weights, register_network
from segkit.nets.weights import load_weights, save_weights

from .test_unet import small_spec


def test_round_trip_reproduces_outputs(tmp_path: Path) -> None:
    torch.manual_seed(2)
    spec = small_spec(3, "residual", "batch")
    model = build_network(spec, 2, 3).eval()
    old_umask = os.umask(0o022)
    try:
        path = save_weights(model, spec, tmp_path / "weights.safetensors")
    finally:
        os.umask(old_umask)
    assert path.stat().st_mode & 0o777 == 0o644  # readable like any new file, not tempfile's 0600
    stored = load_weights(path)
    assert stored.spec == spec and (stored.in_channels, stored.num_classes) == (2, 3)
    again = stored.build()
    x = torch.randn(1, 2, 8, 6, 5)
    with torch.no_grad():
        assert torch.equal(model(x)[0], again(x)[0])
    assert not list(tmp_path.glob("*.tmp"))


def test_state_dict_needs_channel_counts(tmp_path: Path) -> None:
    spec = small_spec(2)
    state = build_network(spec, 1, 2).state_dict()
    with pytest.raises(NetsError, match="in_channels and num_classes"):
        save_weights(state, spec, tmp_path / "w.safetensors")
    save_weights(state, spec, tmp_path / "w.safetensors", in_channels=1, num_classes=2)
    assert load_weights(tmp_path / "w.safetensors").num_classes == 2


def test_fused_model_is_refused(tmp_path: Path) -> None:
    spec = small_spec(2, "rep", "batch")
    with pytest.raises(NetsError, match="fused"):
        save_weights(fuse(build_network(spec, 1, 2)), spec, tmp_path / "w.safetensors")


def test_mismatched_tensors_name_the_key(tmp_path: Path) -> None:
    spec = small_spec(3)
    state = build_network(spec, 1, 2).state_dict()
    state["decoder.heads.0.weight"] = torch.zeros(5, 8, 1, 1, 1)
    save_weights(state, spec, tmp_path / "w.safetensors", in_channels=1, num_classes=2)
    with pytest.raises(WeightsMismatchError, match=r"'decoder\.heads\.0\.weight' has shape \(5, 8, 1, 1, 1\)"):
        load_weights(tmp_path / "w.safetensors").build()


def test_not_a_weights_file(tmp_path: Path) -> None:
    (tmp_path / "x.safetensors").write_bytes(b"nope")
    with pytest.raises(CheckpointError):
        load_weights(tmp_path / "x.safetensors")
    with pytest.raises(CheckpointError, match="not found"):
        load_weights(tmp_path / "missing.safetensors")


def test_built_network_owns_float32_copies_of_half_weights() -> None:
    torch.manual_seed(3)
    spec = small_spec(3, "residual", "batch")
    model = build_network(spec, 1, 2).eval()
    half = {k: v.half() if v.is_floating_point() else v for k, v in model.state_dict().items()}
    built = build_with_weights(spec, 1, 2, half)
    assert not built.training
    for key, value in built.state_dict().items():
        assert value.device.type == "cpu" and value.dtype == model.state_dict()[key].dtype
        torch.testing.assert_close(value, half[key].to(value.dtype))
        assert value.data_ptr() != half[key].data_ptr()
    with torch.no_grad():
        built.decoder.heads[-1].weight.zero_()  # the caller's tensors stay as they were
    assert half["decoder.heads.0.weight"].abs().sum() > 0


class _WithScratch(nn.Module):
    """A network keeping a tensor outside its state dict (a non-persistent buffer)."""

    def __init__(self, spec, in_channels, num_classes):
        super().__init__()
        self.conv = nn.Conv3d(in_channels, num_classes, 1)
        self.register_buffer("scale", torch.full((1,), 2.0), persistent=False)

    def forward(self, x):
        return self.conv(x) * self.scale


def test_network_with_tensors_outside_its_state_dict_is_built_the_usual_way() -> None:
    register_network("test-scratch", _WithScratch, replace=True)
    spec = small_spec(3, network="test-scratch")
    state = _WithScratch(spec, 1, 2).state_dict()
    built = build_with_weights(spec, 1, 2, state)
    assert not built.scale.is_meta and built.scale.item() == 2.0
    x = torch.randn(1, 1, 4, 4, 4)
    expected = nn.functional.conv3d(x, state["conv.weight"], state["conv.bias"]) * 2
    torch.testing.assert_close(built(x), expected)


def test_the_same_weights_give_the_same_bytes(tmp_path: Path) -> None:
    """safetensors orders its header through a hash map; the file is written with sorted keys instead."""
    spec = small_spec(3, "residual", "batch")
    state = build_network(spec, 1, 2).state_dict()
    paths = [save_weights(state, spec, tmp_path / f"w{i}.safetensors", in_channels=1, num_classes=2) for i in range(6)]
    assert len({p.read_bytes() for p in paths}) == 1
    header_size = int.from_bytes(paths[0].read_bytes()[:8], "little")
    assert header_size % 8 == 0 and load_weights(paths[0]).num_classes == 2
