"""Running Gaussian-weighted means of tile outputs, on small synthetic tensors."""

import torch

from segkit.infer import blending
from segkit.infer.blending import accumulators, average_in, blend_tiles, tile_overlap


def test_tile_overlap_clips_a_tile_to_the_image_inside_its_padding():
    # image of 10 voxels padded by 3 before: a tile of 8 at 0 covers image voxels 0-4 with its voxels 3-7
    assert tile_overlap((0,), (8,), ((3, 3),), (10,)) == ((slice(3, 8),), (slice(0, 5),))
    assert tile_overlap((8,), (8,), ((3, 3),), (10,)) == ((slice(0, 5),), (slice(5, 10),))


def test_blended_tiles_are_their_gaussian_weighted_mean():
    mean, weights = accumulators(1, (6,), torch.device("cpu"), dtype=torch.float32, channels_last=False)
    gaussian = torch.tensor([1.0, 2.0, 4.0, 2.0])
    outputs = torch.tensor([[[1.0, 1.0, 1.0, 1.0]], [[5.0, 5.0, 5.0, 5.0]]])
    blend_tiles(mean, weights, outputs, [(0,), (2,)], gaussian, ((0, 0),))
    # voxel 2: weights 4 (first tile) and 1 (second): (4 * 1 + 1 * 5) / 5; voxel 3: (2 * 1 + 2 * 5) / 4
    torch.testing.assert_close(mean[0], torch.tensor([1.0, 1.0, 1.8, 3.0, 5.0, 5.0]))
    torch.testing.assert_close(weights, torch.tensor([1.0, 2.0, 5.0, 4.0, 4.0, 2.0]))


def test_average_in_keeps_an_equal_weight_running_mean_slab_by_slab(monkeypatch):
    monkeypatch.setattr(blending, "AVERAGE_SLAB_VOXELS", 4)  # slabs of one 3 x 4 plane each
    values = [torch.randn(2, 5, 3, 4, generator=torch.Generator().manual_seed(k)) for k in range(3)]
    mean = values[0].half()
    for index, value in enumerate(values[1:], start=1):
        average_in(mean, value.half(), 1.0 / (index + 1))
    assert mean.dtype == torch.float16
    torch.testing.assert_close(mean.float(), torch.stack(values).mean(0), rtol=2e-3, atol=2e-3)
