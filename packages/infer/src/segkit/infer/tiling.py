"""Pure tiling arithmetic for sliding windows: padding to the tile size, tile positions, flip sets, shifts."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

from segkit.infer.errors import InferError


def pad_amounts(image_size: Sequence[int], tile_size: Sequence[int]) -> tuple[tuple[int, int], ...]:
    """Return per-axis ``(before, after)`` padding that brings each axis up to at least the tile size.

    The padding is split evenly, the odd voxel going after (as nnU-Net pads).

    Example:
        >>> pad_amounts((36, 50, 35), (40, 56, 40))
        ((2, 2), (3, 3), (2, 3))
    """
    out = []
    for size, tile in zip(image_size, tile_size, strict=True):
        missing = max(0, tile - size)
        out.append((missing // 2, missing - missing // 2))
    return tuple(out)


def check_shift(shift: object, name: str = "shift") -> None:
    """Raise `InferError` unless ``shift`` (translation TTA, in voxels) is a whole number >= 0."""
    if isinstance(shift, bool) or not isinstance(shift, int) or shift < 0:
        raise InferError(f"{name} must be a whole number of voxels >= 0, got {shift!r}")


def shift_offsets(shift: int, tile_size: Sequence[int]) -> list[tuple[int, ...]]:
    """Return the image offsets of translation TTA: none, then ``+shift`` and ``-shift`` along each axis in turn.

    Axes whose tile is one voxel thick (a 2D model's slice axis) are not shifted.

    Example:
        >>> shift_offsets(6, (40, 56, 1))
        [(0, 0, 0), (6, 0, 0), (-6, 0, 0), (0, 6, 0), (0, -6, 0)]
    """
    offsets = [(0,) * len(tile_size)]
    if shift:
        for axis, tile in enumerate(tile_size):
            if tile > 1:
                offsets += [tuple(sign * shift if a == axis else 0 for a in range(len(tile_size))) for sign in (1, -1)]
    return offsets


def shifted_pad_amounts(image_size: Sequence[int], tile_size: Sequence[int],
                        offset: Sequence[int]) -> tuple[tuple[int, int], ...]:
    """Return per-axis ``(before, after)`` padding that moves the image later or earlier among the tiles.

    ``|offset|`` voxels are padded before the image (positive) or after it (negative), then `pad_amounts` pads the
    whole to the tile size. An image smaller than the tile moves by about half the offset (it is centred in the
    tile), a larger one by up to the offset (the tiles are spread over the grown axis).

    Args:
        image_size: spatial size of the image.
        tile_size: tile size per axis.
        offset: per axis, the zero voxels padded before (positive) or after (negative) the image.

    Example:
        >>> shifted_pad_amounts((36, 50, 35), (40, 56, 40), (6, 0, 0))
        ((6, 0), (3, 3), (2, 3))
    """
    grown = [size + abs(o) for size, o in zip(image_size, offset, strict=True)]
    return tuple((before + max(o, 0), after + max(-o, 0))
                 for (before, after), o in zip(pad_amounts(grown, tile_size), offset, strict=True))


def compute_steps(image_size: Sequence[int], tile_size: Sequence[int], step: float) -> list[list[int]]:
    """Return the tile start positions per axis: evenly spaced, first at 0, last touching the end.

    The number of tiles along an axis is ``ceil((size - tile) / (tile * step)) + 1``, so neighbours overlap
    by at least ``1 - step`` of a tile. Worked case: size 100, tile 40, step 0.5 -> ceil(60 / 20) + 1 = 4
    tiles, spaced 60 / 3 = 20 apart: starts 0, 20, 40, 60.

    Args:
        image_size: spatial size, each axis >= its tile size (pad first).
        tile_size: tile size per axis.
        step: tile step as a fraction of the tile size, in (0, 1].

    Raises:
        InferError: step outside (0, 1] or an image axis smaller than the tile.

    Example:
        >>> compute_steps((100, 40, 3), (40, 40, 1), 0.5)
        [[0, 20, 40, 60], [0], [0, 1, 2]]
    """
    if not 0 < step <= 1:
        raise InferError(f"tile step must be in (0, 1], got {step}")
    steps = []
    for size, tile in zip(image_size, tile_size, strict=True):
        if size < tile:
            raise InferError(f"image axis of size {size} is smaller than the tile ({tile}); pad it first")
        count = math.ceil((size - tile) / max(tile * step, 1)) + 1  # steps under a voxel would repeat tiles
        if count == 1:
            steps.append([0])
            continue
        spacing = (size - tile) / (count - 1)
        steps.append([int(round(spacing * i)) for i in range(count)])
    return steps


def tile_starts(image_size: Sequence[int], tile_size: Sequence[int], step: float) -> list[tuple[int, ...]]:
    """Return every tile's start corner (cartesian product of `compute_steps`)."""
    return list(itertools.product(*compute_steps(image_size, tile_size, step)))


def flip_sets(mirror_axes: Sequence[int]) -> list[tuple[int, ...]]:
    """Return the identity plus every non-empty combination of the mirror axes (2^n sets).

    Example:
        >>> flip_sets((0, 1))
        [(), (0,), (1,), (0, 1)]
    """
    axes = sorted(set(int(a) for a in mirror_axes))
    combos: list[tuple[int, ...]] = [()]
    for n in range(1, len(axes) + 1):
        combos.extend(itertools.combinations(axes, n))
    return combos
