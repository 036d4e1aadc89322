"""Analytic activation size of a U-Net spec (no network is built).

The count is the number of feature-map values the convolutions write for one sample of a
patch (encoder convs, residual shortcut convs and stem, decoder convs, transposed convs and
the segmentation head), the same sum dynamic-network-architectures' networks report with
``compute_conv_feature_map_size``. nnU-Net calibrated its GPU budget against this sum.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from segkit.planning.architecture import ArchitectureSpec, Block


def _volume(channels: int, size: Sequence[int]) -> int:
    return int(np.prod([channels, *size], dtype=np.int64))


def _stage_sizes(spec: ArchitectureSpec, patch_size: Sequence[int]) -> list[list[int]]:
    sizes = []
    size = list(patch_size)
    for stride in spec.strides:
        size = [s // st for s, st in zip(size, stride, strict=True)]
        sizes.append(size)
    return sizes


def _encoder_size(spec: ArchitectureSpec, patch_size: Sequence[int]) -> int:
    sizes = _stage_sizes(spec, patch_size)
    total = 0
    if spec.block is Block.RESIDUAL:
        total += _volume(spec.features_per_stage[0], patch_size)  # stem
        in_channels, in_size = spec.features_per_stage[0], list(patch_size)
        for f, n, size in zip(spec.features_per_stage, spec.blocks_per_stage, sizes, strict=True):
            shortcut = in_channels != f or in_size != size
            total += (2 * n + int(shortcut)) * _volume(f, size)
            in_channels, in_size = f, size
        return total
    for f, n, size in zip(spec.features_per_stage, spec.blocks_per_stage, sizes, strict=True):
        total += n * _volume(f, size)
    return total


def _decoder_size(spec: ArchitectureSpec, patch_size: Sequence[int], num_classes: int, deep_supervision: bool) -> int:
    sizes = _stage_sizes(spec, patch_size)[:-1]
    total = 0
    for depth, n in enumerate(spec.blocks_per_stage_decoder):
        level = len(sizes) - 1 - depth
        f, size = spec.features_per_stage[level], sizes[level]
        total += (n + 1) * _volume(f, size)  # convs + transposed conv
        if deep_supervision or level == 0:
            total += _volume(num_classes, size)
    return total


def feature_map_size(
    spec: ArchitectureSpec,
    patch_size: Sequence[int],
    *,
    num_classes: int,
    deep_supervision: bool = False,
) -> int:
    """Return the number of conv output values for one sample of ``patch_size``.

    Args:
        spec: the network.
        patch_size: patch edge per axis (voxels), same axis order as the spec.
        num_classes: output channels of the segmentation head.
        deep_supervision: also count the auxiliary heads (nnU-Net's planner does not).

    Example:
        >>> spec = ArchitectureSpec.plain_unet(features_per_stage=(32, 64),
        ...     kernel_sizes=((3, 3), (3, 3)), strides=((1, 1), (2, 2)))
        >>> feature_map_size(spec, (8, 8), num_classes=2)
        12416
    """
    return _encoder_size(spec, patch_size) + _decoder_size(spec, patch_size, num_classes, deep_supervision)
