"""Training checkpoints: plain tensors and dicts saved with torch.save, loaded with ``weights_only=True``.

Two files rotate in the fold folder, ``checkpoint_latest.pt`` and ``checkpoint_previous.pt``; each is
written under a temporary name and renamed, so a crash or ``kill -9`` at any moment leaves at least one
complete checkpoint. `load_newest` returns the newest one that reads back.
"""

from __future__ import annotations

import logging
import os
import pickle
from pathlib import Path
from typing import Any

import torch

from segkit.io.atomic import atomic_path
from segkit.train.errors import ResumeError

log = logging.getLogger(__name__)
LATEST = "checkpoint_latest.pt"
PREVIOUS = "checkpoint_previous.pt"
FORMAT = "segkit-train-checkpoint/1"


def has_checkpoint(folder: Path) -> bool:
    """Whether `folder` holds a checkpoint file at all (readable or not)."""
    return any((Path(folder) / name).is_file() for name in (LATEST, PREVIOUS))


def save_checkpoint(folder: Path, state: dict[str, Any]) -> Path:
    """Write `state` (tensors, numbers, strings, lists, dicts only) as the newest checkpoint of `folder`."""
    folder = Path(folder)
    latest = folder / LATEST
    with atomic_path(latest, suffix="") as tmp:
        torch.save({"format": FORMAT, **state}, tmp)
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        if latest.exists():
            os.replace(latest, folder / PREVIOUS)
    return latest


def read_checkpoint_file(path: Path) -> dict[str, Any]:
    """Read one checkpoint safely (no code is unpickled).

    Raises:
        ResumeError: unreadable (no permission), corrupt or truncated, not a segkit checkpoint.
    """
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except PermissionError as err:
        raise ResumeError(f"{path}: cannot read checkpoint ({err.strerror})") from err
    except (OSError, RuntimeError, EOFError, pickle.UnpicklingError, ValueError, IndexError, KeyError, TypeError,
            AttributeError) as err:  # torch's own text would suggest unpickling code (weights_only=False): never
        raise ResumeError(f"{path}: corrupt or truncated checkpoint") from err
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ResumeError(f"{path}: not a segkit training checkpoint")
    return state


def load_newest(folder: Path) -> dict[str, Any]:
    """Return the newest readable checkpoint of `folder` (a warning names each newer one that is not).

    Raises:
        ResumeError: none is readable (one line naming each file and what is wrong with it).
    """
    errors = []
    for name in (LATEST, PREVIOUS):
        path = Path(folder) / name
        if not path.is_file():
            continue
        try:
            state = read_checkpoint_file(path)
        except ResumeError as err:
            errors.append(str(err))
            continue
        for error in errors:
            log.warning("%s; resuming from %s", error, path.name)
        return state
    detail = f" ({'; '.join(errors)})" if errors else ""
    raise ResumeError(f"{folder}: no valid checkpoint to resume from{detail}; train without --resume to start over")
