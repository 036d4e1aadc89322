"""Gaussian importance map for sliding-window blending."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np
from scipy.ndimage import gaussian_filter1d

SIGMA_SCALE = 1.0 / 8


def _profile(size: int, sigma: float) -> np.ndarray:
    """The Gaussian filter (float64, truncated at 4 sigma, zero outside) of a unit impulse at ``size // 2``."""
    delta = np.zeros(size, dtype=np.float64)
    delta[size // 2] = 1.0
    return gaussian_filter1d(delta, sigma, mode="constant", cval=0.0)


@lru_cache(maxsize=8)
def _gaussian(tile_size: tuple[int, ...], sigma_scale: float) -> np.ndarray:
    # The N-d filter of an impulse is the outer product of the per-axis filters, bit for bit: each output voxel
    # is one product of the per-axis weights (the other terms are exact zeros), taken in the same order. Filtering
    # the whole tile took 0.24 s for a 128x112x80 CT tile, the outer product a few milliseconds.
    weights = np.ones((), dtype=np.float64)
    for size in tile_size:
        weights = np.multiply.outer(weights, _profile(size, size * sigma_scale))
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
