"""The augmentation pipeline nnU-Net trains with, assembled from an `AugmentConfig`."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import torch

from segkit.train.augment.intensity import Brightness, Contrast, Gamma, GaussianBlur, GaussianNoise, LowResolution
from segkit.train.augment.spatial import Mirror, SpatialTransform, rotation_matrix
from segkit.train.config import AugmentConfig

ANISOTROPY_THRESHOLD = 3.0
SIZE_SCALE = 0.85  # nnU-Net reads patches 1/0.85 larger so scaling mostly stays inside real data


def out_of_plane_axis(spacing: tuple[float, ...]) -> int | None:
    """Return the coarse axis of anisotropic 3D data (max/min spacing > 3), else None."""
    if len(spacing) != 3 or max(spacing) / min(spacing) <= ANISOTROPY_THRESHOLD:
        return None
    return int(max(range(3), key=lambda a: spacing[a]))


def initial_patch_size(patch_size: tuple[int, ...], rotation_range: float,
                       rotation_axes: tuple[int, ...]) -> tuple[int, ...]:
    """Return the patch to read so a rotated and scaled patch mostly stays inside real data.

    Like nnU-Net: the largest bounding box of the patch rotated about each axis alone, divided by 0.85.
    """
    size = torch.tensor(patch_size, dtype=torch.float64)
    dims = len(patch_size)
    corners = torch.tensor(list(itertools.product((-0.5, 0.5), repeat=dims)), dtype=torch.float64) * size
    extent = size.clone()
    for axis in rotation_axes:  # one axis at a time, as nnU-Net's get_patch_size
        angles = [rotation_range if a == axis else 0.0 for a in range(3)]
        m = rotation_matrix(angles) if dims == 3 else rotation_matrix([0.0, 0.0, angles[0]])[:2, :2]
        extent = torch.maximum(extent, (corners @ m.T).abs().amax(0) * 2)
    return tuple(int(math.ceil(float(v) / SIZE_SCALE)) for v in extent)


@dataclass(frozen=True)
class Augmenter:
    """Spatial -> noise -> blur -> brightness -> contrast -> low resolution -> gamma (inverted) -> gamma -> mirror.

    Build it with `Augmenter.build`; call it on a batch read at `input_size` to get `patch_size` back.
    """

    patch_size: tuple[int, ...]
    input_size: tuple[int, ...]
    spatial: SpatialTransform
    intensity: tuple
    mirror: Mirror

    @classmethod
    def build(cls, config: AugmentConfig, patch_size: tuple[int, ...], spacing: tuple[float, ...]) -> Augmenter:
        """Assemble the pipeline for `patch_size` (voxels) of data with `spacing` (mm), (i, j, k) order."""
        dims = len(patch_size)
        coarse = out_of_plane_axis(spacing)
        rotation_axes = (coarse,) if coarse is not None else tuple(range(3))
        spatial = SpatialTransform(patch_size, p_rotation=config.p_rotation, rotation_range=config.rotation_range,
                                   p_scaling=config.p_scaling, scaling_range=config.scaling_range,
                                   rotation_axes=rotation_axes)
        rotating = config.p_rotation > 0 or config.p_scaling > 0
        input_size = initial_patch_size(patch_size, config.rotation_range if config.p_rotation else 0.0,
                                        rotation_axes) if rotating else tuple(patch_size)
        ignore = (coarse,) if coarse is not None else ()
        intensity = (
            GaussianNoise(config.p_noise, config.noise_variance),
            GaussianBlur(config.p_blur, config.blur_sigma),
            Brightness(config.p_brightness, config.brightness_range),
            Contrast(config.p_contrast, config.contrast_range),
            LowResolution(config.p_lowres, config.lowres_range, ignore_axes=ignore),
            Gamma(config.p_gamma_inverted, config.gamma_range, invert=True),
            Gamma(config.p_gamma, config.gamma_range),
        )
        mirror = Mirror(tuple(a for a in config.mirror_axes if a < dims))
        return cls(tuple(patch_size), input_size, spatial, intensity, mirror)

    def __call__(self, image: torch.Tensor, seg: torch.Tensor,
                 gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Augment (B, C, *input_size) images and (B, 1, *input_size) labels to `patch_size`."""
        batch, channels = image.shape[:2]
        image, seg = self.spatial.apply(image, seg, self.spatial.sample(batch, gen))
        for transform in self.intensity:
            image = transform.apply(image, transform.sample(batch, channels, gen))
        return self.mirror.apply(image, seg, self.mirror.sample(batch, gen))
