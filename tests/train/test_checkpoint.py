"""Checkpoints: a corrupt or truncated file is named in one line, never with advice to unpickle code."""

import logging

import pytest
import torch

from segkit.train.checkpoint import LATEST, PREVIOUS, load_newest, read_checkpoint_file, save_checkpoint
from segkit.train.errors import ResumeError


def _two_checkpoints(folder):
    save_checkpoint(folder, {"epoch": 1, "weights": torch.arange(4000.0)})
    save_checkpoint(folder, {"epoch": 2, "weights": torch.arange(4000.0)})
    return folder / LATEST, folder / PREVIOUS


@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_a_damaged_checkpoint_is_one_line(tmp_path, damage):
    latest, _ = _two_checkpoints(tmp_path)
    whole = latest.read_bytes()
    latest.write_bytes(whole[: len(whole) // 2] if damage == "truncated" else bytes(range(256)) * 40)
    with pytest.raises(ResumeError) as caught:
        read_checkpoint_file(latest)
    assert str(caught.value) == f"{latest}: corrupt or truncated checkpoint"


def test_load_newest_warns_only_when_it_falls_back(tmp_path, caplog):
    latest, previous = _two_checkpoints(tmp_path)
    latest.write_bytes(b"truncated by a crash")
    with caplog.at_level(logging.WARNING, logger="segkit.train.checkpoint"):
        assert load_newest(tmp_path)["epoch"] == 1
    assert caplog.messages == [f"{latest}: corrupt or truncated checkpoint; resuming from {PREVIOUS}"]
    caplog.clear()
    previous.write_bytes(bytes(range(256)) * 8)
    with caplog.at_level(logging.WARNING, logger="segkit.train.checkpoint"), pytest.raises(ResumeError) as caught:
        load_newest(tmp_path)
    assert caplog.messages == []  # the error names both files, once
    message = str(caught.value)
    assert message.count("corrupt or truncated checkpoint") == 2 and "\n" not in message
    assert "weights_only" not in message and "train without --resume to start over" in message
