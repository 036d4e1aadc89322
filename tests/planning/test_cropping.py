"""Cropping to the nonzero region and back."""

import numpy as np

from segkit.planning.cropping import OUTSIDE_LABEL, crop_to_nonzero, uncrop


def test_crop_and_uncrop_round_trip():
    data = np.zeros((2, 10, 12, 8), np.float32)
    data[0, 2:7, 3:9, 1:5] = 1
    data[1, 5, 10, 6] = 2  # another channel widens the box
    seg = np.zeros((10, 12, 8), np.uint8)
    seg[3, 4, 2] = 1
    cropped, cropped_seg, box = crop_to_nonzero(data, seg)
    assert box == ((2, 7), (3, 11), (1, 7))
    assert np.array_equal(uncrop(cropped, box, data.shape[1:]), data)
    assert cropped_seg.dtype == np.int16 and cropped_seg[1, 1, 1] == 1
    # background outside the (hole-filled) nonzero mask becomes -1, inside it stays 0
    assert cropped_seg[0, 7, 0] == OUTSIDE_LABEL and cropped_seg[0, 0, 0] == 0


def test_without_seg_and_empty_image():
    data = np.zeros((1, 4, 4, 4))
    cropped, seg, box = crop_to_nonzero(data)
    assert box == ((0, 4), (0, 4), (0, 4)) and seg.shape == (1, 4, 4, 4) and np.all(seg == OUTSIDE_LABEL)
