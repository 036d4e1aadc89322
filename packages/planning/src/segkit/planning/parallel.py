"""Map a function over cases in worker processes, with bounded memory and no silent hangs."""

from __future__ import annotations

import logging
import multiprocessing
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import TypeVar

from segkit.planning.errors import WorkerError

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")


def _init_worker() -> None:
    # One torch thread per worker: the workers already use every CPU, and a forked child must
    # not enter the parent's OpenMP pool. Torch is not imported here if the parent did not.
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(1)


def map_cases(
    function: Callable[[T], R],
    items: Sequence[T],
    *,
    workers: int,
    names: Sequence[str] | None = None,
    in_flight: int = 2,
) -> Iterator[tuple[int, R]]:
    """Yield ``(index, function(items[index]))`` as results complete, in any order.

    At most ``in_flight * workers`` items are submitted at a time, so results never pile up
    in memory. ``workers == 1`` runs in this process.

    Args:
        function: a module-level (picklable) function of one item.
        items: the work items.
        workers: number of processes.
        names: a name per item for error messages (default: the index).
        in_flight: submitted-but-unfinished items per worker.

    Raises:
        WorkerError: a worker process died (e.g. killed for lack of memory); the message
            names the case being processed.
    """
    if workers <= 1 or len(items) <= 1:
        for index, item in enumerate(items):
            yield index, function(item)
        return
    context = multiprocessing.get_context("fork" if os.name == "posix" else "spawn")
    workers = min(workers, len(items))
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker) as pool:
        yield from _drain(pool, function, items, limit=in_flight * workers, names=names)


def _drain(
    pool: ProcessPoolExecutor,
    function: Callable[[T], R],
    items: Sequence[T],
    *,
    limit: int,
    names: Sequence[str] | None,
) -> Iterator[tuple[int, R]]:
    pending: dict[Future, int] = {}
    queue: Iterable[int] = iter(range(len(items)))

    def submit(index: int) -> None:
        try:
            pending[pool.submit(function, items[index])] = index
        except BrokenProcessPool:  # a worker died: the future of the item it held reports it below
            if not pending:
                raise WorkerError(_death_message([], names)) from None

    for index in queue:
        submit(index)
        if len(pending) >= limit:
            break
    while pending:
        done, _ = wait(pending, return_when=FIRST_COMPLETED)
        for future in sorted(done, key=pending.__getitem__):
            index = pending.pop(future)
            try:
                result = future.result()
            except BrokenProcessPool as err:
                raise WorkerError(_death_message([index, *_unfinished(pending)], names)) from err
            yield index, result
            next_index = next(queue, None)
            if next_index is not None:
                submit(next_index)


def _unfinished(pending: dict[Future, int]) -> list[int]:
    return [index for future, index in pending.items() if not future.done() or future.exception() is not None]


def _death_message(suspects: list[int], names: Sequence[str] | None) -> str:
    """When a worker dies, every unfinished item fails with it; the one it held is among them (if any is left)."""
    listed = ", ".join(names[i] if names is not None else str(i) for i in sorted(suspects))
    where = ""
    if suspects:
        where = f" while processing {'one of ' if len(suspects) > 1 else ''}{listed}"
    return f"a worker process died{where} (out of memory?); rerun with fewer workers"
