"""Micro-batches: a step in slices gives the whole batch's loss and gradient; ``auto`` slices only where exact."""

import pytest
import torch

from segkit.train.config import LossName, TrainConfig
from segkit.train.errors import TrainConfigError
from segkit.train.loop import Trainer, TrainParts
from segkit.train.micro_batches import micro_batch_size
from segkit.train.precision import Autocast
from segkit.train.setup import DataSetup, build_batches, build_model_and_optimizer

CPU = torch.device("cpu")


def test_a_step_in_micro_batches_has_the_whole_batch_gradient(hippo_preprocessed, tmp_path):
    config = TrainConfig(epochs=1, iters_per_epoch=1)
    data = DataSetup.load(hippo_preprocessed, "tiny", 0, config)
    train_batches, _, _ = build_batches(data, config)
    batch = train_batches[0]
    assert len(batch["image"]) == 2 and batch["seg"].any()
    results = []
    # the whole batch; one sample per pass; one channels-last sample per pass (as bf16 trains on the CPU)
    for micro_batch, layout in ((None, torch.contiguous_format), (1, torch.contiguous_format),
                                (1, torch.channels_last_3d)):
        _, model, loss, optimizer = build_model_and_optimizer(data, config, CPU)
        model.to(memory_format=layout)
        parts = TrainParts(config=config, model=model, loss=loss, optimizer=optimizer, train_batches=train_batches,
                           val_batches=None, device=CPU, folder=tmp_path, autocast=Autocast("cpu", None),
                           micro_batch=micro_batch, memory_format=layout)
        value = Trainer(parts).train_step(batch, 0, 0)
        results.append((value, {k: p.grad.clone() for k, p in model.named_parameters()}))
    (whole, whole_grads), *others = results
    for sliced, sliced_grads in others:
        assert sliced == pytest.approx(whole, rel=1e-5)
        for name, grad in whole_grads.items():
            torch.testing.assert_close(sliced_grads[name], grad, rtol=1e-4, atol=1e-6, msg=name)


def test_validation_in_micro_batches_has_the_whole_batch_loss_and_counts(hippo_preprocessed, tmp_path):
    config = TrainConfig(epochs=1, iters_per_epoch=1, val_iters_per_epoch=1)
    data = DataSetup.load(hippo_preprocessed, "tiny", 0, config)
    _, val_batches, _ = build_batches(data, config)
    batch = val_batches[0]
    assert len(batch["image"]) == 2 and batch["seg"].any()
    _, model, loss, optimizer = build_model_and_optimizer(data, config, CPU)
    results = []
    for micro_batch in (None, 1):
        parts = TrainParts(config=config, model=model, loss=loss, optimizer=optimizer, train_batches=None,
                           val_batches=val_batches, device=CPU, folder=tmp_path, autocast=Autocast("cpu", None),
                           micro_batch=micro_batch)
        results.append(Trainer(parts).validation_step(batch))
    (whole_loss, whole_counts), (sliced_loss, sliced_counts) = results
    assert sliced_loss == pytest.approx(whole_loss, rel=1e-5)
    assert torch.equal(sliced_counts, whole_counts) and whole_counts[0].sum() > 0


# expected: usual layout, channels-last (bf16 on the CPU: one sample per pass wherever slicing is exact)
@pytest.mark.parametrize(("changes", "features", "device", "batch_dice", "expected"), [
    ({}, 32, "cpu", False, (1, 1)),            # nnU-Net's hippocampus net: 11.5 MB per sample
    ({}, 16, "cpu", False, (2, 1)),
    ({}, 4, "cpu", False, (8, 1)),
    ({"micro_batch": 3}, 32, "cpu", False, (3, 3)),
    ({"micro_batch": 20}, 32, "cpu", False, (8, 8)),
    ({}, 32, "cuda", False, (8, 8)),
    ({"norm": "batch"}, 32, "cpu", False, (8, 8)),  # batch statistics would change
    ({"loss": LossName.DICE_TOPK}, 32, "cpu", False, (8, 8)),  # top-k of the whole batch would change
    ({}, 32, "cpu", True, (8, 8)),  # batch Dice would change
])
def test_auto_slices_only_where_the_gradient_stays_exact(changes, features, device, batch_dice, expected):
    for channels_last, size in zip((False, True), expected, strict=True):
        assert micro_batch_size(TrainConfig(**changes), batch_size=8, first_stage_features=features,
                                patch_size=(40, 56, 40), device=torch.device(device), batch_dice=batch_dice,
                                channels_last=channels_last) == size


@pytest.mark.parametrize("bad", [0, -1, 1.5, True])
def test_micro_batch_must_be_a_positive_integer(bad):
    with pytest.raises(TrainConfigError, match="micro_batch"):
        TrainConfig(micro_batch=bad)
