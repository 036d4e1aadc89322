"""Where training patches come from: planning's preprocessed case store, or arrays held in memory.

Both offer the same small interface (`CaseStore`): case ids, spatial shape, per-class voxel locations
for foreground oversampling, and `read(case_id, slices)` that returns only the requested region.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from segkit.planning.errors import PlanningError
from segkit.planning.storage import PreprocessedCase
from segkit.train.errors import TrainDataError


class CaseStore(Protocol):
    """Read access to preprocessed cases (data float32 (C, *spatial), labels int16 (1, *spatial))."""

    case_ids: tuple[str, ...]

    def shape(self, case_id: str) -> tuple[int, ...]: ...

    def class_locations(self, case_id: str) -> dict[int, np.ndarray]: ...

    def read(self, case_id: str, slices: Sequence[slice]) -> tuple[np.ndarray, np.ndarray]: ...


class PreprocessedStore:
    """Cases preprocessed by segkit.planning in one folder; arrays open lazily (once per process)."""

    def __init__(self, folder: str | Path, case_ids: Sequence[str]) -> None:
        self.folder = Path(folder)
        self.case_ids = tuple(case_ids)
        self._open: dict[str, PreprocessedCase] = {}
        self._pid = None

    @classmethod
    def open(cls, folder: str | Path) -> PreprocessedStore:
        """Open every complete case in `folder` (a ``<preprocessed>/<configuration>`` folder).

        Raises:
            TrainDataError: the folder does not exist or holds no preprocessed case.
        """
        ids = complete_case_ids(folder)
        if not ids:
            raise TrainDataError(f"{folder}: no preprocessed cases; run segkit planning/preprocessing first")
        return cls(folder, ids)

    def _case(self, case_id: str) -> PreprocessedCase:
        import os

        if self._pid != os.getpid():  # blosc2 handles are not shared across forked workers
            self._open, self._pid = {}, os.getpid()
        case = self._open.get(case_id)
        if case is None:
            try:
                case = self._open[case_id] = PreprocessedCase.open(self.folder, case_id)
            except PlanningError as err:
                raise TrainDataError(str(err)) from err
        return case

    def shape(self, case_id: str) -> tuple[int, ...]:
        return tuple(self._case(case_id).properties.shape)

    def class_locations(self, case_id: str) -> dict[int, np.ndarray]:
        return self._case(case_id).properties.class_locations

    def read(self, case_id: str, slices: Sequence[slice]) -> tuple[np.ndarray, np.ndarray]:
        data, seg = self._case(case_id).read_patch(slices)
        return np.asarray(data, dtype=np.float32), np.asarray(seg, dtype=np.int16)

    def __getstate__(self) -> dict:
        return {"folder": self.folder, "case_ids": self.case_ids, "_open": {}, "_pid": None}


class MemoryStore:
    """Cases held as numpy arrays (tests, small datasets). ``cases[id] = (data, seg, class_locations)``."""

    def __init__(self, cases: dict[str, tuple[np.ndarray, np.ndarray, dict[int, np.ndarray]]]) -> None:
        self.cases = cases
        self.case_ids = tuple(sorted(cases))

    def shape(self, case_id: str) -> tuple[int, ...]:
        return tuple(self.cases[case_id][0].shape[1:])

    def class_locations(self, case_id: str) -> dict[int, np.ndarray]:
        return self.cases[case_id][2]

    def read(self, case_id: str, slices: Sequence[slice]) -> tuple[np.ndarray, np.ndarray]:
        data, seg, _ = self.cases[case_id]
        region = (slice(None), *slices)
        return data[region].astype(np.float32, copy=False), seg[region].astype(np.int16, copy=False)


def complete_case_ids(folder: str | Path) -> list[str]:
    """The cases of a ``<preprocessed>/<configuration>`` folder that have their JSON and both arrays, sorted."""
    folder = Path(folder)
    ids = sorted(p.stem for p in folder.glob("*.json")) if folder.is_dir() else []
    return [i for i in ids if (folder / f"{i}.b2nd").is_file() and (folder / f"{i}_seg.b2nd").is_file()]


def read_json(path: Path, what: str) -> dict:
    """Read a JSON file or raise a one-line `TrainDataError`."""
    try:
        return json.loads(path.read_text())
    except FileNotFoundError as err:
        raise TrainDataError(
            f"{path}: no {what}; plan the dataset first (or pass --dataset-json for dataset.json)") from err
    except json.JSONDecodeError as err:
        raise TrainDataError(f"{path}: invalid JSON ({err})") from err
