"""A task's connected-component clean-up (TotalSegmentator's for its body task) on a real CT's components."""

import numpy as np
from scipy import ndimage

from segkit.io import read_image
from segtool.cleanup import Cleanup
from segtool.registry import load_registry


def components(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pieces, _ = ndimage.label(mask)
    return pieces, np.bincount(pieces.ravel())


def test_body_cleanup_keeps_one_trunk_and_the_large_extremities(ct_dir):
    scan = read_image(ct_dir / "example_ct.nii.gz")  # 3 mm: 27 mm3 voxels
    labels = np.where(scan.array > 300, 2, np.where(scan.array > -500, 1, 0)).astype(np.uint8)  # bone as "extremities"
    names = {1: "body_trunc", 2: "body_extremities"}
    cleanup = load_registry().task("body").cleanup
    assert cleanup == Cleanup(("body_trunc",), {"body_extremities": 50000.0})
    cleaned = cleanup.apply(labels, names, scan)

    trunk_pieces, trunk_sizes = components(labels == 1)
    assert len(trunk_sizes) > 3  # the input's trunk has pieces to drop
    largest = trunk_pieces == np.argmax(trunk_sizes[1:]) + 1
    assert np.array_equal(cleaned == 1, largest)
    bone_pieces, bone_sizes = components(labels == 2)
    kept = bone_sizes > 50000 / 27
    kept[0] = False
    assert 0 < kept.sum() < len(bone_sizes) - 1  # some bone pieces are large enough, others are not
    assert np.array_equal(cleaned == 2, kept[bone_pieces])
    assert not cleaned[(labels == 0)].any() and not Cleanup()  # only ever sets voxels to background
