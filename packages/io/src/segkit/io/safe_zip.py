"""Zip extraction that never writes outside its target folder."""

from __future__ import annotations

import zipfile
from pathlib import Path

from segkit.io.errors import SegkitError


class UnsafeArchiveError(SegkitError):
    """An archive member would land outside the extraction folder."""


def extract_zip(archive: Path, target: Path) -> list[Path]:
    """Extract ``archive`` into ``target`` after checking every member stays inside it.

    Absolute paths, ``..`` components and symbolic links are refused before anything is
    written.

    Raises:
        UnsafeArchiveError: a member would escape ``target``.
        zipfile.BadZipFile: the archive is corrupt.
    """
    target = Path(target).resolve()
    with zipfile.ZipFile(archive) as zf:
        members = zf.infolist()
        for member in members:
            destination = (target / member.filename).resolve()
            is_symlink = (member.external_attr >> 16) & 0o170000 == 0o120000
            if is_symlink or not destination.is_relative_to(target):
                raise UnsafeArchiveError(f"{archive}: member {member.filename!r} would escape the target folder")
        zf.extractall(target)
    return [target / m.filename for m in members if not m.is_dir()]
