"""Pre-processing for inference: canonical orientation, crop, normalization, resampling to the model grid."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from segkit.infer.errors import InputMismatchError
from segkit.infer.model_setup import ModelSetup
from segkit.io import Image
from segkit.planning.cropping import Box, crop_nonzero_box, nonzero_mask
from segkit.planning.normalization import normalize
from segkit.planning.resampling import resample_image, resample_labels
from segkit.planning.spacing import compute_new_shape


@dataclass(frozen=True)
class CaseGeometry:
    """What export needs to bring a prediction back onto the input grid.

    Args:
        canonical_affine: affine of the canonical (RAS) grid the prediction is made on.
        canonical_shape: spatial shape of that grid, ``(i, j, k)``.
        box: crop box in network axis order.
        cropped_shape: spatial shape after cropping (network axis order).
        network_shape: spatial shape after resampling to the model spacing (network axis order).
        spacing: the input's spacing in mm (network axis order).
        network_spacing: the spacing of the network grid (network axis order).
    """

    canonical_affine: np.ndarray
    canonical_shape: tuple[int, ...]
    box: Box
    cropped_shape: tuple[int, ...]
    network_shape: tuple[int, ...]
    spacing: tuple[float, ...]
    network_spacing: tuple[float, ...]


@dataclass(frozen=True)
class PreparedCase:
    """A normalized ``(c, *network_shape)`` float32 tensor and its geometry."""

    data: torch.Tensor
    geometry: CaseGeometry


def check_image(image: Image, setup: ModelSetup) -> None:
    """Raise `InputMismatchError` if ``image`` cannot go through a model with ``setup``."""
    if image.num_channels != setup.in_channels:
        raise InputMismatchError(f"image has {image.num_channels} channel(s), the model expects {setup.in_channels}; "
                                 f"pass one file per channel (_0000, _0001, ...)")
    if min(image.spatial_shape) < 2 and setup.slice_axis is None:
        raise InputMismatchError(f"image of shape {image.spatial_shape} is one voxel thick along an axis (2D or "
                                 "less); the model is 3D")
    if np.issubdtype(image.array.dtype, np.floating) and not np.isfinite(image.array).all():
        raise InputMismatchError("image holds NaN or infinite voxels; replace them before predicting")


def previous_stage_channels(previous: Image, image: Image, setup: ModelSetup, *, box, shape,
                            spacing, network_spacing) -> torch.Tensor:
    """Return the cascade input: the previous stage's labels as one-hot foreground channels on the network grid.

    ``previous`` (a label map on the input grid, e.g. the 3d_lowres prediction exported there) goes through
    the same canonical orientation, axis permutation and crop as the image, is resampled to the network
    grid (label-safe linear), and becomes one float channel per foreground label of the model.

    Raises:
        InputMismatchError: the previous prediction is not on the image's grid.
    """
    if not previous.same_grid(image, tolerance=1e-3):
        raise InputMismatchError(f"previous-stage prediction grid {previous.spatial_shape} differs from the image grid "
                                 f"{image.spatial_shape}")
    labels = np.transpose(previous.to_canonical().array, setup.axis_permutation)
    labels = labels[tuple(slice(a, b) for a, b in box)].astype(np.int16)
    options = setup.resampling
    resampled = resample_labels(labels, to_shape=shape, from_spacing=spacing, to_spacing=network_spacing,
                                order=options.order_seg, order_z=options.order_z, separate_z=options.force_separate_z)
    values = [v for v in setup.label_values if v != 0]
    return torch.stack([(resampled == v).float() for v in values])


def preprocess(image: Image, setup: ModelSetup, *, device: torch.device | str = "cpu",
               previous: Image | None = None) -> PreparedCase:
    """Return the network-ready tensor of ``image`` and the geometry to undo the steps.

    Steps, as nnU-Net: canonical orientation (RAS), axis permutation to the network order, crop to the
    nonzero box, per-channel normalization on the cropped array, resampling to the model spacing (skipped
    when the shape does not change).

    Args:
        image: the input, any orientation, ``(i, j, k)`` or ``(c, i, j, k)``.
        setup: the model's setup.
        device: where the returned tensor lives (resampling runs there).
        previous: for a cascade stage (``setup.previous_stage``), the previous stage's label map on the
            image's grid; its one-hot foreground channels are appended to the image channels.

    Raises:
        InputMismatchError: wrong channel count, 2D image, NaNs, a missing previous-stage prediction, or one given to
            a model that is not a cascade stage.
    """
    check_image(image, setup)
    if setup.previous_stage is not None and previous is None:
        raise InputMismatchError(f"configuration {setup.configuration!r} is a cascade stage: pass the "
                                 f"{setup.previous_stage!r} prediction of this image (--prev-stage)")
    if setup.previous_stage is None and previous is not None:
        raise InputMismatchError(f"configuration {setup.configuration!r} is not a cascade stage: it takes no previous "
                                 "stage's prediction (leave out --prev-stage)")
    canonical = image.to_canonical()
    array = canonical.array if canonical.array.ndim == 4 else canonical.array[None]
    perm = setup.axis_permutation
    data = np.transpose(array, (0, *(1 + p for p in perm)))
    spacing = tuple(canonical.spacing[p] for p in perm)
    cropped, box = crop_nonzero_box(data)
    mask = nonzero_mask(cropped) if any(setup.use_mask_for_norm) else None  # filling holes took 0.5 s on a CT
    channels = [normalize(cropped[c], setup.normalization[c], stats=setup.intensity_stats.get(c),
                          mask=mask if setup.use_mask_for_norm[c] else None) for c in range(cropped.shape[0])]
    tensor = torch.from_numpy(np.ascontiguousarray(np.stack(channels))).to(device)
    network_spacing = setup.network_spacing(spacing)
    new_shape = compute_new_shape(cropped.shape[1:], spacing, network_spacing)
    if tuple(new_shape) != tuple(cropped.shape[1:]):
        options = setup.resampling
        tensor = resample_image(tensor, to_shape=new_shape, from_spacing=spacing, to_spacing=network_spacing,
                                order=options.order_data, order_z=options.order_z,
                                separate_z=options.force_separate_z)
    if setup.previous_stage is not None:
        extra = previous_stage_channels(previous, image, setup, box=box, shape=new_shape, spacing=spacing,
                                        network_spacing=network_spacing)
        tensor = torch.cat([tensor, extra.to(tensor.device)])
    geometry = CaseGeometry(canonical_affine=canonical.affine, canonical_shape=canonical.spatial_shape, box=box,
                            cropped_shape=tuple(cropped.shape[1:]), network_shape=tuple(new_shape),
                            spacing=spacing, network_spacing=network_spacing)
    return PreparedCase(data=tensor, geometry=geometry)
