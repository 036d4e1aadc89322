"""What every command needs: the registry, the weights store, consoles and progress bars."""

from __future__ import annotations

import logging
from collections.abc import Callable

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TransferSpeedColumn,
)

from segkit.io.console import output_console, progress_bars
from segtool.registry import ModelEntry, Registry, load_registry
from segtool.settings import weights_dir
from segtool.store import WeightsStore


def registry() -> Registry:
    """The registry shipped with segtool."""
    return load_registry()


def store() -> WeightsStore:
    """The weights store in ``$SEGTOOL_HOME`` (or the user data folder)."""
    return WeightsStore(weights_dir())


def out() -> Console:
    """Console for results (stdout)."""
    return output_console()


def show_messages(quiet: bool, verbose: bool = False) -> None:
    """Print segtool's log messages (download retries, weights without a registry checksum) on stderr as plain
    lines, or none of them when ``quiet``; ``verbose`` adds each step of a run with its time (`segtool.steps`)."""
    logger = logging.getLogger("segtool")
    logger.setLevel(logging.DEBUG if verbose else logging.ERROR if quiet else logging.INFO)
    if not any(isinstance(handler, _PlainLines) for handler in logger.handlers):
        logger.addHandler(_PlainLines())


class _PlainLines(logging.Handler):
    """Each message as one line on stderr, never wrapped (a path or a digest stays whole in a log)."""

    def emit(self, record: logging.LogRecord) -> None:
        # a new Console finds sys.stderr anew for each message (test runners swap it)
        Console(stderr=True, soft_wrap=True).print(self.format(record), markup=False, highlight=False)


def download_bars(quiet: bool) -> Progress:
    """Progress display for downloads (bytes, speed); disabled when ``quiet``."""
    return progress_bars(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                         quiet=quiet)


def step_bars(quiet: bool) -> Progress:
    """Progress display for counted steps (cases, tiles); disabled when ``quiet``."""
    return progress_bars(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                         quiet=quiet)


def progress_for(bars: Progress) -> Callable[[ModelEntry], Callable[[int, int | None], None]]:
    """Per-model download callbacks that drive one bar each on ``bars``, shown from the first bytes on (a model
    already installed downloads nothing, and shows no bar)."""

    def make(entry: ModelEntry) -> Callable[[int, int | None], None]:
        task = None

        def update(done: int, total: int | None) -> None:
            nonlocal task
            if task is None:
                task = bars.add_task(f"downloading {entry.name}", total=entry.size)
            bars.update(task, completed=done, total=total)

        return update

    return make
