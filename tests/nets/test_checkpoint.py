"""Safe checkpoint reading: plain data loads, pickled code is refused."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from segkit.nets.checkpoint import read_checkpoint
from segkit.nets.errors import CheckpointError


class _Evil:
    def __reduce__(self):
        return (os.system, ("touch PWNED_BY_CHECKPOINT",))


def test_reads_nnunet_checkpoint_facts(hippocampus_model_dir: Path) -> None:
    ckpt = read_checkpoint(hippocampus_model_dir / "fold_0" / "checkpoint_final.pth")
    assert ckpt["trainer_name"] == "nnUNetTrainer_refShort"
    assert tuple(ckpt["inference_allowed_mirroring_axes"]) == (0, 1, 2)
    assert ckpt["network_weights"]["decoder.seg_layers.2.weight"].shape == (3, 32, 1, 1, 1)


def test_refuses_code_in_pickle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "evil.pth"
    torch.save({"network_weights": {}, "payload": _Evil()}, path, pickle_protocol=2)
    with pytest.raises(CheckpointError, match="allow-list"):
        read_checkpoint(path)
    assert not (tmp_path / "PWNED_BY_CHECKPOINT").exists()


def test_missing_and_corrupt_files(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="not found"):
        read_checkpoint(tmp_path / "nope.pth")
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"this is not a checkpoint")
    with pytest.raises(CheckpointError):
        read_checkpoint(bad)
