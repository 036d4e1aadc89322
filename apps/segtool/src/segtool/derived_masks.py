"""Masks derived from a task's classes and the scan, written beside its per-class masks.

As TotalSegmentator does for its ``body`` task: ``body`` (the body's classes together) and ``skin`` (the body's
outer shell at soft-tissue density). ``--no-derived-masks`` leaves them out.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from segtool.combine import group_members

#: task -> the masks derived from its classes
DERIVED_MASKS = {"body": ("body", "skin")}
SKIN_DEPTH_VOXELS = 3  #: the shell: the body grown by one voxel, less the grown body eroded this many times
SKIN_HU = (-200.0, 250.0)  #: skin density, open interval (wide enough that the shell has no holes)
SKIN_SPECK_VOXELS = 5  #: shell pieces of at most this many voxels are dropped


def derived_for(task: str, *, skip: bool = False) -> tuple[str, ...]:
    """The masks derived for ``task`` (none with ``skip``: TotalSegmentator's ``--no_derived_masks``)."""
    return () if skip else DERIVED_MASKS.get(task, ())


def derived_masks(wanted: tuple[str, ...], scan: np.ndarray, labels: np.ndarray,
                  names: dict[int, str]) -> dict[str, np.ndarray]:
    """Name -> boolean mask of each of the ``wanted`` masks (of a task's `DERIVED_MASKS`), from the label map of a
    scan."""
    if not wanted:
        return {}
    members = group_members("body", list(names.values()))
    body = np.isin(labels, [value for value, name in names.items() if name in members])
    masks = {"body": body, "skin": skin(scan, body)}
    return {name: masks[name] for name in wanted}


def skin(scan: np.ndarray, body: np.ndarray) -> np.ndarray:
    """The skin of a CT ``scan`` (HU) around its ``body`` mask: the body's outer shell (`SKIN_DEPTH_VOXELS` deep,
    from one voxel outside it) where the density is that of skin (`SKIN_HU`), without specks."""
    from segkit.infer.postprocessing import remove_small_components  # torch: only when a body task runs

    grown = ndimage.binary_dilation(body)
    shell = grown & ~ndimage.binary_erosion(grown, iterations=SKIN_DEPTH_VOXELS)
    shell &= (scan > SKIN_HU[0]) & (scan < SKIN_HU[1])
    return remove_small_components(shell.astype(np.uint8), SKIN_SPECK_VOXELS) > 0
