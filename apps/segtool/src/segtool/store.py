"""The installed-weights folder: atomic installs from zips, a record of hashes, verification.

Layout of the weights folder::

    <name>/...              one folder per installed model, as found at the top of its zip
    installed.json          name -> {sha256 of the zip, verified, source, files: {path: sha256}}
    downloads/              partial and finished downloads (removed once installed)
"""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from segkit.io.atomic import atomic_path
from segkit.io.errors import FileWriteError
from segkit.io.model_folder import NNUNET_CHECKPOINT, fold_dir
from segkit.io.safe_zip import UnsafeArchiveError, extract_zip
from segtool.download import file_sha256
from segtool.errors import ArchiveError, SegtoolError
from segtool.locking import exclusive_lock
from segtool.registry import ModelEntry, ModelFormat
from segtool.settings import HOME_VARIABLE

RECORD = "installed.json"


@dataclass(frozen=True)
class InstallRecord:
    """What was installed under one name: the zip's sha256, whether it was verified, file hashes."""

    name: str
    sha256: str
    verified: bool
    source: str
    files: dict[str, str]


class WeightsStore:
    """Installed model folders under ``root`` (see module docstring); ``root`` is created on the first write."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def model_path(self, entry: ModelEntry) -> Path:
        """Folder the predictor loads for ``entry`` (for nnU-Net zips: the trainer__plans__config folder)."""
        return self.root / entry.result_folder

    def is_installed(self, entry: ModelEntry) -> bool:
        """Whether ``entry`` is installed completely (its record exists and its folder looks valid)."""
        return entry.name in self.records() and not _missing_parts(entry, self.root)

    def records(self) -> dict[str, InstallRecord]:
        """Every install record, by model name (none if the folder or its record does not exist).

        Raises:
            SegtoolError: the record file is unreadable or not a record.
        """
        path = self.root / RECORD
        try:
            return {name: InstallRecord(name=name, **data) for name, data in json.loads(path.read_text()).items()}
        except (FileNotFoundError, NotADirectoryError):
            return {}
        except (OSError, ValueError, TypeError, AttributeError) as err:
            raise SegtoolError(f"{path}: not a valid record of installed weights ({err}); delete it, then "
                               "reinstall with 'segtool download TASK' or 'segtool weights import ZIP'") from err

    @contextlib.contextmanager
    def writing(self) -> Iterator[Path]:
        """Create ``root`` if needed and yield it; an OS error in the block becomes one line naming the folder.

        Raises:
            FileWriteError: the folder cannot be created or written (read-only, a file in the way, disk full).
        """
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            yield self.root
        except OSError as err:
            raise FileWriteError(f"cannot write weights folder {self.root}: {err.strerror or err}; "
                                 f"set {HOME_VARIABLE} to a writable folder") from err

    def install_zip(self, archive: Path, entry: ModelEntry, *, sha256: str, source: str) -> Path:
        """Extract ``archive`` and install the model folder ``entry.name`` from it, atomically.

        The zip is extracted into a temporary folder beside the final one, checked (model
        files present), then renamed into place; any failure leaves nothing behind.

        Raises:
            ArchiveError: the zip is corrupt, unsafe, or lacks the model's files.
            FileWriteError: the weights folder is not writable.
        """
        with self.writing():
            with tempfile.TemporaryDirectory(prefix=f".installing-{entry.name}-", dir=self.root) as tmp:
                try:
                    extract_zip(archive, Path(tmp))
                except zipfile.BadZipFile as err:
                    raise ArchiveError(f"{archive}: not a valid zip file ({err})") from err
                except UnsafeArchiveError as err:
                    raise ArchiveError(str(err)) from err
                missing = _missing_parts(entry, Path(tmp))
                if missing:
                    raise ArchiveError(f"{archive}: does not hold model {entry.name!r} (missing {missing[0]})")
                extracted = Path(tmp) / entry.name
                files = {str(p.relative_to(extracted)): file_sha256(p)
                         for p in sorted(extracted.rglob("*")) if p.is_file()}
                final = self.root / entry.name
                if final.exists():
                    shutil.rmtree(final)
                extracted.rename(final)
            self._write_record(InstallRecord(entry.name, sha256, entry.sha256 is not None, source, files))
        return self.model_path(entry)

    def remove(self, name: str) -> bool:
        """Remove an installed model; return whether anything was there (never creates the weights folder)."""
        if not self.root.is_dir():
            return False
        folder = self.root / name
        with self.writing():
            with exclusive_lock(self.root / f"{RECORD}.lock"):
                records = self.records()
                existed = folder.exists() or name in records
                if records.pop(name, None) is not None:
                    self._write_records(records)
            if folder.exists():
                shutil.rmtree(folder)
        return existed

    def verify(self, name: str) -> list[str]:
        """Compare an installed model's files to the hashes recorded at install; return the problems."""
        record = self.records().get(name)
        if record is None:
            return [f"{name}: not installed"]
        folder = self.root / name
        problems = []
        for relative, digest in record.files.items():
            path = folder / relative
            if not path.is_file():
                problems.append(f"{name}/{relative}: missing")
            elif file_sha256(path) != digest:
                problems.append(f"{name}/{relative}: modified since install")
        return problems

    def _write_record(self, record: InstallRecord) -> None:
        with exclusive_lock(self.root / f"{RECORD}.lock"):
            records = self.records()
            records[record.name] = record
            self._write_records(records)

    def _write_records(self, records: dict[str, InstallRecord]) -> None:
        data = {name: {"sha256": r.sha256, "verified": r.verified, "source": r.source, "files": r.files}
                for name, r in sorted(records.items())}
        with atomic_path(self.root / RECORD) as tmp:
            tmp.write_text(json.dumps(data, indent=1))


def _missing_parts(entry: ModelEntry, root: Path) -> list[str]:
    """Files a model folder must hold that are absent under ``root``."""
    folder = root / entry.result_folder
    needed = ["plans.json", "dataset.json"]
    if entry.format is not ModelFormat.NNUNETV2:
        needed += ["model.json"]
    elif entry.folds is not None:
        needed += [str(fold_dir(".", f) / NNUNET_CHECKPOINT) for f in entry.folds]
    elif not any(folder.glob(f"fold_*/{NNUNET_CHECKPOINT}")):
        needed += [f"fold_*/{NNUNET_CHECKPOINT}"]
    return [f"{entry.result_folder}/{n}" for n in needed if not (folder / n).is_file()]
