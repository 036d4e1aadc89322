"""Getting a task's weights in place: download, verify, install, or import a zip fetched by hand."""

from __future__ import annotations

import logging
import zipfile
from collections.abc import Callable
from pathlib import Path

from segtool.download import Progress, download, file_sha256
from segtool.errors import ArchiveError, ChecksumMismatchError, DownloadError, WeightsNotFoundError
from segtool.registry import ModelEntry, Registry, Task
from segtool.store import WeightsStore

logger = logging.getLogger(__name__)


def ensure_model(
    entry: ModelEntry,
    *,
    registry: Registry,
    store: WeightsStore,
    allow_download: bool = True,
    on_progress: Progress | None = None,
) -> Path:
    """Return the folder of ``entry``'s model, downloading and installing it first if needed.

    Raises:
        WeightsNotFoundError: not installed and ``allow_download`` is false.
        DownloadError: the download failed (the message names the offline route, ``segtool weights import``).
        ChecksumMismatchError, ArchiveError: the downloaded zip is not the model.
        FileWriteError: the weights folder is not writable.
    """
    if store.is_installed(entry):
        return store.model_path(entry)
    if not allow_download:
        raise WeightsNotFoundError(
            f"weights {entry.name!r} are not installed; run 'segtool download' or 'segtool weights import ZIP'"
        )
    url = registry.resolve_url(entry.url)
    archive = store.root / "downloads" / f"{entry.name}.zip"
    try:
        with store.writing():
            digest = download(url, archive, sha256=entry.sha256, on_progress=on_progress)
    except DownloadError as err:
        raise DownloadError(f"{err}; to install it offline, fetch that zip by other means and run "
                            "'segtool weights import ZIP'") from err
    if entry.sha256 is None:
        logger.warning("%s has no sha256 in the registry (unverified); recorded %s", entry.name, digest)
    try:
        path = store.install_zip(archive, entry, sha256=digest, source=url)
    finally:
        archive.unlink(missing_ok=True)
    return path


def ensure_task(
    task: Task,
    mode: str,
    *,
    registry: Registry,
    store: WeightsStore,
    allow_download: bool = True,
    progress_for: Callable[[ModelEntry], Progress | None] = lambda entry: None,
) -> list[tuple[ModelEntry, Path]]:
    """Make sure every model of ``task``'s ``mode`` is installed; return (entry, folder) pairs."""
    return [
        (entry, ensure_model(entry, registry=registry, store=store, allow_download=allow_download,
                             on_progress=progress_for(entry)))
        for entry in task.models(mode)
    ]


def import_zip(archive: Path, *, registry: Registry, store: WeightsStore) -> list[ModelEntry]:
    """Install a model zip obtained by other means; return the registry entries it provided.

    The zip is recognised by its top-level folder names (e.g. TotalSegmentator's
    ``Dataset297_...``) or, failing that, by its sha256. A known sha256 must match.

    Raises:
        ArchiveError: not a zip, or no registry model matches it.
        ChecksumMismatchError: the zip's sha256 differs from the registry's.
    """
    try:
        with zipfile.ZipFile(archive) as zf:
            top_level = {name.split("/", 1)[0] for name in zf.namelist() if name.strip("/")}
    except (zipfile.BadZipFile, FileNotFoundError) as err:
        raise ArchiveError(f"{archive}: not a readable zip file") from err
    digest = file_sha256(archive)
    entries = {e.name: e for task in registry.tasks.values() for e in task.all_models()}
    matches = [e for name, e in entries.items() if name in top_level] or [
        e for e in entries.values() if e.sha256 == digest
    ]
    if not matches:
        raise ArchiveError(f"{archive}: matches no model of the registry (top-level folders: "
                           f"{', '.join(sorted(top_level)) or 'none'})")
    for entry in matches:
        if entry.sha256 is not None and entry.sha256 != digest:
            raise ChecksumMismatchError(f"{archive}: sha256 is {digest}, the registry expects {entry.sha256} "
                                        f"for {entry.name}")
        store.install_zip(archive, entry, sha256=digest, source=f"import:{archive.name}")
    return matches
