import pytest

from segkit.infer.errors import InferError
from segkit.infer.tiling import (
    compute_steps,
    flip_sets,
    pad_amounts,
    shift_offsets,
    shifted_pad_amounts,
    tile_starts,
)


def test_steps_worked_cases():
    assert compute_steps((100, 40, 41), (40, 40, 40), 0.5) == [[0, 20, 40, 60], [0], [0, 1]]
    # 244 with tile 128, step 0.5: ceil(116 / 64) + 1 = 3 tiles, 58 apart
    assert compute_steps((244,), (128,), 0.5) == [[0, 58, 116]]
    # step 1: tiles just cover, with the last one shifted back to the end
    assert compute_steps((90,), (40,), 1.0) == [[0, 25, 50]]


def test_steps_cover_every_voxel():
    for size in range(40, 200, 7):
        starts = compute_steps((size,), (40,), 0.5)[0]
        covered = set()
        for s in starts:
            covered.update(range(s, s + 40))
        assert covered == set(range(size))
        assert all(b - a <= 20 for a, b in zip(starts, starts[1:], strict=False))


def test_bad_step_and_small_image():
    with pytest.raises(InferError, match="step"):
        compute_steps((50,), (40,), 0)
    with pytest.raises(InferError, match="smaller than the tile"):
        compute_steps((30,), (40,), 0.5)


def test_padding_and_tiles():
    assert pad_amounts((36, 50, 35), (40, 56, 40)) == ((2, 2), (3, 3), (2, 3))
    assert pad_amounts((50, 60), (40, 56)) == ((0, 0), (0, 0))
    assert tile_starts((60, 40), (40, 40), 0.5) == [(0, 0), (20, 0)]


def test_flip_sets():
    assert flip_sets(()) == [()]
    assert len(flip_sets((0, 1, 2))) == 8
    assert flip_sets((2, 0)) == [(), (0,), (2,), (0, 2)]


def test_shift_offsets_move_along_one_axis_at_a_time():
    assert shift_offsets(0, (40, 56, 40)) == [(0, 0, 0)]
    assert shift_offsets(4, (40, 56, 40)) == [(0, 0, 0), (4, 0, 0), (-4, 0, 0), (0, 4, 0), (0, -4, 0), (0, 0, 4),
                                              (0, 0, -4)]
    assert shift_offsets(4, (1, 56, 40))[1:3] == [(0, 4, 0), (0, -4, 0)]  # a 2D model's slice axis stays


def test_shifted_padding_places_the_image_later_or_earlier():
    # no shift: the padding of pad_amounts
    assert shifted_pad_amounts((36, 50, 35), (40, 56, 40), (0, 0, 0)) == pad_amounts((36, 50, 35), (40, 56, 40))
    # 36 + 6 voxels exceed the tile of 40: nothing else is padded, and two tiles cover the axis
    assert shifted_pad_amounts((36, 50, 35), (40, 56, 40), (6, 0, 0)) == ((6, 0), (3, 3), (2, 3))
    assert shifted_pad_amounts((36, 50, 35), (40, 56, 40), (-6, 0, 0)) == ((0, 6), (3, 3), (2, 3))
    # 30 + 4 voxels still fit one tile: padded to it, the image 2 voxels later than without the shift
    assert shifted_pad_amounts((30,), (40,), (4,)) == ((7, 3),)
    assert pad_amounts((30,), (40,)) == ((5, 5),)
