"""Preprocessed cases on disk: blosc2 arrays with chunked patch reads, plus a JSON of properties.

A case ``ID`` is ``ID.b2nd`` (float32 ``(c, i, j, k)``), ``ID_seg.b2nd`` (int16
``(1, i, j, k)``) and ``ID.json``. Each file is written under a temporary name and renamed;
the JSON comes last and carries the hash of the configuration, so a case counts as done only
when all three exist and were made with the same configuration.
"""

from __future__ import annotations

import json
import os
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

import blosc2
import numpy as np

from segkit.io import atomic_path
from segkit.planning.errors import PreprocessingError

BLOCK_EDGE = 32


@dataclass(frozen=True)
class CaseProperties:
    """What is needed to use a preprocessed case and to map results back to the original grid.

    ``class_locations`` maps each foreground label to ``(n, 3)`` voxel coordinates in the
    preprocessed grid (stored in JSON as flat indices into ``shape``).
    """

    identifier: str
    original_spacing: tuple[float, ...]
    original_shape: tuple[int, ...]
    affine: tuple[tuple[float, ...], ...]
    crop_box: tuple[tuple[int, int], ...]
    shape_after_crop: tuple[int, ...]
    spacing: tuple[float, ...]
    shape: tuple[int, ...]
    class_locations: dict[int, np.ndarray]
    configuration_hash: str

    def to_dict(self) -> dict:
        """Return the JSON object."""
        data = {
            "identifier": self.identifier,
            "original_spacing": list(self.original_spacing),
            "original_shape": list(self.original_shape),
            "affine": [list(row) for row in self.affine],
            "crop_box": [list(pair) for pair in self.crop_box],
            "shape_after_crop": list(self.shape_after_crop),
            "spacing": list(self.spacing),
            "shape": list(self.shape),
            "class_locations": {  # flat (C-order) indices into `shape`: compact and fast to parse
                str(k): np.ravel_multi_index(tuple(v.T), self.shape).tolist() if len(v) else []
                for k, v in self.class_locations.items()
            },
            "configuration_hash": self.configuration_hash,
        }
        return data

    @classmethod
    def from_dict(cls, data: dict) -> CaseProperties:
        """Parse the JSON object."""
        try:
            return cls(
                identifier=str(data["identifier"]),
                original_spacing=tuple(data["original_spacing"]),
                original_shape=tuple(data["original_shape"]),
                affine=tuple(tuple(row) for row in data["affine"]),
                crop_box=tuple(tuple(pair) for pair in data["crop_box"]),
                shape_after_crop=tuple(data["shape_after_crop"]),
                spacing=tuple(data["spacing"]),
                shape=tuple(data["shape"]),
                class_locations={int(k): _unravel(v, tuple(data["shape"])) for k, v in data["class_locations"].items()},
                configuration_hash=str(data["configuration_hash"]),
            )
        except (KeyError, TypeError, ValueError) as err:
            raise PreprocessingError(f"malformed case properties ({err!r}); preprocess again") from err


def _unravel(flat: list[int], shape: tuple[int, ...]) -> np.ndarray:
    if not flat:
        return np.zeros((0, len(shape)), np.int32)
    return np.stack(np.unravel_index(np.asarray(flat, dtype=np.int64), shape), axis=1).astype(np.int32)


def _chunking(shape: Sequence[int], patch_size: Sequence[int]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    spatial = shape[1:]
    chunk = tuple(min(s, p) for s, p in zip(spatial, patch_size, strict=True))
    block = tuple(min(c, BLOCK_EDGE) for c in chunk)
    return (1, *chunk), (1, *block)


def _write_array(path: Path, array: np.ndarray, patch_size: Sequence[int]) -> None:
    chunks, blocks = _chunking(array.shape, patch_size)
    cparams = {"codec": blosc2.Codec.LZ4, "clevel": 5, "filters": [blosc2.Filter.SHUFFLE], "nthreads": 1}
    frame = blosc2.asarray(np.ascontiguousarray(array), chunks=chunks, blocks=blocks, cparams=cparams).to_cframe()
    with atomic_path(path) as tmp:
        tmp.write_bytes(frame)


class PreprocessedCase:
    """One preprocessed case opened for reading; patches decompress only the chunks they touch.

    Example:
        >>> case = PreprocessedCase.open(folder, "hippocampus_001")  # doctest: +SKIP
        >>> data, seg = case.read_patch((slice(0, 40), slice(0, 56), slice(0, 40)))  # doctest: +SKIP
    """

    def __init__(self, folder: Path, properties: CaseProperties) -> None:
        self.folder = Path(folder)
        self.properties = properties
        ident = properties.identifier
        try:
            self.data = blosc2.open(str(self.folder / f"{ident}.b2nd"), mode="r")
            self.seg = blosc2.open(str(self.folder / f"{ident}_seg.b2nd"), mode="r")
        except (OSError, RuntimeError, ValueError) as err:
            raise PreprocessingError(f"{self.folder / ident}: cannot open preprocessed arrays ({err})") from err

    @classmethod
    def open(cls, folder: str | os.PathLike, identifier: str) -> PreprocessedCase:
        """Open a complete case.

        Raises:
            PreprocessingError: the case is missing or incomplete.
        """
        path = Path(folder) / f"{identifier}.json"
        try:
            properties = CaseProperties.from_dict(json.loads(path.read_text()))
        except (OSError, json.JSONDecodeError) as err:
            raise PreprocessingError(f"{path}: no complete preprocessed case ({err})") from err
        return cls(Path(folder), properties)

    @staticmethod
    def write(
        folder: str | os.PathLike,
        *,
        data: np.ndarray,
        seg: np.ndarray,
        properties: CaseProperties,
        patch_size: Sequence[int],
    ) -> None:
        """Write a case: both arrays (chunked for ``patch_size`` reads), then the properties JSON."""
        folder = Path(folder)
        ident = properties.identifier
        if seg.ndim != 4 or data.ndim != 4 or seg.shape[1:] != data.shape[1:]:
            raise PreprocessingError(f"{ident}: data {data.shape} and seg {seg.shape} must be (c, i, j, k) on one grid")
        _write_array(folder / f"{ident}.b2nd", data.astype(np.float32, copy=False), patch_size)
        _write_array(folder / f"{ident}_seg.b2nd", seg.astype(np.int16, copy=False), patch_size)
        with atomic_path(folder / f"{ident}.json") as tmp:
            tmp.write_text(json.dumps(properties.to_dict(), separators=(",", ":")))

    @staticmethod
    def is_complete(folder: str | os.PathLike, identifier: str, configuration_hash: str) -> bool:
        """Whether the case exists in full and was made with ``configuration_hash``."""
        folder = Path(folder)
        try:
            header = json.loads((folder / f"{identifier}.json").read_text())
        except (OSError, json.JSONDecodeError):
            return False
        arrays = (folder / f"{identifier}.b2nd", folder / f"{identifier}_seg.b2nd")
        return header.get("configuration_hash") == configuration_hash and all(p.is_file() for p in arrays)

    def read_patch(self, slices: Sequence[slice]) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(data, seg)`` of a spatial region (all channels)."""
        region = (slice(None), *slices)
        return self.data[region], self.seg[region]


def remove_other_cases(folder: str | os.PathLike, identifiers: Collection[str]) -> list[str]:
    """Delete the preprocessed cases in ``folder`` that are not in ``identifiers``; return the ones deleted.

    Only case files go: ``ID.json`` holding the properties of case ``ID``, and arrays ``*.b2nd`` that belong to
    no case kept. Other files (notes, temporary files of a write in progress) and folders stay.
    """
    folder = Path(folder)
    keep = {name for i in identifiers for name in (f"{i}.json", f"{i}.b2nd", f"{i}_seg.b2nd")}
    removed = []
    for path in sorted(folder.iterdir()) if folder.is_dir() else []:
        if path.name in keep or not path.is_file() or path.name.startswith("."):
            continue
        if path.suffix == ".b2nd" or (path.suffix == ".json" and _is_properties_of(path, path.stem)):
            path.unlink(missing_ok=True)
            if path.suffix == ".json":
                removed.append(path.stem)
    return removed


def _is_properties_of(path: Path, identifier: str) -> bool:
    try:
        header = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    return isinstance(header, dict) and header.get("identifier") == identifier and "configuration_hash" in header
