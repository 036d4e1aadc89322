"""Clean-up of single-vertebra maps (TotalSegmentator's vertebrae_pp and its refinement) on a real CT's vertebrae."""

import json

import numpy as np
import pytest
from scipy import ndimage

from segkit.io import Image, read_image
from segtool.registry import load_registry
from segtool.vertebrae import grow_labels, separate_vertebrae, trim_to

SPINE = ("vertebrae_L2", "vertebrae_L1", "vertebrae_T12", "vertebrae_T11")  # in TotalSegmentator's 3 mm map, bottom up


@pytest.fixture(scope="module")
def spine(ct_dir) -> tuple[Image, dict[str, np.ndarray]]:
    """The 3 mm grid of TotalSegmentator's fast map of the small example CT, and the inner part of each of its
    vertebrae large enough to keep one: the largest piece left by eroding it by one voxel (the vertebrae_pp model
    was trained on labels eroded by 3 mm, and segments one body per vertebra)."""
    seg = read_image(ct_dir / "example_seg_fast.nii.gz")
    value_of = {name: int(v) for v, name in json.loads((ct_dir / "total_labels.json").read_text())["labels"].items()}
    inner = {}
    for name in SPINE:
        pieces, count = ndimage.label(ndimage.binary_erosion(seg.array == value_of[name]))
        sizes = np.bincount(pieces.ravel())[1:]
        if count and sizes.max() > 10:
            inner[name] = pieces == np.argmax(sizes) + 1
    return seg, inner


def numbered(masks: dict[str, np.ndarray], value_of: dict[str, int]) -> np.ndarray:
    labels = np.zeros(next(iter(masks.values())).shape, dtype=np.uint16)
    for name, mask in masks.items():
        labels[mask] = value_of[name]
    return labels


def mixed_up(labels: np.ndarray, value: int, wrong: int) -> np.ndarray:
    """``labels`` with the upper half (RAS z) of vertebra ``value`` numbered ``wrong``: two labels touch."""
    mixed = labels.copy()
    z = np.nonzero(labels == value)[2]
    upper = np.zeros_like(labels, dtype=bool)
    upper[:, :, int(np.median(z)) + 1:] = True
    mixed[(labels == value) & upper] = wrong
    return mixed


def test_mixed_up_vertebrae_are_numbered_again_by_height(spine):
    grid, inner = spine
    assert list(inner) == ["vertebrae_L2", "vertebrae_L1", "vertebrae_T12"] and grid.spacing == (3.0, 3.0, 3.0)
    names = load_registry().task("vertebrae_pp").labels
    value_of = {name: value for value, name in names.items()}
    truth = numbered(inner, value_of)
    values = range(1, 25)
    assert value_of["vertebrae_L5"] == 24 and not set(np.unique(truth)) & {1, 24}  # neither end is in this scan

    # the upper half of L1 called T12: from the bottom up, the lowest vertebra found (L2) and the ones above it
    repaired = separate_vertebrae(mixed_up(truth, value_of["vertebrae_L1"], value_of["vertebrae_T12"]), grid, values,
                                  100.0, 3.0)
    inside = truth > 0
    assert np.array_equal(repaired[inside], truth[inside])
    assert np.array_equal(repaired, grow_labels(truth, grid.spacing, 3.0))

    # numbered as C1-C3 (a neck scan: the top vertebra, not the bottom one): numbered from C1 down
    neck = {name: mask for name, mask in inner.items()}
    as_neck = numbered(neck, dict(zip(SPINE[:3], (3, 2, 1), strict=True)))  # L2 -> C3 ... T12 -> C1
    repaired = separate_vertebrae(mixed_up(as_neck, 2, 3), grid, values, 100.0, 0.0)
    assert np.array_equal(repaired, as_neck)

    # bodies under 100 mm3 are dropped where the numbering is redone; an untouched map is only grown
    speck = mixed_up(truth, value_of["vertebrae_L1"], value_of["vertebrae_T12"])
    far = tuple(int(i) for i in np.argwhere(truth == 0)[0])
    speck[far] = value_of["vertebrae_T5"]
    assert separate_vertebrae(speck, grid, values, 100.0, 0.0)[far] == 0
    assert separate_vertebrae(speck, grid, values, 20.0, 0.0)[far] != 0  # 27 mm3 is kept above 20 mm3
    assert np.array_equal(separate_vertebrae(truth, grid, values, 100.0, 0.0), truth)


def test_growing_takes_background_only_within_the_radius(spine):
    grid, inner = spine
    labels = numbered(inner, {name: value for value, name in enumerate(inner, start=1)})
    grown = grow_labels(labels, grid.spacing, 3.0)  # one voxel: the six face neighbours on this 3 mm grid
    claimed = np.zeros(labels.shape, dtype=bool)
    for value in np.unique(labels[labels > 0]):  # lower values first: they take what two vertebrae reach
        reached = ndimage.binary_dilation(labels == value) & (labels == 0) & ~claimed
        assert np.array_equal(grown == value, (labels == value) | reached)
        claimed |= reached
    wider = grow_labels(labels, (1.5, 1.5, 3.0), 3.0)  # two voxels in x and y, one in z
    assert (wider > 0).sum() > (grown > 0).sum()


def test_trimming_keeps_only_the_grown_labels_inside_the_mask(spine, ct_dir):
    grid, inner = spine
    labels = numbered(inner, {name: value for value, name in enumerate(inner, start=1)})
    bone = read_image(ct_dir / "example_ct_sm.nii.gz").array > 150
    assert bone.shape == labels.shape
    trimmed = trim_to(labels, bone, grid.spacing, 3.0)
    assert not trimmed[~bone].any()
    assert np.array_equal(trimmed[bone], grow_labels(labels, grid.spacing, 3.0)[bone])
    assert 0 < (trimmed > 0).sum() < (grow_labels(labels, grid.spacing, 3.0) > 0).sum()
    given = labels.copy()
    assert np.array_equal(trim_to(labels, bone, grid.spacing, 0.0), np.where(bone, labels, 0))
    assert np.array_equal(labels, given)  # the map trimmed is a new one, even without growth
