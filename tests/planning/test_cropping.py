"""Cropping to the nonzero region and back."""

import numpy as np
from scipy.ndimage import binary_fill_holes

from segkit.io import read_image
from segkit.planning.cropping import OUTSIDE_LABEL, bounding_box, box_slices, crop_to_nonzero, nonzero_box, uncrop


def test_crop_and_uncrop_round_trip():
    data = np.zeros((2, 10, 12, 8), np.float32)
    data[0, 2:7, 3:9, 1:5] = 1
    data[1, 5, 10, 6] = 2  # another channel widens the box
    seg = np.zeros((10, 12, 8), np.uint8)
    seg[3, 4, 2] = 1
    cropped, cropped_seg, box = crop_to_nonzero(data, seg)
    assert box == ((2, 7), (3, 11), (1, 7))
    assert np.array_equal(uncrop(cropped, box, data.shape[1:]), data)
    assert uncrop(data, ((0, 10), (0, 12), (0, 8)), data.shape[1:]) is data  # a whole-grid box: nothing to copy
    assert cropped_seg.dtype == np.int16 and cropped_seg[1, 1, 1] == 1
    # background outside the (hole-filled) nonzero mask becomes -1, inside it stays 0
    assert cropped_seg[0, 7, 0] == OUTSIDE_LABEL and cropped_seg[0, 0, 0] == 0


def test_without_seg_and_empty_image():
    data = np.zeros((1, 4, 4, 4))
    cropped, seg, box = crop_to_nonzero(data)
    assert box == ((0, 4), (0, 4), (0, 4)) and seg.shape == (1, 4, 4, 4) and np.all(seg == OUTSIDE_LABEL)


def test_mask_filled_inside_the_box_equals_the_whole_images(ct_dir):
    # a real MR with a zero background and enclosed zero voxels (holes), padded so that the box is a true crop
    image = read_image(ct_dir / "example_mr_sm.nii.gz").array
    data = np.pad(image, ((3, 5), (0, 2), (4, 1)))[None]
    whole = binary_fill_holes(data[0] != 0)
    assert (whole != (data[0] != 0)).sum() > 1000  # holes were filled
    cropped, seg, box = crop_to_nonzero(data)
    assert box == nonzero_box(data) == bounding_box(whole)
    assert box != tuple((0, n) for n in data.shape[1:])
    assert np.array_equal(seg[0] == 0, whole[box_slices(box)])
