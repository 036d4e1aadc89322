"""Label export resamples all classes a slab at a time: same labels as resampling every class whole."""

import pytest
import torch

from segkit.infer.resampling import argmax_on_grid, best_class, paint_regions, regions_on_grid, resampled_slabs
from segkit.planning.plans import Resampling
from segkit.planning.resampling import resample_logits

CASES = [  # (network shape, target shape, from spacing, to spacing): isotropic, and a separate coarse z axis
    ((9, 11, 13), (20, 17, 30), (1.5, 1.5, 1.5), (0.7, 1.0, 0.6)),
    ((12, 14, 5), (25, 9, 16), (1.0, 1.0, 5.0), (0.5, 1.6, 1.5)),
]


@pytest.mark.parametrize("order_z", [0, 1])
@pytest.mark.parametrize("case", CASES)
def test_slabs_equal_whole_resampling(case, order_z):
    source, target, from_spacing, to_spacing = case
    logits = torch.randn(6, *source, generator=torch.Generator().manual_seed(1)).half()
    options = Resampling(order_z=order_z)
    whole = resample_logits(logits.float(), to_shape=target, from_spacing=from_spacing, to_spacing=to_spacing,
                            order=options.order_probabilities, order_z=order_z)
    grid = {"from_spacing": from_spacing, "to_spacing": to_spacing, "options": options}
    seen = torch.zeros(target, dtype=torch.int64)
    for rows, axis, resampled in resampled_slabs(logits, target, budget_bytes=6 * 4 * 200, **grid):
        assert resampled.shape[0] < target[axis]  # the small budget forces several slabs
        assert torch.allclose(resampled.movedim(1, 0), whole.movedim(axis + 1, 1)[:, rows], atol=1e-5)
        seen.movedim(axis, 0)[rows] += 1
    assert torch.all(seen == 1)  # every output voxel exactly once
    # the argmax is taken on values rounded back to the logits' precision, as nnU-Net stores them
    assert torch.equal(argmax_on_grid(logits, target, **grid), whole.half().argmax(0))
    assert torch.equal(regions_on_grid(logits, target, **grid), paint_regions(whole))


def test_cubic_slabs():
    logits = torch.randn(3, 8, 9, 10, generator=torch.Generator().manual_seed(2))
    options = Resampling(order_probabilities=3)
    whole = resample_logits(logits, to_shape=(15, 4, 21), order=3, separate_z=False)
    labels = argmax_on_grid(logits, (15, 4, 21), from_spacing=(1, 1, 1), to_spacing=(0.5, 1.2, 0.5), options=options)
    assert torch.equal(labels, whole.argmax(0))


@pytest.mark.parametrize("channels_last", [False, True])
def test_best_class_is_argmax_ties_included(channels_last):
    # few distinct half values: most voxels have tied classes, and the first of them must win, as with argmax
    scores = torch.randint(0, 3, (2, 7, 5, 6), generator=torch.Generator().manual_seed(3)).half()
    if channels_last:
        scores = scores.contiguous(memory_format=torch.channels_last)
    for dim in (0, 1):
        assert torch.equal(best_class(scores, dim), scores.argmax(dim))
