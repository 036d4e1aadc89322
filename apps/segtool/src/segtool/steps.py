"""The steps of a run and how long each took, logged for ``--verbose`` (the ``segtool`` logger at DEBUG level)."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator

logger = logging.getLogger("segtool.steps")


@contextlib.contextmanager
def step(what: str) -> Iterator[list[str]]:
    """Log ``what`` with the seconds the block took, plus any notes it appends to the list it is given (what it
    found: a shape, a box), at DEBUG level; a block that raises logs nothing."""
    notes: list[str] = []
    started = time.perf_counter()
    yield notes
    if logger.isEnabledFor(logging.DEBUG):
        logger.debug("%s%s: %.2f s", what, f" ({'; '.join(notes)})" if notes else "", time.perf_counter() - started)
