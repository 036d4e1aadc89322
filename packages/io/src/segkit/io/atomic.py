"""Atomic file creation: write to a temp file in the target folder, then rename."""

from __future__ import annotations

import contextlib
import os
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

from segkit.io.errors import FileWriteError

_TEMP_NAME = re.compile(r"^\..+\.[0-9a-f]{8}\.tmp")  # ``.NAME.<8 hex>.tmp[suffix]``, see `_reserve_temp_file`


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it onto ``path``.

    The temporary name keeps ``suffix`` (default: the full suffix of ``path``, e.g.
    ``.nii.gz``) so that format-by-extension writers behave. On any error the temporary
    file is removed and ``path`` is left untouched.

    Raises:
        FileWriteError: the folder is missing or read-only, or ``path`` is a folder.

    Example:
        >>> import tempfile, pathlib
        >>> target = pathlib.Path(tempfile.mkdtemp()) / "note.txt"
        >>> with atomic_path(target) as tmp:
        ...     _ = tmp.write_text("done")
        >>> target.read_text()
        'done'
    """
    path = Path(path)
    suffix = "".join(path.suffixes) if suffix is None else suffix
    try:
        tmp = _reserve_temp_file(path, suffix=f".tmp{suffix}")
    except OSError as err:
        raise FileWriteError(f"cannot write {path}: {err.strerror or err}") from err
    try:
        yield tmp
        try:
            os.replace(tmp, path)
        except OSError as err:
            raise FileWriteError(f"cannot write {path}: {err.strerror or err}") from err
    finally:
        tmp.unlink(missing_ok=True)


def is_temp_name(name: str) -> bool:
    """Whether ``name`` is the name of an `atomic_path` temporary file (one a killed write left behind)."""
    return _TEMP_NAME.match(name) is not None


def _reserve_temp_file(path: Path, *, suffix: str = ".tmp") -> Path:
    """Create an empty, uniquely named hidden file beside ``path`` and return its path.

    Unlike ``tempfile.mkstemp`` (always mode 0600), the file gets the mode the umask gives a new
    file, so that the result, once renamed onto ``path``, is as readable as any other file.
    """
    while True:
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}{suffix}")
        try:
            os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
        except FileExistsError:
            continue
        return tmp
