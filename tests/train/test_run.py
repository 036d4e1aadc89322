"""End-to-end runs on real hippocampus cases (planned and preprocessed by segkit.planning), tiny network."""

import json
import logging

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from segkit.io.model_folder import read_model_info
from segkit.nets import load_weights
from segkit.train.errors import NonFiniteLossError, PretrainedError, ResumeError, TrainDataError
from segkit.train.loop import Trainer
from segkit.train.run import RunOptions, train

FAST = {"iters_per_epoch": 3, "val_iters_per_epoch": 1, "workers": 0, "device": "cpu"}


def test_few_iterations_write_a_model_folder(hippo_preprocessed, tmp_path):
    out = train(hippo_preprocessed, "tiny", 0, RunOptions(output=tmp_path / "m", epochs=2, **FAST))
    info = read_model_info(out)
    assert (info.trainer, info.configuration, info.folds, info.mirroring_axes) == ("default", "tiny", (0,), (0, 1, 2))
    for name in ("plans.json", "dataset.json", "splits_final.json"):
        assert (out / name).is_file()
    fold = out / "fold_0"
    stored = load_weights(fold / "weights.safetensors")
    assert stored.num_classes == 3 and stored.spec.features_per_stage == (4, 8, 16)
    stored.build()  # loads into the network built from the spec
    records = [json.loads(line) for line in (fold / "progress.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [0, 1]
    assert {"train_loss", "val_loss", "pseudo_dice", "ema_pseudo_dice", "epoch_time_s", "lr"} <= set(records[0])
    assert (fold / "progress.png").stat().st_size > 1000
    summary = json.loads((fold / "validation" / "summary.json").read_text())
    assert len(summary["metric_per_case"]) == 4 and set(summary["mean"]) == {"1", "2"}
    # segkit-evaluate's layout: per case and class, class means, foreground mean
    anterior = [case["metrics"]["1"]["Dice"] for case in summary["metric_per_case"]]
    assert summary["mean"]["1"]["Dice"] == pytest.approx(np.mean(anterior))
    assert summary["foreground_mean"]["Dice"] == pytest.approx(np.mean([m["Dice"] for m in summary["mean"].values()]))
    assert json.loads((fold / "train_config.json").read_text())["epochs"] == 2


def test_resume_continues_with_identical_state(hippo_preprocessed, tmp_path):
    straight = train(hippo_preprocessed, "tiny", 1, RunOptions(output=tmp_path / "a", epochs=3, **FAST))
    interrupted = RunOptions(output=tmp_path / "b", epochs=3, stop_after_epochs=1, **FAST)
    train(hippo_preprocessed, "tiny", 1, interrupted)
    assert not (tmp_path / "b" / "fold_1" / "validation").exists()
    with pytest.raises(ResumeError, match="from a run with seed 0, not 5; resume it with --seed 0"):
        train(hippo_preprocessed, "tiny", 1, RunOptions(output=tmp_path / "b", epochs=3, resume=True, seed=5, **FAST))
    resumed = train(hippo_preprocessed, "tiny", 1, RunOptions(output=tmp_path / "b", epochs=3, resume=True, **FAST))
    a = load_file(straight / "fold_1" / "weights.safetensors")
    b = load_file(resumed / "fold_1" / "weights.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)
    logs = [(p / "fold_1" / "progress.jsonl").read_text().splitlines() for p in (straight, resumed)]
    losses = [[json.loads(line)["train_loss"] for line in lines] for lines in logs]
    assert losses[0] == losses[1] and len(losses[0]) == 3


def test_resume_without_checkpoint_starts_afresh_and_unreadable_ones_are_an_error(hippo_preprocessed, tmp_path,
                                                                                 caplog):
    # as nnU-Net's --c: a job resubmitted before its first checkpoint trains from the start
    with caplog.at_level(logging.WARNING):
        out = train(hippo_preprocessed, "tiny", 2, RunOptions(output=tmp_path / "c", epochs=1, resume=True, **FAST))
    assert "no checkpoint to resume from; starting a new training" in caplog.text
    records = (out / "fold_2" / "progress.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in records] == [0]
    fold = tmp_path / "e" / "fold_2"
    fold.mkdir(parents=True)
    (fold / "checkpoint_latest.pt").write_bytes(b"truncated by a crash")
    with pytest.raises(ResumeError, match="no valid checkpoint"):
        train(hippo_preprocessed, "tiny", 2, RunOptions(output=tmp_path / "e", epochs=1, resume=True, **FAST))


def test_corrupt_latest_checkpoint_falls_back_to_previous(hippo_preprocessed, tmp_path):
    options = RunOptions(output=tmp_path / "d", epochs=3, stop_after_epochs=2, checkpoint_every=1, **FAST)
    train(hippo_preprocessed, "tiny", 0, options)
    fold = tmp_path / "d" / "fold_0"
    (fold / "checkpoint_latest.pt").write_bytes(b"truncated by a crash")
    train(hippo_preprocessed, "tiny", 0, RunOptions(output=tmp_path / "d", epochs=3, resume=True, **FAST))
    epochs = [json.loads(line)["epoch"] for line in (fold / "progress.jsonl").read_text().splitlines()]
    assert epochs == [0, 1, 2]  # restarted after epoch 0's checkpoint, lost only epoch 1


def test_loss_falls_when_overfitting(hippo_preprocessed, tmp_path):
    trainer_file = tmp_path / "overfit.json"
    trainer_file.write_text(json.dumps({"inherits_from": "noAugmentation", "schedule": "constant",
                                        "optimizer": "adam", "lr": 3e-3, "weight_decay": 0.0}))
    out = train(hippo_preprocessed, "tiny", "all", RunOptions(output=tmp_path / "o", trainer=str(trainer_file),
                                                           epochs=6, iters_per_epoch=5, val_iters_per_epoch=0,
                                                           workers=0, device="cpu"))
    losses = [json.loads(line)["train_loss"] for line in (out / "fold_all" / "progress.jsonl").read_text().splitlines()]
    assert losses[-1] < losses[0] - 0.3


def test_fine_tuning_loads_body_and_rejects_mismatch(hippo_preprocessed, tmp_path):
    first = train(hippo_preprocessed, "tiny", "all", RunOptions(output=tmp_path / "p", epochs=1, **FAST))
    weights = first / "fold_all" / "weights.safetensors"
    tuned = train(hippo_preprocessed, "tiny", "all", RunOptions(output=tmp_path / "q", epochs=1, pretrained=weights,
                                                            iters_per_epoch=1, val_iters_per_epoch=0, workers=0,
                                                            device="cpu"))
    assert (tuned / "fold_all" / "weights.safetensors").is_file()
    plans = json.loads((hippo_preprocessed / "plans.json").read_text())
    with pytest.raises(PretrainedError, match="shape|missing"):
        from segkit.nets import ArchitectureSpec, build_network
        from segkit.train.pretrained import load_pretrained
        arch = dict(plans["configurations"]["tiny"]["architecture"], features_per_stage=[8, 16, 32])
        load_pretrained(build_network(ArchitectureSpec.from_dict(arch), 1, 3), weights)


def test_nan_loss_stops_and_keeps_last_checkpoint(hippo_preprocessed, tmp_path):
    from segkit.train.config import TrainConfig
    from segkit.train.loop import TrainParts
    from segkit.train.losses import SegmentationLoss
    from segkit.train.precision import Autocast
    from segkit.train.setup import DataSetup, build_batches, build_model_and_optimizer

    config = TrainConfig(epochs=3, iters_per_epoch=2, val_iters_per_epoch=0, checkpoint_every=1)
    data = DataSetup.load(hippo_preprocessed, "tiny", 0, config)
    _, model, loss, optimizer = build_model_and_optimizer(data, config, torch.device("cpu"))
    train_batches, _, _ = build_batches(data, config)
    calls = []

    def poisoned(outputs, target):
        calls.append(1)
        value = loss(outputs, target)
        return value * float("nan") if len(calls) > 3 else value

    parts = TrainParts(config=config, model=model, loss=SegmentationLoss(poisoned), optimizer=optimizer,
                       train_batches=train_batches, val_batches=None, device=torch.device("cpu"), folder=tmp_path,
                       autocast=Autocast("cpu", None))
    with pytest.raises(NonFiniteLossError, match="nan at epoch 1"):
        Trainer(parts).fit()
    from segkit.train.checkpoint import load_newest
    assert load_newest(tmp_path)["epoch"] == 1


def test_not_preprocessed_configuration(hippo_preprocessed, tmp_path):
    with pytest.raises(TrainDataError):
        train(tmp_path, "3d_fullres", 0, RunOptions(**FAST))


@pytest.mark.parametrize("labels, outputs, keys", [
    ({"labels": {"background": 0, "hippocampus": [1, 2], "posterior": [2]}, "regions_class_order": [1, 2]},
     2, {"[1, 2]", "[2]"}),
    ({"labels": {"background": 0, "anterior": 1, "ignore": 2}}, 2, {"1"}),
], ids=["regions", "ignore_label"])
def test_region_and_ignore_label_training(hippo_preprocessed, tmp_path, labels, outputs, keys):
    dataset = json.loads((hippo_preprocessed / "dataset.json").read_text())
    dataset.update(labels)
    (tmp_path / "dataset.json").write_text(json.dumps(dataset))
    out = train(hippo_preprocessed, "tiny", 0, RunOptions(output=tmp_path / "m", epochs=1, iters_per_epoch=2,
                                                           val_iters_per_epoch=1, workers=0, device="cpu",
                                                           dataset_json=tmp_path / "dataset.json"))
    assert load_weights(out / "fold_0" / "weights.safetensors").num_classes == outputs
    record = json.loads((out / "fold_0" / "progress.jsonl").read_text().splitlines()[0])
    assert np.isfinite(record["train_loss"]) and len(record["pseudo_dice"]) == len(keys)
    summary = json.loads((out / "fold_0" / "validation" / "summary.json").read_text())
    assert set(summary["mean"]) == keys


def test_fine_tuning_from_an_nnunet_checkpoint(hippo_preprocessed, nnunet_reference_dir):
    from segkit.nets import ArchitectureSpec, build_network
    from segkit.train.pretrained import load_pretrained

    plans = json.loads((hippo_preprocessed / "plans.json").read_text())
    model = build_network(ArchitectureSpec.from_dict(plans["configurations"]["3d_fullres"]["architecture"]), 1, 3)
    heads_before = {k: v.clone() for k, v in model.state_dict().items() if k.startswith("decoder.heads.")}
    ckpt = next((nnunet_reference_dir / "Dataset004_Hippocampus").glob("nnUNetTrainer_*/fold_0/checkpoint_final.pth"))
    loaded = load_pretrained(model, ckpt)
    assert len(loaded) > 50 and not any(k.startswith("decoder.heads.") for k in loaded)
    state = model.state_dict()
    assert all(torch.equal(state[k], v) for k, v in heads_before.items())


def test_batched_device_augmentation_path(hippo_preprocessed, tmp_path):
    """The CUDA path (raw patches from workers, batched augmentation where the network runs), run on the CPU."""
    from segkit.train.config import TrainConfig
    from segkit.train.loop import TrainParts
    from segkit.train.precision import Autocast
    from segkit.train.setup import DataSetup, build_batches, build_model_and_optimizer

    config = TrainConfig(epochs=1, iters_per_epoch=2, val_iters_per_epoch=1)
    data = DataSetup.load(hippo_preprocessed, "tiny", 0, config)
    train_batches, val_batches, augmenter = build_batches(data, config, augment_on_device=True)
    assert train_batches[0]["image"].shape[2:] == augmenter.input_size != augmenter.patch_size
    _, model, loss, optimizer = build_model_and_optimizer(data, config, torch.device("cpu"))
    parts = TrainParts(config=config, model=model, loss=loss, optimizer=optimizer, train_batches=train_batches,
                       val_batches=val_batches, device=torch.device("cpu"), folder=tmp_path,
                       autocast=Autocast("cpu", torch.bfloat16), device_augmenter=augmenter)
    trainer = Trainer(parts)
    trainer.fit()
    assert trainer.epoch == 1 and np.isfinite(trainer.history[0]["train_loss"])


def test_2d_configuration_trains_slice_by_slice(hippo_preprocessed, tmp_path):
    plans = json.loads((hippo_preprocessed / "plans.json").read_text())
    slice_axis = plans["configurations"]["2d"]["slice_axis"]
    out = train(hippo_preprocessed, "tiny2d", 0, RunOptions(output=tmp_path / "m2d", epochs=1, **FAST))
    stored = load_weights(out / "fold_0" / "weights.safetensors")
    assert stored.spec.dims == 2 and stored.num_classes == 3
    info = read_model_info(out)
    assert slice_axis not in info.mirroring_axes and len(info.mirroring_axes) == 2
    summary = json.loads((out / "fold_0" / "validation" / "summary.json").read_text())
    assert len(summary["metric_per_case"]) == 4 and set(summary["mean"]) == {"1", "2"}
