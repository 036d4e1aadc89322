"""`boundary_argmax` gives the labels of resampling every class densely, rounding, then taking the argmax."""

import pytest
import torch

from segkit.infer.boundary_argmax import boundary_argmax, linear_orders
from segkit.planning.interpolation import resize_axis


def dense_resample(logits: torch.Tensor, to_shape, orders) -> torch.Tensor:
    x = logits.double()  # exact enough: rounding decides as it would on the exact values
    for axis, (size, order) in enumerate(zip(to_shape, orders, strict=True)):
        x = resize_axis(x, axis + 1, size, order=order)
    return x


def dense_labels(logits: torch.Tensor, to_shape, orders) -> torch.Tensor:
    return dense_resample(logits, to_shape, orders).to(logits.dtype).argmax(0)


def smooth_logits(classes: int, shape, seed: int) -> torch.Tensor:
    # blobs: each class peaks somewhere, so most voxels have one clear winner and boundaries between them
    generator = torch.Generator().manual_seed(seed)
    grids = torch.meshgrid(*(torch.linspace(0, 1, n) for n in shape), indexing="ij")
    centres = torch.rand(classes, len(shape), generator=generator)
    distance = sum((g[None] - centres[:, a].view(-1, *[1] * len(shape))) ** 2 for a, g in enumerate(grids))
    return -20 * distance + 0.05 * torch.randn(classes, *shape, generator=generator)


CASES = [  # (classes, source shape, target shape, orders): up- and downsampling, a nearest axis, 2D, many classes
    (6, (9, 11, 13), (20, 17, 30), (1, 1, 1)),
    (6, (12, 14, 5), (25, 9, 16), (1, 1, 0)),
    (40, (10, 8, 12), (19, 21, 7), (1, 1, 1)),
    (3, (15, 17), (31, 8), (1, 1)),
]


@pytest.mark.parametrize("dtype", [torch.float16, torch.float32])
@pytest.mark.parametrize("case", CASES)
def test_noise_logits_match_dense(case, dtype):
    classes, source, target, orders = case
    logits = torch.randn(classes, *source, generator=torch.Generator().manual_seed(4)).to(dtype)
    labels = boundary_argmax(logits, target, orders, chunk_values=5000)  # a small chunk forces several steps
    assert labels.dtype == torch.int64 and labels.shape == target
    assert torch.equal(labels, dense_labels(logits, target, orders))


@pytest.mark.parametrize("classes", [4, 30])
def test_smooth_logits_match_dense(classes):
    logits = smooth_logits(classes, (14, 12, 10), seed=classes).half()
    target = (33, 25, 21)
    labels = boundary_argmax(logits, target, (1, 1, 1))
    assert torch.equal(labels, dense_labels(logits, target, (1, 1, 1)))
    assert len(torch.unique(labels)) > 2  # real boundaries between several classes


def test_ties_go_to_the_first_class():
    # integer logits and an exact 2x upsampling (weights 1/4, 3/4): interpolated ties are exact and frequent
    logits = torch.randint(0, 3, (5, 6, 7, 8), generator=torch.Generator().manual_seed(5)).half()
    target = (12, 14, 16)
    expected = dense_labels(logits, target, (1, 1, 1))
    interpolated = dense_resample(logits, target, (1, 1, 1))
    assert (interpolated.topk(2, 0).values.diff(dim=0) == 0).float().mean() > 0.05  # ties are common
    assert torch.equal(boundary_argmax(logits, target, (1, 1, 1)), expected)


def test_leads_within_a_rounding_step():
    # class 1 leads class 0 by one half-precision step at every corner, across the binade at 1.0: after
    # interpolation and rounding, some voxels tie and go to class 0, so no corner lead may be taken as clear
    generator = torch.Generator().manual_seed(6)
    base = (0.9 + 0.2 * torch.rand(8, 9, 10, generator=generator)).half()
    step = torch.exp2(torch.floor(torch.log2(base.float())) - 10)
    logits = torch.stack([base, (base.float() + step).half(), base - 1])
    expected = dense_labels(logits, (17, 19, 21), (1, 1, 1))
    assert 0 < (expected == 0).sum() < (expected == 1).sum()
    assert torch.equal(boundary_argmax(logits, (17, 19, 21), (1, 1, 1)), expected)


def test_one_class_and_constant_logits():
    assert torch.equal(boundary_argmax(torch.randn(1, 4, 5, 6), (8, 3, 6), (1, 1, 1)),
                       torch.zeros(8, 3, 6, dtype=torch.int64))
    assert torch.equal(boundary_argmax(torch.zeros(3, 4, 5, 6).half(), (8, 3, 6), (1, 1, 1)),
                       torch.zeros(8, 3, 6, dtype=torch.int64))


def test_logits_left_unchanged():
    logits = torch.randn(7, 5, 6, 7).half()
    before = logits.clone()
    boundary_argmax(logits, (9, 9, 9), (1, 1, 1))
    assert torch.equal(logits, before)


def test_linear_orders():
    assert linear_orders((1, 1, 0)) and not linear_orders((1, 3, 1))
