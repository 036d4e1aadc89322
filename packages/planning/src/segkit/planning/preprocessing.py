"""Preprocess one case in memory: crop to nonzero, normalize, resample, sample class locations.

Training (with a segmentation) and inference (without) use the same function, and
`segkit.planning.cropping.uncrop` plus resampling back to ``shape_after_crop`` invert it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from segkit.planning.cropping import Box, crop_to_nonzero
from segkit.planning.normalization import normalize
from segkit.planning.plans import Configuration
from segkit.planning.spacing import compute_new_shape

if TYPE_CHECKING:
    import torch

MIN_LOCATIONS = 10_000
MIN_LOCATION_COVERAGE = 0.01


@dataclass(frozen=True)
class PreprocessedArrays:
    """A preprocessed case in memory.

    Args:
        data: ``(c, i, j, k)`` float32 normalized image at ``spacing``.
        seg: ``(1, i, j, k)`` int16 labels (-1 outside the nonzero region).
        crop_box: the nonzero box in the original grid.
        shape_after_crop: spatial shape of the crop before resampling.
        spacing: the spacing of ``data`` (mm, ``(i, j, k)``).
    """

    data: np.ndarray
    seg: np.ndarray
    crop_box: Box
    shape_after_crop: tuple[int, ...]
    spacing: tuple[float, ...]


def configuration_spacing(configuration: Configuration, spacing: Sequence[float]) -> tuple[float, ...]:
    """Return the 3D target spacing of a configuration for an image of ``spacing``.

    A 2D configuration keeps the image's own spacing along its slice axis.
    """
    if configuration.slice_axis is None:
        return tuple(configuration.spacing)
    in_plane = iter(configuration.spacing)
    return tuple(float(spacing[a]) if a == configuration.slice_axis else next(in_plane) for a in range(3))


def preprocess_arrays(
    data: np.ndarray,
    seg: np.ndarray | None,
    *,
    spacing: Sequence[float],
    configuration: Configuration,
    intensity_properties: Mapping[int, Mapping[str, float]],
    device: torch.device | str = "cpu",
) -> PreprocessedArrays:
    """Crop to the nonzero region, normalize each channel, resample to the configuration's spacing.

    Args:
        data: ``(c, i, j, k)`` image.
        seg: ``(i, j, k)`` or ``(1, i, j, k)`` labels, or None at inference.
        spacing: the image's spacing (mm, ``(i, j, k)``).
        configuration: the plans configuration.
        intensity_properties: channel -> foreground statistics (CT normalization).
        device: where resampling runs (torch is imported only when the grid changes).
    """
    if seg is not None and seg.ndim == data.ndim - 1:
        seg = seg[None]
    cropped, cropped_seg, box = crop_to_nonzero(data, seg)
    mask = cropped_seg[0] >= 0
    channels = [
        normalize(cropped[c], scheme, stats=intensity_properties.get(c), mask=mask if use_mask else None)
        for c, (scheme, use_mask) in enumerate(
            zip(configuration.normalization_schemes, configuration.use_mask_for_norm, strict=True)
        )
    ]
    normalized = np.stack(channels)
    target = configuration_spacing(configuration, spacing)
    shape = compute_new_shape(normalized.shape[1:], spacing, target)
    if shape == normalized.shape[1:]:
        return PreprocessedArrays(normalized, cropped_seg, box, shape, target)
    from segkit.planning.resampling import resample_image, resample_labels

    options = configuration.resampling
    common = {
        "to_shape": shape,
        "from_spacing": spacing,
        "to_spacing": target,
        "order_z": options.order_z,
        "separate_z": options.force_separate_z,
        "device": device,
    }
    out_data = resample_image(normalized, order=options.order_data, **common).cpu().numpy()
    out_seg = resample_labels(cropped_seg, order=options.order_seg, **common).cpu().numpy()
    return PreprocessedArrays(out_data, out_seg, box, tuple(normalized.shape[1:]), target)


def class_locations(seg: np.ndarray, labels: Sequence[int], *, seed: int = 1234) -> dict[int, np.ndarray]:
    """Sample voxel coordinates of each label for foreground oversampling.

    Per label: ``max(min(10000, n), ceil(1% of n))`` of its ``n`` voxels, without
    replacement (nnU-Net's numbers). Labels absent from ``seg`` get an empty array.

    Args:
        seg: ``(1, i, j, k)`` or ``(i, j, k)`` labels.
        labels: the label values to sample (usually the foreground labels).

    Returns:
        label -> ``(n, 3)`` int32 spatial coordinates (without the channel axis).
    """
    spatial = seg[0] if seg.ndim == 4 else seg
    rng = np.random.default_rng(seed)
    wanted = np.asarray(sorted(labels))
    flat = spatial.ravel()
    candidates = np.flatnonzero(np.isin(flat, wanted))
    values = flat[candidates]
    result = {}
    for label in wanted:
        members = candidates[values == label]
        n = members.size
        take = max(min(MIN_LOCATIONS, n), int(np.ceil(n * MIN_LOCATION_COVERAGE)))
        picked = rng.choice(members, take, replace=False) if take < n else members
        result[int(label)] = np.stack(np.unravel_index(np.sort(picked), spatial.shape), axis=1).astype(np.int32)
    return result


def revert_to_original_grid(
    array: np.ndarray | torch.Tensor,
    *,
    crop_box: Box,
    shape_after_crop: Sequence[int],
    original_shape: Sequence[int],
    is_labels: bool,
    device: torch.device | str = "cpu",
) -> np.ndarray:
    """Map a result on the preprocessed grid back to the original image grid.

    Resamples to the crop's shape (label-safe for labels, linear for logits or
    probabilities), then places it into the original shape (labels outside the crop box are
    0, and so are logits; callers wanting probability 1 for background fill it themselves).

    Args:
        array: ``(i, j, k)`` labels or ``(c, i, j, k)`` logits on the preprocessed grid.
        crop_box, shape_after_crop, original_shape: from the case's properties.
        is_labels: whether ``array`` holds labels.
        device: where resampling runs.

    Returns:
        numpy array on the original grid (labels keep their dtype; logits are float32).
    """
    from segkit.planning.cropping import uncrop
    from segkit.planning.resampling import resample_labels, resample_logits

    if is_labels:
        resampled = resample_labels(array, to_shape=shape_after_crop, device=device)
    else:
        resampled = resample_logits(array, to_shape=shape_after_crop, device=device)
    return uncrop(resampled.cpu().numpy(), crop_box, original_shape)
