"""Patch boxes as nnU-Net picks them: random, or centred on a voxel of a random foreground class."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def patch_box(shape: Sequence[int], size: Sequence[int], rng: np.random.Generator, *,
              center: Sequence[int] | None = None) -> tuple[int, ...]:
    """Return the lower corner of a `size` box in an image of `shape` (may extend outside = padding).

    A box smaller than the image stays inside it; a larger one is centred with random slack. With `center`
    the box is centred on that voxel, clipped to the same allowed range.
    """
    lows = []
    for a, (n, p) in enumerate(zip(shape, size, strict=False)):
        pad = max(0, p - n)
        lo, hi = -(pad // 2), n + pad // 2 + pad % 2 - p
        if center is not None:
            lows.append(int(min(max(int(center[a]) - p // 2, lo), hi)))
        else:
            lows.append(int(rng.integers(lo, hi + 1)))
    return tuple(lows)


def choose_center(locations: dict[int, np.ndarray], rng: np.random.Generator, *,
                  exclude: Sequence[int] = ()) -> np.ndarray | None:
    """Pick a random class with voxels (not in `exclude`), then a random voxel of it; None when none."""
    classes = [c for c, v in sorted(locations.items()) if len(v) and c not in exclude]
    if not classes:
        return None
    voxels = locations[classes[int(rng.integers(len(classes)))]]
    return voxels[int(rng.integers(len(voxels)))]


def forced_foreground(batch_size: int, fraction: float) -> list[bool]:
    """Which batch positions must hold foreground: the last `round(fraction * batch)` (at least one if > 0)."""
    count = int(round(batch_size * fraction))
    if fraction > 0:
        count = max(count, 1)
    return [i >= batch_size - count for i in range(batch_size)]


def read_padded(store, case_id: str, low: Sequence[int], size: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """Read the box at `low` of `size` from `store`; parts outside the image are 0 (image) and 0 (labels)."""
    shape = store.shape(case_id)
    src = tuple(slice(max(0, lo), min(n, lo + s)) for lo, s, n in zip(low, size, shape, strict=False))
    data, seg = store.read(case_id, src)
    if data.shape[1:] == tuple(size):
        return data, seg
    out_data = np.zeros((data.shape[0], *size), dtype=np.float32)
    out_seg = np.zeros((1, *size), dtype=np.int16)
    dst = tuple(slice(s.start - lo, s.stop - lo) for s, lo in zip(src, low, strict=False))
    out_data[(slice(None), *dst)] = data
    out_seg[(slice(None), *dst)] = seg
    return out_data, out_seg
