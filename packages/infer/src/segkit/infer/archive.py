"""Model folders to and from a zip (``segkit-export``, ``segkit-import``)."""

from __future__ import annotations

import os
import shutil
import tempfile
import zipfile
import zlib
from pathlib import Path

from segkit.infer.errors import ModelLoadError
from segkit.io.atomic import atomic_path
from segkit.io.model_folder import WEIGHTS_FILE, is_nnunet_result_folder, read_model_info
from segkit.io.safe_zip import extract_zip
from segkit.nets import CheckpointError, StoredWeights, load_weights, save_weights

FOLDER_FILES = ("model.json", "plans.json", "dataset.json")
ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip can hold
COPY_CHUNK = 1 << 20


def export_model_folder(folder: str | os.PathLike, archive: str | os.PathLike, *, half: bool = False) -> Path:
    """Write a zip holding the model folder's JSON files and each fold's weights (atomically).

    With ``half``, floating-point weights are stored as float16 (half the download; loading casts them
    back to the network's precision).

    Raises:
        ModelLoadError: not a segkit model folder, or a listed fold without (readable) weights.
    """
    folder, archive = Path(folder), Path(archive)
    if not (folder / "model.json").is_file() and is_nnunet_result_folder(folder):
        raise ModelLoadError(f"{folder} is an nnU-Net result folder; convert it first with "
                             f"`segkit-import {folder} TARGET_FOLDER`, then export that")
    info = read_model_info(folder)
    members = [folder / name for name in FOLDER_FILES]
    members += [folder / f"fold_{fold}" / WEIGHTS_FILE for fold in info.folds]
    missing = [str(m) for m in members if not m.is_file()]
    if missing:
        raise ModelLoadError(f"cannot export {folder}: missing {missing[0]}")
    weights = {m: _readable_weights(m, f"cannot export {folder}") for m in members if m.name == WEIGHTS_FILE}
    with atomic_path(archive, suffix=".tmp") as tmp, \
            zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as handle, \
            tempfile.TemporaryDirectory() as scratch:
        for member in members:
            source = member
            if half and member in weights:
                source = _half_precision_copy(weights[member], Path(scratch) / f"{member.parent.name}.safetensors")
            _add_reproducibly(handle, source, f"{folder.name}/{member.relative_to(folder).as_posix()}")
    return archive


def _readable_weights(path: Path, failing: str) -> StoredWeights:
    """The weights in ``path``, read whole, so that a damaged file is refused (``failing``: what then fails)."""
    try:
        return load_weights(path)
    except CheckpointError as err:
        raise ModelLoadError(f"{failing}: {err}") from err


def _add_reproducibly(handle: zipfile.ZipFile, source: Path, name: str) -> None:
    """Store ``source`` as ``name`` with a fixed time stamp and mode, so that the same model folder always gives
    the same zip (and sha256), whenever its files were written."""
    info = zipfile.ZipInfo(name, date_time=ZIP_TIME)
    info.external_attr = 0o644 << 16
    with open(source, "rb") as src, handle.open(info, "w") as dst:
        shutil.copyfileobj(src, dst, COPY_CHUNK)


def _half_precision_copy(stored: StoredWeights, target: Path) -> Path:
    state = {k: v.half() if v.is_floating_point() else v for k, v in stored.state_dict.items()}
    return save_weights(state, stored.spec, target, in_channels=stored.in_channels, num_classes=stored.num_classes)


def import_model_folder(archive: str | os.PathLike, target_parent: str | os.PathLike) -> Path:
    """Extract a model zip into ``target_parent/<model name>``; nothing is left behind on failure.

    The zip is extracted into a temp folder beside the target (zip-slip safe), checked (model.json, and readable
    weights for each of its folds), then renamed into place.

    Raises:
        ModelLoadError: not a (readable) model zip, the target exists already, or cannot be written.
    """
    archive, parent = Path(archive), Path(target_parent)
    if not archive.is_file():
        raise ModelLoadError(f"{archive}: no such file" if not archive.exists() else f"{archive} is not a file")
    if not zipfile.is_zipfile(archive):
        raise ModelLoadError(f"{archive} is not a zip file")
    try:
        parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".segkit-import-", dir=parent))
    except OSError as err:
        raise ModelLoadError(f"cannot import into {parent}: {err.strerror or err}") from err
    try:
        try:
            extract_zip(archive, staging)
        except (OSError, EOFError, zipfile.BadZipFile, zlib.error) as err:
            raise ModelLoadError(f"cannot extract {archive} ({err})") from err
        found = [p.parent for p in staging.rglob("model.json")]
        if len(found) != 1:
            raise ModelLoadError(f"{archive}: expected one model folder (model.json), found {len(found)}")
        info = read_model_info(found[0])
        for fold in info.folds:
            weights = found[0] / f"fold_{fold}" / WEIGHTS_FILE
            if not weights.is_file():
                raise ModelLoadError(f"{archive}: fold {fold} has no {WEIGHTS_FILE}")
            _readable_weights(weights, f"cannot import {archive}")
        target = parent / found[0].name
        if target.exists():
            raise ModelLoadError(f"{target} exists already; remove it or import elsewhere")
        os.replace(found[0], target)
        return target
    finally:
        shutil.rmtree(staging, ignore_errors=True)
