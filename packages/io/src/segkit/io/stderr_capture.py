"""Hold back what native code (ITK, GDCM, MetaIO) writes straight to file descriptor 2."""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator

_LOCK = threading.RLock()  # fd 2 is process-wide: one capture at a time (nesting in one thread is fine)


@contextlib.contextmanager
def captured_stderr() -> Iterator[Callable[[], str]]:
    """Send fd 2 to a temp file while the block runs; yield a function that returns the text so far.

    Text the block did not ask for (it succeeded) is written back to stderr afterwards, so
    that nothing is lost, e.g. what another thread printed meanwhile. Text it asked for (to
    put in an error message) is dropped.

    Example:
        >>> with captured_stderr() as text:
        ...     _ = os.write(2, b"native noise\\n")
        ...     text()
        'native noise\\n'
    """
    asked = False

    def text() -> str:
        nonlocal asked
        asked = True
        _flush()
        sink.seek(0)
        return sink.read().decode(errors="replace")

    with _LOCK, tempfile.TemporaryFile() as sink:
        _flush()
        try:
            saved = os.dup(2)
        except OSError:  # no fd 2 (closed): nothing to hold back
            yield lambda: ""
            return
        os.dup2(sink.fileno(), 2)
        try:
            yield text
        finally:
            _flush()
            os.dup2(saved, 2)
            os.close(saved)
            if not asked:
                sink.seek(0)
                _write_all(2, sink.read())


def _flush() -> None:
    if sys.stderr is not None:
        sys.stderr.flush()


def _write_all(fd: int, data: bytes) -> None:
    while data:
        data = data[os.write(fd, data):]
