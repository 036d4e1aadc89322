"""Target spacing and resampled shapes (nnU-Net's rules, axis-order independent)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

ANISOTROPY_THRESHOLD = 3.0
"""An axis is anisotropic when its spacing is over this many times the others'."""


def compute_new_shape(shape: Sequence[int], spacing: Sequence[float], new_spacing: Sequence[float]) -> tuple[int, ...]:
    """Return the shape of ``shape`` resampled from ``spacing`` to ``new_spacing`` (rounded).

    Example:
        >>> compute_new_shape((100, 100, 20), (1.0, 1.0, 5.0), (2.0, 2.0, 2.5))
        (50, 50, 40)
    """
    return tuple(int(round(s * old / new)) for s, old, new in zip(shape, spacing, new_spacing, strict=True))


def target_spacing(
    spacings: Sequence[Sequence[float]],
    shapes: Sequence[Sequence[int]],
    *,
    threshold: float = ANISOTROPY_THRESHOLD,
) -> tuple[float, ...]:
    """Return the fullres target spacing: the median, with nnU-Net's anisotropy rule.

    When the median spacing of the coarsest axis is over ``threshold`` times the next
    coarsest and the data is thin along it (median voxels times ``threshold`` fewer than
    along every other axis), that axis gets the 10th percentile of its spacings instead
    (but never finer than the other axes).

    Args:
        spacings: one spacing per case (mm, per axis).
        shapes: one shape per case (after cropping), same axis order.
    """
    spacings_arr = np.asarray(spacings, dtype=np.float64)
    target = np.percentile(spacings_arr, 50, axis=0)
    median_shape = np.percentile(np.asarray(shapes, dtype=np.float64), 50, axis=0)
    coarse = _argmax_last(target)
    others = [a for a in range(len(target)) if a != coarse]
    if not others:
        return tuple(float(t) for t in target)
    finest_others = max(target[a] for a in others)
    aniso_spacing = target[coarse] > threshold * finest_others
    aniso_voxels = median_shape[coarse] * threshold < min(median_shape[a] for a in others)
    if aniso_spacing and aniso_voxels:
        value = float(np.percentile(spacings_arr[:, coarse], 10))
        if value < finest_others:
            value = max(finest_others, value) + 1e-5
        target[coarse] = value
    return tuple(float(t) for t in target)


def _argmax_last(values: np.ndarray) -> int:
    # nnU-Net takes the first maximum in its reversed (z, y, x) order: the last one in ours.
    return int(len(values) - 1 - np.argmax(values[::-1]))
