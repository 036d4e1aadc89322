import numpy as np

from segkit.train.data.sampling import choose_center, forced_foreground, patch_box, read_padded
from segkit.train.data.store import MemoryStore


def test_forced_foreground_positions_as_nnunet():
    assert forced_foreground(8, 0.33) == [False] * 5 + [True] * 3
    assert forced_foreground(2, 0.33) == [False, True]
    assert forced_foreground(4, 0.0) == [False] * 4


def test_boxes_stay_inside_or_centre_padding():
    rng = np.random.default_rng(0)
    for _ in range(50):
        low = patch_box((30, 40, 20), (16, 16, 32), rng)
        assert 0 <= low[0] <= 14 and 0 <= low[1] <= 24 and low[2] == -6
    assert patch_box((30, 40, 20), (16, 16, 32), rng, center=(0, 39, 10)) == (0, 24, -6)


def test_foreground_patch_contains_the_chosen_voxel():
    seg = np.zeros((1, 30, 30, 30), np.int16)
    seg[0, 2, 27, 15] = 2
    data = np.random.default_rng(0).normal(size=(1, 30, 30, 30)).astype(np.float32)
    store = MemoryStore({"a": (data, seg, {1: np.zeros((0, 3), np.int32), 2: np.array([[2, 27, 15]], np.int32)})})
    rng = np.random.default_rng(1)
    center = choose_center(store.class_locations("a"), rng)
    low = patch_box((30, 30, 30), (8, 8, 8), rng, center=center)
    image, labels = read_padded(store, "a", low, (8, 8, 8))
    assert labels.sum() == 2 and image.shape == (1, 8, 8, 8)
    assert choose_center({1: np.zeros((0, 3))}, rng) is None


def test_read_padded_pads_with_zeros():
    data = np.ones((2, 4, 4, 4), np.float32)
    seg = np.ones((1, 4, 4, 4), np.int16)
    store = MemoryStore({"a": (data, seg, {})})
    image, labels = read_padded(store, "a", (-2, 0, 1), (8, 4, 4))
    assert image.shape == (2, 8, 4, 4) and image[:, :2].sum() == 0 and image[:, 2:6, :, :3].min() == 1
    assert labels[:, 6:].sum() == 0 and labels[:, :, :, 3].sum() == 0
