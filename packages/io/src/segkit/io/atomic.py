"""Atomic file creation: write to a temp file in the target folder, then rename."""

from __future__ import annotations

import contextlib
import json
import os
import re
import stat
import tempfile
import uuid
from collections.abc import Collection, Iterator
from pathlib import Path

from segkit.io.errors import FileWriteError

_TEMP_NAME = re.compile(r"^\..+\.[0-9a-f]{8}\.tmp")  # ``.NAME.<8 hex>.tmp[suffix]``, see `_reserve_temp_file`
_KINDS = {stat.S_ISDIR: "a folder", stat.S_ISCHR: "a character device", stat.S_ISBLK: "a block device",
          stat.S_ISFIFO: "a FIFO (named pipe)", stat.S_ISSOCK: "a socket"}


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it onto ``path``.

    The temporary name keeps ``suffix`` (default: the full suffix of ``path``, e.g.
    ``.nii.gz``) so that format-by-extension writers behave. On any error the temporary
    file is removed and ``path`` is left untouched. A symlink ``path`` stays a link: the file
    it points to is replaced (see `write_target`).

    Raises:
        FileWriteError: the folder is missing or read-only, or ``path`` exists but is not a
            regular file (a folder, device, FIFO or socket).

    Example:
        >>> import tempfile, pathlib
        >>> target = pathlib.Path(tempfile.mkdtemp()) / "note.txt"
        >>> with atomic_path(target) as tmp:
        ...     _ = tmp.write_text("done")
        >>> target.read_text()
        'done'
    """
    path = write_target(path)
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


def writable_folder(folder: str | os.PathLike) -> Path:
    """Create ``folder`` if needed and check that files can be written into it; return it.

    Raises:
        FileWriteError: it cannot be created or written (read-only, a file in the way).
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise FileWriteError(f"output folder {folder} is a file; give a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".segkit-write-test-"):
            pass
    except OSError as err:
        raise FileWriteError(f"output folder {folder} is not writable ({err.strerror or err})") from err
    return folder


def writable_json_file(path: str | os.PathLike) -> Path:
    """Check, before any work, that a JSON result can be written at ``path``; return it.

    The name must end in ``.json`` (a result written over a label map or image would lose it) and must not be a
    folder. Its folder is checked by `writable_folder` where it exists; where it does not, the nearest existing
    folder above it must be one that can be written, and the writer creates it (nothing is left behind if the work
    fails first).

    Raises:
        FileWriteError: another suffix, a folder at ``path``, or a folder that cannot be written or created.
    """
    path = Path(path)
    if path.is_dir():
        raise FileWriteError(f"{path} is a folder; name a .json file in it")
    if path.suffix.lower() != ".json":
        raise FileWriteError(f"{path}: name a .json file for this result (a file of another kind there would be "
                             "replaced)")
    existing = next(folder for folder in (path.parent.absolute(), *path.parent.absolute().parents) if folder.exists())
    if existing == path.parent.absolute() or not existing.is_dir():
        writable_folder(existing)  # a file in the way is reported as such
    elif not os.access(existing, os.W_OK | os.X_OK):
        raise FileWriteError(f"output folder {path.parent} cannot be created: {existing} is not writable")
    return path


def write_json(data: object, path: str | os.PathLike, *, indent: int | None = 2) -> Path:
    """Write ``data`` as JSON at ``path`` atomically (`atomic_path`), creating its folder first; return the path.

    The counterpart of `writable_json_file`, which checks the place before the work and leaves the folder to this.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise FileWriteError(f"cannot create {path.parent}: {err.strerror or err}") from err
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=indent))
    return path


@contextlib.contextmanager
def output_folder(folder: str | os.PathLike, *, side_files: Collection[str] = ()) -> Iterator[Path]:
    """Yield ``folder`` (created and checked by `writable_folder`); if the block fails having written nothing there
    but ``side_files`` (names, such as ``dataset.json``), remove what this run created: those files, then the folders.

    Files that were there before, and any other file written (a finished case), are kept.
    """
    folder = Path(folder)
    missing = [p for p in (folder, *folder.parents) if not p.exists()]  # the folders this run creates
    before = set() if missing or not folder.is_dir() else {p.name for p in folder.iterdir()}
    out = writable_folder(folder)
    try:
        yield out
    except BaseException:
        new = [p for p in out.iterdir() if p.name not in before]
        if all(p.name in side_files for p in new):
            for path in new:
                path.unlink(missing_ok=True)
            for path in missing:  # deepest first; stops at a folder that is not empty
                with contextlib.suppress(OSError):
                    path.rmdir()
        raise


def write_target(path: str | os.PathLike) -> Path:
    """Return the file that writing to ``path`` should replace: ``path``, or the file a symlink points to.

    Raises:
        FileWriteError: ``path`` exists but is not a regular file (a folder, device, FIFO or socket).
    """
    path = Path(path)
    target = Path(os.path.realpath(path)) if path.is_symlink() else path
    try:
        mode = target.stat().st_mode
    except FileNotFoundError:
        return target
    except OSError as err:
        raise FileWriteError(f"cannot write {path}: {err.strerror or err}") from err
    kind = next((name for test, name in _KINDS.items() if test(mode)), None)
    if kind is not None:
        raise FileWriteError(f"cannot write {path}: it is {kind}, not a regular file; choose another output path")
    return target


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
