"""Combine classes into groups (lung, vertebrae, ribs...) defined in ``groups.json``."""

from __future__ import annotations

import fnmatch
import json
from functools import cache
from importlib import resources
from pathlib import Path

import numpy as np

from segkit.io import Image, read_image, write_image
from segtool.errors import SegtoolError, UnknownTaskError, did_you_mean
from segtool.outputs import MASK_ENDING, binary_mask, read_label_names


@cache
def groups() -> dict[str, tuple[str, ...]]:
    """Group name -> class-name patterns, from the packaged ``groups.json``."""
    data = json.loads((resources.files("segtool") / "groups.json").read_text())
    return {name: tuple(patterns) for name, patterns in data["groups"].items()}


def group_members(group: str, class_names: list[str]) -> list[str]:
    """The classes among ``class_names`` that belong to ``group``."""
    if group not in groups():
        raise UnknownTaskError(f"unknown group {group!r}{did_you_mean(group, groups())}; "
                               f"available: {', '.join(sorted(groups()))}")
    patterns = groups()[group]
    return [name for name in class_names if any(fnmatch.fnmatchcase(name, p) for p in patterns)]


def combine(source: Path, group: str) -> Image:
    """One binary mask (uint8) of every class of ``group`` found in ``source``.

    Args:
        source: a folder of per-class masks (``liver.nii.gz``...) or a multilabel file
            whose class names are in its label table or JSON sidecar.
        group: a group name from ``groups.json``.

    Raises:
        SegtoolError: ``source`` holds none of the group's classes, or has no class names.
    """
    if source.is_dir():
        masks = {p.name.removesuffix(MASK_ENDING): p for p in sorted(source.glob(f"*{MASK_ENDING}"))}
        members = group_members(group, list(masks))
        _require(members, group, source)
        images = [read_image(masks[name]) for name in members]
        union = np.logical_or.reduce([img.array > 0 for img in images])
        return binary_mask(images[0], union)
    image = read_image(source)
    names = read_label_names(source, image)
    if not names:
        raise SegtoolError(f"{source}: no class names found (no label table and no JSON beside it)")
    members = group_members(group, list(names.values()))
    _require(members, group, source)
    values = [value for value, name in names.items() if name in members]
    return binary_mask(image, np.isin(image.array, values))


def write_combined(source: Path, output: Path, group: str) -> Image:
    """`combine` ``group`` of ``source`` and write the mask to ``output`` (atomically); returns the mask.

    Raises:
        SegtoolError: as `combine`, or ``output`` would overwrite ``source`` (a multilabel file) or one of its
            masks (a folder), before anything is read.
    """
    target = output.resolve()
    if target == source.resolve() or (source.is_dir() and target.parent == source.resolve() and target.exists()):
        what = f"{output.name}, a mask in {source}" if source.is_dir() else f"its input {source}"
        raise SegtoolError(f"{output}: the combined mask would overwrite {what}; choose another output")
    mask = combine(source, group)
    write_image(mask, output, label=True)
    return mask


def _require(members: list[str], group: str, source: Path) -> None:
    if not members:
        raise SegtoolError(f"{source}: holds no class of group {group!r} (patterns: {', '.join(groups()[group])})")
