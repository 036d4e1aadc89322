"""The region a task's models run on: the box around what was found, and masks given by the user."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from segkit.io import Image, read_image
from segtool.errors import SegtoolError

ROI_MARGIN_MM = 20.0  #: margin around the classes of a ROI subset
BODY_TASK = "body"  #: the task whose fast model finds the body for ``body_seg``
BODY_MARGIN_MM = 3.0  #: TotalSegmentator's margin around the body it crops to


def box_around(found: np.ndarray, spacing: tuple[float, float, float], margin_mm: float) -> tuple[slice, ...] | None:
    """Bounding box of the ``found`` voxels widened by ``margin_mm`` on every side (within the image; whole voxels
    that fit in the margin, as TotalSegmentator counts them), or None."""
    where = np.argwhere(found)
    if len(where) == 0:
        return None
    margin = np.floor(margin_mm / np.asarray(spacing)).astype(int)
    low = np.maximum(where.min(axis=0) - margin, 0)
    high = np.minimum(where.max(axis=0) + 1 + margin, found.shape)
    return tuple(slice(int(lo), int(hi)) for lo, hi in zip(low, high, strict=True))


def mask_paths(folder: Path, names: tuple[str, ...]) -> list[Path]:
    """The masks ``<name>.nii.gz`` in ``folder``; raises `SegtoolError` naming the first one missing."""
    paths = [folder / f"{name}.nii.gz" for name in names]
    missing = [path.name for path in paths if not path.is_file()]
    if missing:
        raise SegtoolError(f"crop_path {folder} has no mask {missing[0]} (needs: {', '.join(names)})")
    return paths


def given_masks(folder: Path, names: tuple[str, ...], image: Image) -> np.ndarray:
    """The union of the masks ``<name>.nii.gz`` in ``folder``, each on ``image``'s grid."""
    union = np.zeros(image.spatial_shape, dtype=bool)
    for path in mask_paths(folder, names):
        mask = read_image(path)  # an unreadable file: segkit.io's one-line error
        if not mask.same_grid(image, tolerance=1e-3):
            raise SegtoolError(f"crop mask {path} is not on the scan's grid (shape {mask.spatial_shape}, scan "
                               f"{image.spatial_shape})")
        union |= mask.array > 0
    return union
