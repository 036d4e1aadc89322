import numpy as np
import pytest
import torch

from segkit.io import read_image
from segkit.train.config import LossName, TrainConfig
from segkit.train.losses import (
    build_loss,
    deep_supervision_weights,
    dice_ce,
    downsample_target,
    region_dice_bce,
    regions_onehot,
)


@pytest.fixture(scope="module")
def label(hippocampus_dir):
    """A real hippocampus label map as (1, 1, i, j, k) int64."""
    seg = read_image(hippocampus_dir / "labelsTr" / "hippocampus_001.nii.gz").array
    return torch.from_numpy(np.asarray(seg, dtype=np.int64))[None, None]


def perfect_logits(label, classes=3, scale=20.0):
    return torch.nn.functional.one_hot(label[:, 0], classes).movedim(-1, 1).float() * scale


def test_dice_ce_is_minimal_for_perfect_and_high_for_wrong(label):
    good = dice_ce(perfect_logits(label), label)
    bad = dice_ce(perfect_logits((label + 1) % 3), label)
    assert good < -0.99 and bad > 0.5


def test_ignore_label_voxels_contribute_nothing(label):
    target = label.clone()
    target[..., :10] = 3  # ignore label
    logits = torch.randn(1, 3, *label.shape[2:], requires_grad=True)
    loss = dice_ce(logits, target, ignore_label=3)
    loss.backward()
    assert logits.grad[..., :10].abs().max() == 0
    assert logits.grad[..., 10:].abs().max() > 0
    changed = logits.detach().clone()
    changed[..., :10] = torch.randn_like(changed[..., :10]) * 100
    assert dice_ce(changed, target, ignore_label=3) == pytest.approx(float(loss.detach()), rel=1e-6)


def test_topk_ce_focuses_on_hard_voxels(label):
    logits = torch.randn(1, 3, *label.shape[2:])
    full = dice_ce(logits, label)
    topk = dice_ce(logits, label, topk_percent=10)
    assert topk > full
    config = TrainConfig(loss=LossName.DICE_TOPK)
    assert float(build_loss(config)(logits, label)) == pytest.approx(float(topk))


def test_regions_encoding_and_loss(label):
    regions = ((1, 2), (2,))
    onehot = regions_onehot(label, regions)
    assert torch.equal(onehot[:, 0].bool(), label[:, 0] > 0)
    assert torch.equal(onehot[:, 1].bool(), label[:, 0] == 2)
    good = region_dice_bce((onehot * 2 - 1) * 20, label, regions=regions)
    bad = region_dice_bce(-(onehot * 2 - 1) * 20, label, regions=regions)
    assert good < -0.99 and bad > 1.0


def test_region_loss_with_ignore_label(label):
    target = label.clone()
    target[..., :10] = 9
    logits = torch.randn(1, 2, *label.shape[2:], requires_grad=True)
    region_dice_bce(logits, target, regions=((1, 2), (2,)), ignore_label=9).backward()
    assert logits.grad[..., :10].abs().max() == 0


def test_deep_supervision_weights_and_targets(label):
    assert deep_supervision_weights(4) == pytest.approx([4 / 7, 2 / 7, 1 / 7, 0.0])
    small = downsample_target(label, (18, 25, 18))
    assert small.shape[2:] == (18, 25, 18) and set(small.unique().tolist()) <= {0, 1, 2}
    loss = build_loss(TrainConfig())
    outs = [perfect_logits(label), torch.zeros(1, 3, 18, 25, 18)]
    assert float(loss(outs, label)) == pytest.approx(float(dice_ce(outs[0], label)), rel=1e-6)
