"""Intensity transforms (nnU-Net's defaults); labels pass through unchanged.

Each `sample` draws per-sample (and per-channel) parameters with a `torch.Generator`; `apply` is a
deterministic function of those parameters, so tests can replay it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F


def _uniform(gen: torch.Generator, shape: tuple[int, ...], low: float, high: float) -> torch.Tensor:
    return torch.rand(shape, generator=gen) * (high - low) + low


def _chosen(gen: torch.Generator, batch: int, channels: int, p: float, p_per_channel: float) -> torch.Tensor:
    """(B, C) bool: sample chosen with probability p, then each channel with p_per_channel."""
    per_sample = torch.rand(batch, generator=gen) < p
    per_channel = torch.rand((batch, channels), generator=gen) < p_per_channel
    return per_sample[:, None] & per_channel


def _bcast(values: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
    return values.to(image.device, image.dtype).reshape(*values.shape, *([1] * (image.ndim - values.ndim)))


@dataclass(frozen=True)
class GaussianNoise:
    """Add zero-mean Gaussian noise of a per-sample standard deviation (same for all channels)."""

    p: float = 0.1
    variance: tuple[float, float] = (0.0, 0.1)

    def sample(self, batch: int, channels: int, gen: torch.Generator) -> dict[str, torch.Tensor]:
        chosen = _chosen(gen, batch, channels, self.p, 1.0)
        sigma = _uniform(gen, (batch, 1), *self.variance).expand(batch, channels)
        return {"sigma": torch.where(chosen, sigma, torch.zeros_like(sigma)), "seed": torch.randint(
            0, 2**31 - 1, (1,), generator=gen)}

    def apply(self, image: torch.Tensor, params: dict[str, torch.Tensor]) -> torch.Tensor:
        if not params["sigma"].any():
            return image
        gen = torch.Generator(device=image.device).manual_seed(int(params["seed"]))
        noise = torch.randn(image.shape, generator=gen, device=image.device, dtype=image.dtype)
        return image + noise * _bcast(params["sigma"], image)


def gaussian_kernel(sigma: float) -> torch.Tensor:
    """1D Gaussian kernel of radius ceil(3 sigma), normalized to sum 1."""
    radius = max(1, math.ceil(3 * sigma))
    x = torch.arange(-radius, radius + 1, dtype=torch.float32)
    k = torch.exp(-0.5 * (x / sigma) ** 2)
    return k / k.sum()


def blur(volume: torch.Tensor, sigmas: tuple[float, ...]) -> torch.Tensor:
    """Separable Gaussian blur of one (*spatial) volume, one sigma per axis, edges replicated."""
    x = volume[None, None]
    dims = volume.ndim
    for axis, sigma in enumerate(sigmas):
        k = gaussian_kernel(float(sigma)).to(volume.device, volume.dtype)
        shape = [1, 1] + [1] * dims
        shape[2 + axis] = len(k)
        pad = [0, 0] * dims
        pad[2 * (dims - 1 - axis)] = pad[2 * (dims - 1 - axis) + 1] = len(k) // 2
        conv = (F.conv3d if dims == 3 else F.conv2d)
        x = conv(F.pad(x, pad, mode="replicate"), k.reshape(shape))
    return x[0, 0]


@dataclass(frozen=True)
class GaussianBlur:
    """Blur chosen channels with independent per-axis sigmas (p 0.2, half the channels)."""

    p: float = 0.2
    sigma: tuple[float, float] = (0.5, 1.0)
    p_per_channel: float = 0.5

    def sample(self, batch: int, channels: int, gen: torch.Generator) -> dict[str, torch.Tensor]:
        return {"chosen": _chosen(gen, batch, channels, self.p, self.p_per_channel),
                "sigmas": _uniform(gen, (batch, channels, 3), *self.sigma)}

    def apply(self, image: torch.Tensor, params: dict[str, torch.Tensor]) -> torch.Tensor:
        chosen = params["chosen"]
        if not chosen.any():
            return image
        image = image.clone()
        dims = image.ndim - 2
        for b, c in torch.nonzero(chosen).tolist():
            image[b, c] = blur(image[b, c], tuple(params["sigmas"][b, c, :dims].tolist()))
        return image


@dataclass(frozen=True)
class Brightness:
    """Multiply chosen channels by a factor (p 0.15)."""

    p: float = 0.15
    multiplier: tuple[float, float] = (0.75, 1.25)

    def sample(self, batch: int, channels: int, gen: torch.Generator) -> dict[str, torch.Tensor]:
        chosen = _chosen(gen, batch, channels, self.p, 1.0)
        factor = _uniform(gen, (batch, channels), *self.multiplier)
        return {"factor": torch.where(chosen, factor, torch.ones_like(factor))}

    def apply(self, image: torch.Tensor, params: dict[str, torch.Tensor]) -> torch.Tensor:
        return image * _bcast(params["factor"], image)


def _reduce(image: torch.Tensor, op) -> torch.Tensor:
    flat = image.flatten(2)
    return op(flat).reshape(*image.shape[:2], *([1] * (image.ndim - 2)))


@dataclass(frozen=True)
class Contrast:
    """Scale chosen channels around their mean, clipped to their original range (p 0.15)."""

    p: float = 0.15
    contrast: tuple[float, float] = (0.75, 1.25)

    def sample(self, batch: int, channels: int, gen: torch.Generator) -> dict[str, torch.Tensor]:
        chosen = _chosen(gen, batch, channels, self.p, 1.0)
        factor = _uniform(gen, (batch, channels), *self.contrast)
        return {"factor": torch.where(chosen, factor, torch.ones_like(factor)), "chosen": chosen}

    def apply(self, image: torch.Tensor, params: dict[str, torch.Tensor]) -> torch.Tensor:
        if not params["chosen"].any():
            return image
        mean = _reduce(image, lambda f: f.mean(-1))
        lo = _reduce(image, lambda f: f.amin(-1))
        hi = _reduce(image, lambda f: f.amax(-1))
        out = ((image - mean) * _bcast(params["factor"], image) + mean).clamp(lo, hi)
        return torch.where(_bcast(params["chosen"], image).bool(), out, image)


@dataclass(frozen=True)
class LowResolution:
    """Downsample chosen channels (nearest) by a factor and upsample back (linear); p 0.25, half the channels.

    ``ignore_axes`` are left at full resolution (the out-of-plane axis of anisotropic data).
    """

    p: float = 0.25
    scale: tuple[float, float] = (0.5, 1.0)
    p_per_channel: float = 0.5
    ignore_axes: tuple[int, ...] = ()

    def sample(self, batch: int, channels: int, gen: torch.Generator) -> dict[str, torch.Tensor]:
        return {"chosen": _chosen(gen, batch, channels, self.p, self.p_per_channel),
                "scale": _uniform(gen, (batch, channels), *self.scale)}

    def apply(self, image: torch.Tensor, params: dict[str, torch.Tensor]) -> torch.Tensor:
        if not params["chosen"].any():
            return image
        image = image.clone()
        size = image.shape[2:]
        mode = "trilinear" if len(size) == 3 else "bilinear"
        for b, c in torch.nonzero(params["chosen"]).tolist():
            s = float(params["scale"][b, c])
            small = [n if a in self.ignore_axes else max(1, round(n * s)) for a, n in enumerate(size)]
            down = F.interpolate(image[b, c][None, None], size=small, mode="nearest-exact")
            image[b, c] = F.interpolate(down, size=tuple(size), mode=mode, align_corners=False)[0, 0]
        return image


@dataclass(frozen=True)
class Gamma:
    """Gamma on the [0, 1]-rescaled channel, mean and std restored; optionally on the inverted image."""

    p: float = 0.3
    gamma: tuple[float, float] = (0.7, 1.5)
    invert: bool = False

    def sample(self, batch: int, channels: int, gen: torch.Generator) -> dict[str, torch.Tensor]:
        chosen = _chosen(gen, batch, channels, self.p, 1.0)
        low_half = torch.rand((batch, channels), generator=gen) < 0.5
        lo, hi = self.gamma
        below = _uniform(gen, (batch, channels), lo, min(1.0, hi))
        above = _uniform(gen, (batch, channels), max(1.0, lo), hi)
        gamma = torch.where(low_half & (lo < 1), below, above)
        return {"chosen": chosen, "gamma": gamma}

    def apply(self, image: torch.Tensor, params: dict[str, torch.Tensor]) -> torch.Tensor:
        if not params["chosen"].any():
            return image
        x = -image if self.invert else image
        mean = _reduce(x, lambda f: f.mean(-1))
        std = _reduce(x, lambda f: f.std(-1))
        lo = _reduce(x, lambda f: f.amin(-1))
        rng = _reduce(x, lambda f: f.amax(-1)) - lo
        y = ((x - lo) / (rng + 1e-7)).clamp_min(0) ** _bcast(params["gamma"], x) * (rng + 1e-7) + lo
        y = (y - _reduce(y, lambda f: f.mean(-1))) / (_reduce(y, lambda f: f.std(-1)) + 1e-8) * std + mean
        y = -y if self.invert else y
        return torch.where(_bcast(params["chosen"], image).bool(), y, image)
