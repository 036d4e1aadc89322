import os

import torch

from segkit.train.config import TrainConfig
from segkit.train.data.batches import BatchPlan, default_workers, iterate_batches
from segkit.train.setup import DataSetup, build_batches


def test_batches_are_a_function_of_their_index(hippo_preprocessed):
    config = TrainConfig()
    data = DataSetup.load(hippo_preprocessed, "tiny", 0, config)
    train, val, aug = build_batches(data, config)
    assert train[3]["image"].shape == (2, 1, 16, 24, 16) and train[3]["seg"].dtype == torch.int16
    serial = list(iterate_batches(train, 2, 3, workers=0))
    parallel = list(iterate_batches(train, 2, 3, workers=2))
    for a, b in zip(serial, parallel, strict=False):
        assert torch.equal(a["image"], b["image"]) and torch.equal(a["seg"], b["seg"])
    assert not torch.equal(serial[0]["image"], serial[1]["image"])
    assert (serial[0]["seg"][1] > 0).any()  # the last sample is centred on foreground


def test_ranks_build_slices_of_the_global_batch(hippo_preprocessed):
    config = TrainConfig()
    data = DataSetup.load(hippo_preprocessed, "tiny", 0, config)
    whole, _, _ = build_batches(data, config)
    parts = [build_batches(data, config, rank=r, world=2)[0][7] for r in range(2)]
    assert torch.equal(torch.cat([p["image"] for p in parts]), whole[7]["image"])
    assert BatchPlan.for_rank(5, 1, 2, oversample_foreground=0.33, seed=0) == BatchPlan(5, 3, 5, 0.33, 0)


def _children(pid: int) -> list[int]:
    from pathlib import Path

    out = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        out += [int(c) for c in (task / "children").read_text().split()]
    return out


def test_a_killed_worker_is_reported_not_waited_for(hippo_preprocessed):
    import os
    import signal

    import pytest

    from segkit.train.errors import DataWorkerError

    config = TrainConfig()
    data = DataSetup.load(hippo_preprocessed, "tiny", 0, config)
    train, _, _ = build_batches(data, config)
    before = set(_children(os.getpid()))
    stream = iterate_batches(train, 0, 10_000, workers=1)
    workers = [p for p in _children(os.getpid()) if p not in before]
    assert workers
    for pid in workers:
        os.kill(pid, signal.SIGKILL)
    with pytest.raises(DataWorkerError, match="worker"):
        for _ in range(200):
            next(stream)


def test_cpu_training_on_two_cpus_builds_batches_between_steps(monkeypatch):
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1})
    assert (default_workers(cpu), default_workers(cuda)) == (0, 1)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(8)))
    assert (default_workers(cpu), default_workers(cuda)) == (7, 7)
