"""TotalSegmentator's ``--save_probabilities``: each model's class probabilities on the grid it predicted on.

The probabilities are in nnU-Net's ``.npz`` layout (key ``probabilities``, float32, ``(channel, z, y, x)``: the grid's
axes reversed). Beside each file a JSON names its channels and places its grid (affine), where nnU-Net leaves a
pickled properties file. A task of several models gives one file per model, ``<name>_part<N>.npz`` in the order the
models run (TotalSegmentator writes every part to the same path, each over the last).
"""

from __future__ import annotations

import json
from pathlib import Path

from segkit.io import Image, atomic_path
from segtool.errors import SegtoolError
from segtool.registry import ModelEntry

SUFFIX = ".npz"
LAYOUT = "probabilities[c, k, j, i]: channel c at voxel (i, j, k) of the grid that the affine maps to mm (RAS)"


def check_probability_path(path: Path) -> None:
    """Refuse a probabilities path that does not end in `SUFFIX` (numpy would add it to some names and not others)."""
    if not path.name.lower().endswith(SUFFIX) or path.name.lower() == SUFFIX:
        raise SegtoolError(f"{path}: probabilities are saved as a {SUFFIX} file; name one")


def probability_paths(path: Path, models: int) -> list[Path]:
    """Where each of ``models`` models (in the order they run) writes its probabilities when ``path`` is asked for."""
    if models == 1:
        return [path]
    stem = path.name[:-len(SUFFIX)]
    return [path.with_name(f"{stem}_part{number}{SUFFIX}") for number in range(1, models + 1)]


def description_path(npz: Path) -> Path:
    """The JSON that describes the probabilities in ``npz``."""
    return npz.with_suffix(".json")


def channel_names(entry: ModelEntry, predictor) -> list[str | None]:
    """The class name of each output channel of ``predictor``: the registry's, ``background`` for label 0, None for a
    class of the model that the task does not use."""
    setup = predictor.setup
    values = setup.regions_class_order if setup.regions_class_order is not None else setup.label_values
    return [entry.labels.get(value, "background" if value == 0 else None) for value in values]


def write_description(npz: Path, grid: Image, entry: ModelEntry, channels: list[str | None]) -> Path:
    """Write the JSON beside ``npz``: the model, its channels' class names, and the grid they lie on."""
    description = {"model": entry.name, "channels": channels, "layout": LAYOUT,
                   "shape": [len(channels), *reversed(grid.spatial_shape)], "affine": grid.affine.tolist()}
    path = description_path(npz)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(description, indent=1))
    return path
