"""Foreground intensity statistics: exact moments merged across cases, percentiles from samples."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Moments:
    """Count, mean, sum of squared deviations, min and max of a set of values (mergeable)."""

    count: int = 0
    mean: float = 0.0
    m2: float = 0.0
    minimum: float = float("inf")
    maximum: float = float("-inf")

    @classmethod
    def of(cls, values: np.ndarray) -> Moments:
        """Return the moments of ``values`` (computed in float64)."""
        if values.size == 0:
            return cls()
        v = values.astype(np.float64, copy=False)
        mean = float(v.mean())
        return cls(int(v.size), mean, float(np.square(v - mean).sum()), float(v.min()), float(v.max()))

    def merge(self, other: Moments) -> Moments:
        """Return the moments of both sets together (Chan et al.'s parallel update)."""
        if other.count == 0:
            return self
        if self.count == 0:
            return other
        count = self.count + other.count
        delta = other.mean - self.mean
        mean = self.mean + delta * other.count / count
        m2 = self.m2 + other.m2 + delta * delta * self.count * other.count / count
        return Moments(count, mean, m2, min(self.minimum, other.minimum), max(self.maximum, other.maximum))

    @property
    def std(self) -> float:
        """Population standard deviation (as ``np.std``)."""
        return float(np.sqrt(self.m2 / self.count)) if self.count else float("nan")


def sample_values(values: np.ndarray, limit: int, *, seed: int = 1234) -> np.ndarray:
    """Return ``values`` if there are at most ``limit``, else ``limit`` of them drawn without replacement."""
    if values.size <= limit:
        return values
    return np.random.default_rng(seed).choice(values, limit, replace=False)


def intensity_properties(moments: Moments, samples: np.ndarray) -> dict[str, float]:
    """Return nnU-Net's per-channel intensity properties.

    ``mean``, ``std``, ``min`` and ``max`` are exact (from ``moments``); ``median`` and the
    0.5/99.5 percentiles come from ``samples`` (exact when every foreground voxel was kept).
    All values are NaN when the channel has no foreground voxel.
    """
    if moments.count == 0 or samples.size == 0:
        nan = float("nan")
        keys = ("max", "mean", "median", "min", "percentile_00_5", "percentile_99_5", "std")
        return dict.fromkeys(keys, nan)
    low, median, high = np.percentile(samples.astype(np.float64), (0.5, 50.0, 99.5))
    return {
        "max": moments.maximum,
        "mean": moments.mean,
        "median": float(median),
        "min": moments.minimum,
        "percentile_00_5": float(low),
        "percentile_99_5": float(high),
        "std": moments.std,
    }
