"""Gaussian importance map for sliding-window blending."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np
from scipy.ndimage import gaussian_filter

SIGMA_SCALE = 1.0 / 8


@lru_cache(maxsize=8)
def _gaussian(tile_size: tuple[int, ...], sigma_scale: float) -> np.ndarray:
    delta = np.zeros(tile_size, dtype=np.float64)
    delta[tuple(s // 2 for s in tile_size)] = 1.0
    weights = gaussian_filter(delta, [s * sigma_scale for s in tile_size], order=0, mode="constant", cval=0.0)
    weights = (weights / weights.max()).astype(np.float32)
    nonzero = weights[weights > 0]
    weights[weights == 0] = nonzero.min()
    weights.flags.writeable = False
    return weights


def gaussian_importance_map(tile_size: Sequence[int], *, sigma_scale: float = SIGMA_SCALE) -> np.ndarray:
    """Return a Gaussian weight map peaking (at 1) in the tile centre.

    sigma is ``sigma_scale`` times the tile size per axis; zeros (far corners, truncation) are replaced by
    the smallest nonzero weight so that dividing by summed weights cannot produce NaN.

    Args:
        tile_size: tile shape, any axis order (the map follows it).
        sigma_scale: sigma as a fraction of the tile size (1/8 as in nnU-Net).

    Returns:
        Read-only float32 array of shape ``tile_size``, maximum 1.

    Example:
        >>> w = gaussian_importance_map((8, 8, 8))
        >>> float(w.max()), bool(w.min() > 0)
        (1.0, True)
    """
    return _gaussian(tuple(int(s) for s in tile_size), float(sigma_scale))
