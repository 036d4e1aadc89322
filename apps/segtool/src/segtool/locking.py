"""Inter-process exclusive locks on lock files (so two segtool processes never clash).

``flock`` where there is one; on Windows, ``msvcrt.locking`` on the file's first byte, tried every 0.1 s.
(filelock, the library, was tried: its 4.x retries forever where the lock file cannot be created, e.g. on a
read-only weights folder, where this module fails at once with the ``OSError`` that segtool reports in one line.)
"""

from __future__ import annotations

import contextlib
import errno
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None
    import msvcrt

_TAKEN = (errno.EACCES, errno.EDEADLOCK)  #: how msvcrt.locking says another process holds the byte
_RETRY_S = 0.1


@contextlib.contextmanager
def exclusive_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created if needed) for the ``with`` block; waits if taken."""
    with open(path, "a") as handle:
        _lock(handle)
        try:
            yield
        finally:
            _unlock(handle)


def _lock(handle: IO) -> None:
    if fcntl is not None:
        fcntl.flock(handle, fcntl.LOCK_EX)
        return
    handle.seek(0)
    while True:  # not LK_LOCK, whose 10 s of tries in C would not see Ctrl+C
        try:
            msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
            return
        except OSError as err:
            if err.errno not in _TAKEN:
                raise
        time.sleep(_RETRY_S)


def _unlock(handle: IO) -> None:
    if fcntl is not None:
        fcntl.flock(handle, fcntl.LOCK_UN)
        return
    handle.seek(0)
    msvcrt.locking(handle.fileno(), msvcrt.LK_UNLCK, 1)
