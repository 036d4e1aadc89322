"""Bring network-grid logits back to the input grid: resample, argmax, uncrop, undo orientation."""

from __future__ import annotations

import numpy as np
import torch

from segkit.infer.model_setup import ModelSetup
from segkit.infer.preprocessing import CaseGeometry
from segkit.infer.resampling import (
    argmax_on_grid,
    best_class,
    labels_to_grid,
    logits_to_grid,
    paint_regions,
    regions_on_grid,
)
from segkit.io import Image
from segkit.planning.cropping import uncrop


def _to_input_grid(array: np.ndarray, geometry: CaseGeometry, setup: ModelSetup, image: Image) -> Image:
    """Uncropped ``(..., *network order)`` array -> Image on ``image``'s grid (orientation undone).

    The input's ``meta`` (its label table, a time step) describes the input, not the prediction, and is not
    carried over.
    """
    lead = array.ndim - len(setup.axis_permutation)
    inverse = np.argsort(setup.axis_permutation)
    array = np.transpose(array, (*range(lead), *(lead + int(i) for i in inverse)))
    canonical = Image(np.ascontiguousarray(array), geometry.canonical_affine)
    restored = canonical.reorient(image.axis_codes)
    return Image(restored.array, image.affine)


def indices_to_values(indices: np.ndarray, label_values: tuple[int, ...]) -> np.ndarray:
    """Class indices -> label values (uint8, or uint16 for values above 255)."""
    values = np.asarray(label_values)
    dtype = np.uint8 if values.max() < 256 else np.uint16
    if np.array_equal(values, np.arange(len(values))):
        return indices.astype(dtype)
    return values.astype(dtype)[indices]


def labels_from_logits(logits: torch.Tensor, geometry: CaseGeometry, setup: ModelSetup, *, image: Image,
                       fast: bool = False) -> Image:
    """Return the label map of ``logits`` on the grid of ``image``.

    Args:
        logits: ``(classes, *network_shape)`` on any device.
        geometry: from `preprocess`.
        setup: the model's setup.
        image: the input image (its grid and orientation are reproduced exactly).
        fast: decide the labels on the network grid, then nearest-neighbour resampling (instead of resampling
            logits).

    A region-based model's regions are thresholded at probability 0.5 and painted in `regions_class_order`.
    """
    grid = {"from_spacing": geometry.network_spacing, "to_spacing": geometry.spacing, "options": setup.resampling}
    regions = setup.regions_class_order is not None
    if fast:
        decided = paint_regions(logits) if regions else best_class(logits, 0)
        labels = labels_to_grid(decided, geometry.cropped_shape, **grid)
    else:
        labels = (regions_on_grid if regions else argmax_on_grid)(logits, geometry.cropped_shape, **grid)
    indices = uncrop(labels.cpu().numpy().astype(np.int16), geometry.box, _uncropped_shape(geometry, setup))
    return _to_input_grid(indices_to_values(indices, setup.label_values), geometry, setup, image)


def _uncropped_shape(geometry: CaseGeometry, setup: ModelSetup) -> tuple[int, ...]:
    return tuple(geometry.canonical_shape[p] for p in setup.axis_permutation)


def probabilities_from_logits(logits: torch.Tensor, geometry: CaseGeometry, setup: ModelSetup, *,
                              image: Image) -> np.ndarray:
    """Return probabilities ``(outputs, i, j, k)`` on the grid of ``image`` (float32).

    Logits are resampled to the cropped input shape before the softmax (as nnU-Net); outside the crop box
    the background probability is 1. A region-based model gives each region's sigmoid (0 outside the box).
    """
    resampled = logits_to_grid(logits.float(), geometry.cropped_shape, from_spacing=geometry.network_spacing,
                               to_spacing=geometry.spacing, options=setup.resampling)
    regions = setup.regions_class_order is not None
    # one array of all classes on the grid at a time where possible (118 classes of a 3 mm CT: 0.65 GB each)
    resampled = torch.sigmoid(resampled) if regions else torch.softmax(resampled, dim=0)
    probs = resampled.cpu().numpy()
    shape = _uncropped_shape(geometry, setup)
    full = uncrop(probs, geometry.box, shape)
    del resampled, probs
    if not regions:
        outside = np.ones(shape, dtype=bool)
        outside[tuple(slice(a, b) for a, b in geometry.box)] = False
        full[0][outside] = 1.0
    return _to_input_grid(full, geometry, setup, image).array
