"""Training batches: batch ``k`` is a pure function of (seed, k), built in worker processes.

Every sample ``j`` of global batch ``k`` draws its case, patch and augmentation from its own seed
(seed, k, j), and position ``j`` alone decides whether it is centred on foreground. So a batch is the same
whatever the number of workers, after a resume, and when data-parallel ranks each build a slice of it.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from segkit.io.cpus import available_cpus
from segkit.train.augment import Augmenter
from segkit.train.data.sampling import choose_center, forced_foreground, patch_box, read_padded
from segkit.train.errors import DataWorkerError

log = logging.getLogger(__name__)
WORKER_TIMEOUT_S = 600
#: CPU counts up to which CPU training builds its batches in the main process (see `default_workers`)
SERIAL_DATA_CPUS = 2


@dataclass(frozen=True)
class BatchPlan:
    """What one rank builds: its slice [start, stop) of every global batch of `global_batch` samples."""

    global_batch: int
    start: int
    stop: int
    oversample_foreground: float
    seed: int
    ignore_label: int | None = None

    @classmethod
    def for_rank(cls, global_batch: int, rank: int, world: int, **kw) -> BatchPlan:
        """Split `global_batch` over `world` ranks as evenly as possible (the first ranks get the remainder)."""
        sizes = [global_batch // world + (1 if r < global_batch % world else 0) for r in range(world)]
        start = sum(sizes[:rank])
        return cls(global_batch, start, start + sizes[rank], **kw)


class PatchBatches(Dataset):
    """Map-style dataset: item ``k`` = this rank's part of global batch ``k`` (images, labels).

    With an `augmenter`, items are augmented patches (B, C, *patch); without, raw reads of the
    augmenter's input size (the GPU path augments batched on the device).
    """

    def __init__(self, store, case_ids: list[str], plan: BatchPlan, *, read_size: tuple[int, ...],
                 augmenter: Augmenter | None, slice_axis: int | None = None) -> None:
        self.store = store
        self.case_ids = list(case_ids)
        self.plan = plan
        self.read_size = tuple(read_size)
        self.slice_axis = slice_axis  # 2D: read_size is 3D with 1 on this axis, which is squeezed out
        self.augmenter = augmenter
        self.forced = forced_foreground(plan.global_batch, plan.oversample_foreground)

    def __len__(self) -> int:
        return 2**62

    def sample(self, k: int, j: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Build sample `j` of global batch `k`."""
        rng = np.random.default_rng([self.plan.seed, k, j])
        case_id = self.case_ids[int(rng.integers(len(self.case_ids)))]
        shape = self.store.shape(case_id)
        center = None
        if self.forced[j] or self.plan.ignore_label is not None:
            exclude = (self.plan.ignore_label,) if self.plan.ignore_label is not None else ()
            center = choose_center(self.store.class_locations(case_id), rng, exclude=exclude)
        low = patch_box(shape, self.read_size, rng, center=center)
        data, seg = read_padded(self.store, case_id, low, self.read_size)
        np.maximum(seg, 0, out=seg)  # -1 marks voxels outside the nonzero mask: background for training
        if self.slice_axis is not None:
            data, seg = data.squeeze(1 + self.slice_axis), seg.squeeze(1 + self.slice_axis)
        image = torch.from_numpy(np.ascontiguousarray(data))[None]
        labels = torch.from_numpy(np.ascontiguousarray(seg))[None]
        if self.augmenter is not None:
            gen = torch.Generator().manual_seed(int(rng.integers(2**62)))
            image, labels = self.augmenter(image, labels.long(), gen)
        return image[0], labels[0].to(torch.int16)

    def __getitem__(self, k: int) -> dict[str, torch.Tensor]:
        samples = [self.sample(k, j) for j in range(self.plan.start, self.plan.stop)]
        return {"image": torch.stack([s[0] for s in samples]), "seg": torch.stack([s[1] for s in samples])}


def _worker_init(_: int) -> None:
    torch.set_num_threads(1)


def default_workers(device: torch.device) -> int:
    """Data workers for training on ``device``, from the CPUs this process may use: all but one, at least one.

    Except for a network trained on the CPU with at most `SERIAL_DATA_CPUS` CPUs: there a worker takes cycles from
    the network's threads, which wait for each other, so the batches are built between steps (0 workers). On 2 CPUs
    three 40-iteration epochs of the hippocampus recipe took 156-161 s so, against 166-175 s with one worker.
    """
    cpus = available_cpus()
    if device.type == "cpu" and cpus <= SERIAL_DATA_CPUS:
        return 0
    return max(1, cpus - 1)


def iterate_batches(batches: PatchBatches, first: int, count: int, *, workers: int,
                    pin_memory: bool = False) -> Iterator[dict[str, torch.Tensor]]:
    """Return an iterator over batches `first` .. `first + count - 1`, built by `workers` processes (0 = here).

    The workers start now and the first batch is awaited here, so a caller's epoch clock does not count
    worker start-up. Workers are spawned, not forked: a fork copies locked thread pools (blosc2, OpenMP)
    and can hang.

    Raises:
        DataWorkerError: a worker died or produced nothing for WORKER_TIMEOUT_S seconds.
    """
    if workers == 0:
        return (batches[k] for k in range(first, first + count))
    loader = DataLoader(batches, batch_size=None, sampler=range(first, first + count), num_workers=workers,
                        worker_init_fn=_worker_init, prefetch_factor=4, pin_memory=pin_memory,
                        timeout=WORKER_TIMEOUT_S, multiprocessing_context="spawn")
    stream = _checked(iter(loader))
    head = next(stream, None)
    return stream if head is None else itertools.chain([head], stream)


def _checked(iterator: Iterator[dict[str, torch.Tensor]]) -> Iterator[dict[str, torch.Tensor]]:
    while True:
        try:
            batch = next(iterator)
        except StopIteration:
            return
        except (EOFError, ConnectionError) as err:  # the pipe to a killed worker closed mid-batch
            raise DataWorkerError(f"a data worker died: {type(err).__name__}") from err
        except RuntimeError as err:
            if "DataLoader" in str(err) or "worker" in str(err).lower():
                raise DataWorkerError(f"a data worker died or stalled: {str(err).splitlines()[0]}") from err
            raise
        yield batch
