"""Spatial transforms: rotation + scaling (one resampling from a larger patch) and mirroring."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F


def _uniform(gen: torch.Generator, shape: tuple[int, ...], low: float, high: float) -> torch.Tensor:
    return torch.rand(shape, generator=gen, dtype=torch.float64) * (high - low) + low


def rotation_matrix(angles: tuple[float, float, float] | torch.Tensor) -> torch.Tensor:
    """Return the 3x3 rotation about axes 0, 1, 2 (in that order) by `angles` radians."""
    a, b, c = (float(v) for v in angles)
    rx = torch.tensor([[1, 0, 0], [0, math.cos(a), -math.sin(a)], [0, math.sin(a), math.cos(a)]], dtype=torch.float64)
    ry = torch.tensor([[math.cos(b), 0, math.sin(b)], [0, 1, 0], [-math.sin(b), 0, math.cos(b)]], dtype=torch.float64)
    rz = torch.tensor([[math.cos(c), -math.sin(c), 0], [math.sin(c), math.cos(c), 0], [0, 0, 1]], dtype=torch.float64)
    return rz @ ry @ rx


def center_crop(tensor: torch.Tensor, size: tuple[int, ...]) -> torch.Tensor:
    """Crop the centre `size` of the spatial axes of (B, C, *spatial) (each input >= size)."""
    slices = [slice(None), slice(None)]
    for have, want in zip(tensor.shape[2:], size, strict=False):
        start = (have - want) // 2
        slices.append(slice(start, start + want))
    return tensor[tuple(slices)]


def resample(image: torch.Tensor, seg: torch.Tensor, matrices: torch.Tensor,
             size: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    """Resample (B, C, *in) image and (B, 1, *in) labels at `size`, centred, through voxel matrices.

    ``matrices`` (B, d, d) map output voxel offsets from the output centre to input voxel offsets from the
    input centre (identity = centre crop). Images interpolate linearly, labels via linearly interpolated
    one-hot maps and argmax (nnU-Net's ``mode_seg='bilinear'``). Outside the input: image 0, label 0.
    """
    dims = len(size)
    inp = torch.tensor(image.shape[2:], dtype=torch.float64)
    out = torch.tensor(size, dtype=torch.float64)
    theta = torch.diag(1 / inp) @ matrices.to(torch.float64) @ torch.diag(out)
    theta = theta.flip(1).flip(2)  # grid_sample wants the last spatial axis first
    diff = inp - out  # centre on the same voxel grid as `center_crop` (integer offset floor(diff / 2))
    shift = ((2 * torch.floor(diff / 2) - diff) / inp).flip(0)
    theta = torch.cat([theta, shift.expand(theta.shape[0], dims)[..., None]], 2)
    grid = F.affine_grid(theta.to(image.dtype).to(image.device), [image.shape[0], 1, *size], align_corners=False)
    new_image = F.grid_sample(image, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    values = label_values(seg)
    onehot = torch.cat([(seg == v) for v in values], 1).to(image.dtype)
    sampled = F.grid_sample(onehot, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    if values[0] != 0:  # outside the input counts as background
        sampled = torch.cat([sampled.new_full((sampled.shape[0], 1, *size), 1e-3), sampled], 1)
        values = torch.cat([values.new_zeros(1), values])
    new_seg = values[sampled.max(1, keepdim=True).indices]  # argmax's indices; argmax took 10-30x longer on the CPU
    return new_image, new_seg.to(seg.dtype)


def label_values(seg: torch.Tensor) -> torch.Tensor:
    """The distinct values of integer labels, ascending (``torch.unique``'s result; counting each value took 1 ms
    for a hippocampus patch on the CPU, ``unique``'s sort 12 ms)."""
    low = int(seg.min())
    counts = torch.bincount((seg.flatten() - low).long())
    return counts.nonzero().flatten().to(seg.dtype) + low


@dataclass(frozen=True)
class SpatialTransform:
    """Rotation and scaling of a larger patch, resampled to `patch_size` (nnU-Net's SpatialTransform).

    Args:
        patch_size: final spatial size.
        p_rotation, rotation_range: per-sample probability; angles drawn from +-range per rotated axis.
        p_scaling, scaling_range: per-sample probability; one factor for all axes (> 1 zooms out).
        rotation_axes: axes rotated about (all three in 3D; only the out-of-plane one for anisotropic data).
    """

    patch_size: tuple[int, ...]
    p_rotation: float = 0.2
    rotation_range: float = math.pi / 6
    p_scaling: float = 0.2
    scaling_range: tuple[float, float] = (0.7, 1.4)
    rotation_axes: tuple[int, ...] = (0, 1, 2)

    def sample(self, batch: int, gen: torch.Generator) -> dict[str, torch.Tensor]:
        """Draw per-sample matrices (B, d, d) and an `apply` mask (B,)."""
        dims = len(self.patch_size)
        rotate = torch.rand(batch, generator=gen) < self.p_rotation
        scale = torch.rand(batch, generator=gen) < self.p_scaling
        angles = _uniform(gen, (batch, 3), -self.rotation_range, self.rotation_range)
        factors = _uniform(gen, (batch,), *self.scaling_range)
        mats = []
        for b in range(batch):
            m = torch.eye(3, dtype=torch.float64)
            if rotate[b]:
                chosen = [float(angles[b, a]) if a in self.rotation_axes else 0.0 for a in range(3)]
                if dims == 2:
                    chosen = [0.0, 0.0, float(angles[b, 0])]
                m = rotation_matrix(chosen)
            if scale[b]:
                m = m * float(factors[b])
            mats.append(m[:dims, :dims])
        return {"apply": rotate | scale, "matrices": torch.stack(mats)}

    def apply(self, image: torch.Tensor, seg: torch.Tensor,
              params: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Centre-crop every sample to `patch_size`; resample the ones whose `apply` flag is set."""
        out_image = center_crop(image, self.patch_size).contiguous()
        out_seg = center_crop(seg, self.patch_size).contiguous()
        idx = torch.nonzero(params["apply"]).flatten()
        if len(idx):
            dev = idx.to(image.device)
            new_image, new_seg = resample(image[dev], seg[dev], params["matrices"][idx], self.patch_size)
            out_image[dev] = new_image
            out_seg[dev] = new_seg
        return out_image, out_seg


@dataclass(frozen=True)
class Mirror:
    """Flip each allowed spatial axis with probability 0.5, per sample."""

    axes: tuple[int, ...] = (0, 1, 2)

    def sample(self, batch: int, gen: torch.Generator) -> dict[str, torch.Tensor]:
        """Draw a (B, len(axes)) flip mask."""
        return {"flips": torch.rand((batch, len(self.axes)), generator=gen) < 0.5}

    def apply(self, image: torch.Tensor, seg: torch.Tensor,
              params: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Flip the chosen axes of each sample (image and labels alike)."""
        if not self.axes:
            return image, seg
        image, seg = image.clone(), seg.clone()
        for b in range(image.shape[0]):
            dims = [2 + a for a, f in zip(self.axes, params["flips"][b], strict=False) if f and 2 + a < image.ndim]
            if dims:
                image[b] = image[b].flip([d - 1 for d in dims])
                seg[b] = seg[b].flip([d - 1 for d in dims])
        return image, seg
