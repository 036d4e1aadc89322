"""Safe reading of nnU-Net v2 ``checkpoint_final.pth`` files: `torch.load(weights_only=True)` + allow-list.

nnU-Net pickles, beside the tensors, numpy scalars (its training log) and numpy dtypes; those few plain-data
types are the only globals allowed, so no code from the file can run.
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from segkit.nets.errors import CheckpointError


def _allowed_globals() -> list[Any]:
    """Return the plain-data numpy types an nnU-Net checkpoint may hold (never functions or classes with code)."""
    core = getattr(np, "_core", None) or np.core
    allowed: list[Any] = [core.multiarray.scalar, np.dtype]
    dtypes = getattr(np, "dtypes", None)
    if dtypes is not None:
        names = ("Float16DType", "Float32DType", "Float64DType", "Int8DType", "Int16DType", "Int32DType",
                 "Int64DType", "UInt8DType", "UInt16DType", "UInt32DType", "UInt64DType", "BoolDType")
        allowed += [getattr(dtypes, n) for n in names if hasattr(dtypes, n)]
    return allowed


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a torch checkpoint on the CPU without executing pickled code.

    Args:
        path: a ``.pth`` file written by nnU-Net v2 (or any torch.save of plain data and tensors).

    Returns:
        The unpickled top-level dict (for nnU-Net: ``network_weights``, ``trainer_name``,
        ``inference_allowed_mirroring_axes``, ``init_args``, ...).

    Raises:
        CheckpointError: the file is missing, not a torch checkpoint, not a dict, or holds objects outside
            the allow-list.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        # mapped rather than read (torch's zip format; its legacy one cannot be): what no caller uses, such as an
        # optimizer state, is never read, and TotalSegmentator's 3 mm CT checkpoint loads in half the time
        with torch.serialization.safe_globals(_allowed_globals()):
            data = torch.load(path, map_location="cpu", weights_only=True, mmap=zipfile.is_zipfile(path))
    except pickle.UnpicklingError as err:
        detail = next((line for line in str(err).splitlines() if "GLOBAL" in line or "got <" in line), "")
        if not detail.strip():
            raise CheckpointError(f"{path} is not a readable torch checkpoint (the unpickler rejects it)") from err
        raise CheckpointError(
            f"{path} holds objects outside the safe allow-list, refusing to unpickle them: {detail.strip()[:200]}"
        ) from err
    except (RuntimeError, OSError, EOFError, ValueError, IndexError, KeyError) as err:
        raise CheckpointError(f"{path} is not a readable torch checkpoint: {str(err).splitlines()[0][:200]}") from err
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: expected a dict at the top level, found {type(data).__name__}")
    return data
