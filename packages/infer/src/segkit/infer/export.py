"""Bring network-grid logits back to the input grid: resample, argmax, uncrop, undo orientation."""

from __future__ import annotations

import math
from collections.abc import Iterator

import nibabel.orientations as nio
import numpy as np
import torch

from segkit.infer.model_setup import ModelSetup
from segkit.infer.preprocessing import CaseGeometry
from segkit.infer.resampling import (
    SlabResampler,
    argmax_on_grid,
    best_class,
    labels_to_grid,
    paint_regions,
    regions_on_grid,
)
from segkit.io import Image
from segkit.planning.cropping import uncrop

#: float32 bytes of all classes' probabilities in one slab of `probability_slabs` (a few slabs' worth are held).
PROBABILITY_SLAB_BYTES = 1 << 27


def _input_axes(geometry: CaseGeometry, setup: ModelSetup, image: Image) -> tuple[tuple[int, bool], ...]:
    """For each axis of ``image``: the network axis it comes from, and whether it runs the other way."""
    # transform[c] = (image axis, flip) of canonical axis c; network axis n is canonical axis axis_permutation[n]
    transform = nio.ornt_transform(nio.io_orientation(geometry.canonical_affine),
                                   nio.axcodes2ornt(tuple(image.axis_codes)))
    source = {int(transform[c, 0]): (n, bool(transform[c, 1] == -1)) for n, c in enumerate(setup.axis_permutation)}
    return tuple(source[axis] for axis in range(len(source)))


def _to_input_order(array: np.ndarray, input_axes: tuple[tuple[int, bool], ...]) -> np.ndarray:
    """Array whose leading axes are spatial in network order -> C-contiguous array whose leading axes follow the
    input's axes and orientation (`_input_axes`); trailing axes are kept.

    Only axes are permuted and flipped, so a slab of the uncropped grid maps to a slab of the input grid too.
    """
    order = list(range(array.ndim))
    for axis, (network_axis, backwards) in enumerate(input_axes):
        if backwards:
            array = np.flip(array, network_axis)
        order[axis] = network_axis
    return np.ascontiguousarray(np.transpose(array, order))


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
    # the input's meta (its label table, a time step) describes the input, not the prediction: not carried over
    return Image(_to_input_order(indices_to_values(indices, setup.label_values), _input_axes(geometry, setup, image)),
                 image.affine)


def _uncropped_shape(geometry: CaseGeometry, setup: ModelSetup) -> tuple[int, ...]:
    return tuple(geometry.canonical_shape[p] for p in setup.axis_permutation)


def probability_slabs(logits: torch.Tensor, geometry: CaseGeometry, setup: ModelSetup, *, image: Image,
                      budget_bytes: int = PROBABILITY_SLAB_BYTES) -> Iterator[tuple[slice, np.ndarray]]:
    """Yield the probabilities of ``logits`` on the grid of ``image``, a slab of its first axis at a time.

    Yields ``(rows, probabilities)``, rows in increasing order: ``probabilities[:, r]`` is ``(outputs, j, k)``
    float32 for input row ``rows.start + r``, with the outputs of a voxel side by side in memory (the order in
    which `write_probabilities` stores them). Logits are resampled to the cropped input shape before the
    softmax (as nnU-Net); outside the crop box the background probability is 1. A region-based model gives each
    region's sigmoid (0 outside the box). Only a slab of all classes exists at a time (the 118 classes of a CT
    on a 1.5 mm grid: 5.2 GB at once).
    """
    input_axes = _input_axes(geometry, setup, image)
    axis, backwards = input_axes[0]
    resampler = SlabResampler(logits, geometry.cropped_shape, from_spacing=geometry.network_spacing,
                              to_spacing=geometry.spacing, options=setup.resampling, axis=axis)
    regions = setup.regions_class_order is not None
    shape = _uncropped_shape(geometry, setup)
    plane = [s for a, s in enumerate(shape) if a != axis]
    (box_lo, box_hi), plane_box = geometry.box[axis], [b for a, b in enumerate(geometry.box) if a != axis]
    step = max(1, budget_bytes // (len(logits) * 4 * math.prod(plane)))
    starts = range(0, shape[axis], step)
    for start in reversed(starts) if backwards else starts:
        stop = min(start + step, shape[axis])
        lo, hi = max(start, box_lo), min(stop, box_hi)
        inside = None
        if lo < hi:
            inside = _activate(resampler.rows(lo - box_lo, hi - box_lo).movedim(1, -1), regions).cpu().numpy()
        if inside is not None and inside.shape[:-1] == (stop - start, *plane):
            slab = inside  # the whole slab lies inside the crop box
        else:
            slab = np.zeros((stop - start, *plane, len(logits)), np.float32)  # rows, plane, outputs
            if not regions:
                slab[..., 0] = 1.0
            if inside is not None:
                slab[(slice(lo - start, hi - start), *(slice(a, b) for a, b in plane_box))] = inside
        rows = slice(shape[axis] - stop, shape[axis] - start) if backwards else slice(start, stop)
        yield rows, np.moveaxis(_to_input_order(np.moveaxis(slab, 0, axis), input_axes), -1, 0)


def _activate(logits: torch.Tensor, regions: bool) -> torch.Tensor:
    """Softmax over the last axis (sigmoid for regions), in place."""
    if regions:
        return logits.sigmoid_()
    logits -= logits.amax(-1, keepdim=True)
    return logits.div_(logits.exp_().sum(-1, keepdim=True))


def probabilities_from_logits(logits: torch.Tensor, geometry: CaseGeometry, setup: ModelSetup, *,
                              image: Image) -> np.ndarray:
    """Return probabilities ``(outputs, i, j, k)`` on the grid of ``image`` (float32; see `probability_slabs`).

    The outputs of a voxel lie side by side in memory, as in the slabs: filling a C-order array instead took 3.4x
    as long as computing the slabs (118 classes on the 1.5 mm CT example).
    """
    voxels_then_outputs = np.empty((*image.spatial_shape, len(logits)), np.float32)
    for rows, slab in probability_slabs(logits, geometry, setup, image=image):
        voxels_then_outputs[rows] = np.moveaxis(slab, 0, -1)
    return np.moveaxis(voxels_then_outputs, -1, 0)
