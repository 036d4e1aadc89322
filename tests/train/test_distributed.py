"""Data-parallel training with torchrun (2 processes, gloo, CPU) equals single-process training."""

import json
import os
import subprocess
import sys

import torch
from safetensors.torch import load_file

from segkit.train.run import RunOptions, train


def test_two_ranks_match_one_process(hippo_preprocessed, tmp_path):
    trainer = tmp_path / "fp32.json"
    trainer.write_text(json.dumps({"precision": "fp32"}))
    args = [str(hippo_preprocessed), "tiny", "0", "--device", "cpu", "--epochs", "2", "--iters-per-epoch", "2",
            "--val-iters-per-epoch", "1", "--workers", "0", "-tr", str(trainer), "--quiet"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           "-m", "segkit.train.cli", *args, "-o", str(tmp_path / "ddp")],
                          env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    single = train(hippo_preprocessed, "tiny", 0, RunOptions(output=tmp_path / "single", trainer=str(trainer),
                                                             device="cpu", epochs=2, iters_per_epoch=2,
                                                             val_iters_per_epoch=1, workers=0))
    a = load_file(tmp_path / "ddp" / "fold_0" / "weights.safetensors")
    b = load_file(single / "fold_0" / "weights.safetensors")
    assert set(a) == set(b)
    for key in a:
        assert torch.allclose(a[key], b[key], atol=1e-4, rtol=1e-3), key
    logs = [[json.loads(line) for line in (p / "fold_0" / "progress.jsonl").read_text().splitlines()]
            for p in (tmp_path / "ddp", single)]
    for x, y in zip(*logs, strict=False):
        assert abs(x["train_loss"] - y["train_loss"]) < 1e-4
        pairs = zip(x["pseudo_dice"], y["pseudo_dice"], strict=True)
        assert x["pseudo_dice"] == y["pseudo_dice"] or max(abs(p - q) for p, q in pairs) < 1e-3
    assert not list((tmp_path / "ddp").glob("fold_0/.checkpoint_latest.pt.*"))  # only rank 0 wrote, atomically
