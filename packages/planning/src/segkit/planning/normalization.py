"""Intensity normalization schemes, chosen per channel from ``dataset.json``'s channel names.

The mapping follows nnU-Net: ``CT`` -> `Scheme.CT`, ``noNorm`` -> `Scheme.NONE`,
``rescale_to_0_1`` and ``rgb_to_0_1`` -> their schemes, ``zscore`` and every other name
(``MRI``, ``T2``, ``FLAIR``...) -> `Scheme.ZSCORE` (z-score per image). Names are matched
case-insensitively.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping

import numpy as np

from segkit.planning.errors import PlansError

EPS = 1e-8


class Scheme(str, enum.Enum):
    """Normalization schemes; the values are nnU-Net's class names, so plans read alike."""

    CT = "CTNormalization"
    ZSCORE = "ZScoreNormalization"
    NONE = "NoNormalization"
    RESCALE_0_1 = "RescaleTo01Normalization"
    RGB_0_1 = "RGBTo01Normalization"

    @classmethod
    def parse(cls, value: str) -> Scheme:
        """Return the scheme named ``value``; an unknown name raises `PlansError` listing the valid ones."""
        try:
            return cls(value)
        except ValueError as err:
            valid = ", ".join(s.value for s in cls)
            raise PlansError(f"unknown normalization scheme {value!r}; valid: {valid}") from err

    @property
    def zero_stays_zero_when_masked(self) -> bool:
        """Whether masked normalization leaves voxels outside the mask at 0 (only z-score)."""
        return self is Scheme.ZSCORE


_CHANNEL_NAME_TO_SCHEME = {
    "ct": Scheme.CT,
    "nonorm": Scheme.NONE,
    "zscore": Scheme.ZSCORE,
    "rescale_to_0_1": Scheme.RESCALE_0_1,
    "rgb_to_0_1": Scheme.RGB_0_1,
}


def scheme_for_channel(channel_name: str) -> Scheme:
    """Return the scheme for a ``dataset.json`` channel name (unknown names get z-score).

    Example:
        >>> scheme_for_channel("CT").value, scheme_for_channel("T2").value
        ('CTNormalization', 'ZScoreNormalization')
    """
    return _CHANNEL_NAME_TO_SCHEME.get(channel_name.casefold(), Scheme.ZSCORE)


def normalize_ct(image: np.ndarray, stats: Mapping[str, float]) -> np.ndarray:
    """Clip to the dataset's foreground 0.5/99.5 percentiles, then subtract its mean and divide by its std.

    Args:
        image: one channel, any shape.
        stats: the channel's foreground statistics (``mean``, ``std``, ``percentile_00_5``,
            ``percentile_99_5``) from the fingerprint.
    """
    out = np.clip(image.astype(np.float32), stats["percentile_00_5"], stats["percentile_99_5"])
    out -= np.float32(stats["mean"])
    out /= np.float32(max(stats["std"], EPS))
    return out


def normalize_zscore(image: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Subtract the image's mean and divide by its std; with ``mask``, only inside it (outside unchanged).

    Args:
        image: one channel, any shape.
        mask: boolean array of the same shape, or None for the whole image.
    """
    out = image.astype(np.float32)
    if mask is None:
        mean, std = out.mean(dtype=np.float64), out.std(dtype=np.float64)
        out -= np.float32(mean)
        out /= np.float32(max(std, EPS))
        return out
    values = out[mask]
    if values.size:
        mean, std = values.mean(dtype=np.float64), values.std(dtype=np.float64)
        out[mask] = (values - np.float32(mean)) / np.float32(max(std, EPS))
    return out


def normalize_rescale(image: np.ndarray) -> np.ndarray:
    """Rescale linearly so the image spans 0..1."""
    out = image.astype(np.float32)
    out -= out.min()
    out /= np.float32(max(float(out.max()), EPS))
    return out


def normalize_rgb(image: np.ndarray) -> np.ndarray:
    """Divide 8-bit RGB values by 255.

    Raises:
        PlansError: values outside 0..255 (the channel is not RGB).
    """
    if image.size and (image.min() < 0 or image.max() > 255):
        raise PlansError(
            f"channel declared RGB holds values {image.min()}..{image.max()}; expected 0..255 "
            "(fix the channel name in dataset.json)"
        )
    return image.astype(np.float32) / np.float32(255)


def normalize(
    image: np.ndarray,
    scheme: Scheme,
    *,
    stats: Mapping[str, float] | None = None,
    mask: np.ndarray | None = None,
) -> np.ndarray:
    """Normalize one channel with ``scheme``; returns float32.

    Args:
        image: one channel, any shape.
        scheme: the channel's scheme.
        stats: foreground statistics of the channel (needed by `Scheme.CT`).
        mask: region for masked z-score (``use_mask_for_norm``); ignored by other schemes.

    Raises:
        PlansError: CT normalization without statistics.
    """
    if scheme is Scheme.CT:
        if stats is None:
            raise PlansError("CT normalization needs the channel's foreground intensity statistics")
        return normalize_ct(image, stats)
    if scheme is Scheme.ZSCORE:
        return normalize_zscore(image, mask)
    if scheme is Scheme.RESCALE_0_1:
        return normalize_rescale(image)
    if scheme is Scheme.RGB_0_1:
        return normalize_rgb(image)
    return image.astype(np.float32)
