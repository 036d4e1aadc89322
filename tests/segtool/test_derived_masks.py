"""Masks derived from the body task's classes: the whole body and its skin."""

import numpy as np
from scipy import ndimage

from segkit.io import read_image
from segtool.derived_masks import DERIVED_MASKS, SKIN_HU, derived_masks, skin


def body_of(scan: np.ndarray) -> np.ndarray:
    """A body mask of a CT scan: the largest component above -500 HU with its holes filled, slice by slice."""
    pieces, _ = ndimage.label(scan > -500)
    body = pieces == np.argmax(np.bincount(pieces.ravel())[1:]) + 1
    return np.stack([ndimage.binary_fill_holes(body[..., k]) for k in range(body.shape[2])], axis=-1)


def test_skin_is_the_soft_tissue_shell_of_the_body(ct_dir):
    scan = read_image(ct_dir / "example_ct_sm.nii.gz").array
    body = body_of(scan)
    found = skin(scan, body)
    depth = ndimage.distance_transform_cdt(np.pad(body, 1), metric="taxicab")[1:-1, 1:-1, 1:-1]  # 1: the surface
    assert found.any() and (depth[found] <= 3).all()  # from one voxel outside the body to three inside it
    assert ((scan[found] > SKIN_HU[0]) & (scan[found] < SKIN_HU[1])).all()
    surface = (depth == 1) & (scan > SKIN_HU[0]) & (scan < SKIN_HU[1])
    assert found[surface].mean() > 0.95  # the body's surface at skin density is skin, bar specks
    pieces, count = ndimage.label(found)
    assert np.bincount(pieces.ravel())[1:].min() > 5
    # with a body task's classes: the body is their union, and its skin as above
    labels = np.where(body, np.where(np.arange(scan.shape[0])[:, None, None] < scan.shape[0] // 2, 1, 2), 0)
    masks = derived_masks(DERIVED_MASKS["body"], scan, labels, {1: "body_trunc", 2: "body_extremities"})
    assert list(masks) == ["body", "skin"] and np.array_equal(masks["body"], body)
    assert np.array_equal(masks["skin"], found)
    assert "total" not in DERIVED_MASKS and derived_masks((), scan, labels, {1: "spleen", 2: "liver"}) == {}
