"""The model folder: nothing is written by a run that fails on bad input, other models are never mixed in,
and what a killed run leaves behind is cleaned up (real hippocampus cases, tiny network)."""

import json

import pytest
from typer.testing import CliRunner

from segkit.train.cli import app
from segkit.train.errors import TrainConfigError
from segkit.train.run import RunOptions, train

FAST = {"iters_per_epoch": 2, "val_iters_per_epoch": 1, "workers": 0, "device": "cpu"}
runner = CliRunner()


def _snapshot(folder):
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _dataset_json(hippo_preprocessed, path, **changes):
    info = json.loads((hippo_preprocessed / "dataset.json").read_text())
    path.write_text(json.dumps({**info, **changes}))
    return str(path)


def test_failed_runs_write_nothing(hippo_preprocessed, tmp_path):
    out = tmp_path / "m"
    (tmp_path / "a_file").write_text("not a folder")
    two_channels = _dataset_json(hippo_preprocessed, tmp_path / "two.json", channel_names={"0": "MRI", "1": "T2"})
    one_label = _dataset_json(hippo_preprocessed, tmp_path / "one.json", labels={"background": 0, "hippo": 1})
    cases = {  # extra arguments: what the one error line says
        ("--val-only",): "nothing to validate",
        ("--pretrained", str(hippo_preprocessed / "plans.json")): "plans.json",
        ("--pretrained-weights", str(tmp_path / "missing.safetensors")): "not found",
        ("--pretrained", str(hippo_preprocessed)): "is a folder; pretrained weights are one file: a fold's "
                                                   "weights.safetensors or checkpoint_latest.pt",
        ("--dataset-json", two_channels): "2 channels, but tiny was preprocessed with 1",
        ("--dataset-json", one_label): "labels [0, 1] leave out label value(s) [2]",
    }
    base = [str(hippo_preprocessed), "tiny", "0", "--device", "cpu", "--workers", "0", "--epochs", "1",
            "--iters-per-epoch", "1", "--val-iters-per-epoch", "1"]
    for extra, message in cases.items():
        result = runner.invoke(app, [*base, "-o", str(out), *extra])
        assert result.exit_code == 2, (extra, result.output)
        assert result.output.startswith("error:") and len(result.output.strip().splitlines()) == 1, result.output
        assert message in result.output, result.output
        assert not out.exists(), extra
    result = runner.invoke(app, [*base, "-o", str(out), "--workers", "-1"])  # refused by the option itself
    assert result.exit_code == 2 and "--workers" in result.output and not out.exists(), result.output
    with pytest.raises(TrainConfigError, match="workers: expected 0 .* or more, found -1"):
        RunOptions(workers=-1)
    result = runner.invoke(app, [*base, "-o", str(tmp_path / "a_file")])
    assert result.exit_code == 2 and "not a folder" in result.output and "Traceback" not in result.output
    result = runner.invoke(app, [*base, "-o", str(tmp_path / "a_file" / "m")])
    assert result.exit_code == 2 and "cannot create model folder" in result.output, result.output


def test_val_only_without_a_trained_fold_says_so(hippo_preprocessed, tmp_path):
    result = runner.invoke(app, [str(hippo_preprocessed), "tiny", "0", "-o", str(tmp_path / "v"), "--device", "cpu",
                                 "--val-only"])
    assert result.exit_code == 2 and "nothing to validate" in result.output, result.output


def test_a_model_folder_of_another_trainer_or_plans_is_refused_and_kept(hippo_preprocessed, tmp_path):
    out = train(hippo_preprocessed, "tiny", 0, RunOptions(output=tmp_path / "m", epochs=1, **FAST))
    before = _snapshot(out)
    with pytest.raises(Exception, match="trainer 'default', configuration 'tiny'.*choose another -o"):
        train(hippo_preprocessed, "tiny", 1, RunOptions(output=out, trainer="noMirroring", epochs=1, **FAST))
    with pytest.raises(Exception, match="configuration 'tiny'; this run is 'default', 'tiny2d'"):
        train(hippo_preprocessed, "tiny2d", 1, RunOptions(output=out, epochs=1, **FAST))
    plans = json.loads((out / "plans.json").read_text())
    plans["configurations"]["tiny"]["batch_size"] = 3  # as if fold 0 had been trained with other plans
    (out / "plans.json").write_text(json.dumps(plans))
    before[out.relative_to(out) / "plans.json"] = (out / "plans.json").read_bytes()
    with pytest.raises(Exception, match="other values than .*choose another -o"):
        train(hippo_preprocessed, "tiny", 1, RunOptions(output=out, epochs=1, **FAST))
    assert _snapshot(out) == before


def test_resume_removes_what_a_killed_write_left_and_a_fresh_run_restarts_the_log(hippo_preprocessed, tmp_path):
    out = tmp_path / "k"
    train(hippo_preprocessed, "tiny", 2, RunOptions(output=out, epochs=2, stop_after_epochs=1, **FAST))
    fold = out / "fold_2"
    # what `kill -9` during an atomic write leaves: a hidden temp file beside the checkpoint and the plot
    stale = [fold / ".checkpoint_latest.pt.0a1b2c3d.tmp", fold / ".progress.png.4e5f6a7b.tmp.png",
             fold / ".weights.safetensors.9c8d7e6f.tmp"]  # the last as segkit.nets.save_weights names it
    for path in stale:
        path.write_bytes(b"half written")
    train(hippo_preprocessed, "tiny", 2, RunOptions(output=out, epochs=2, resume=True, **FAST))
    assert not any(path.exists() for path in stale)
    assert sorted(p.name for p in fold.iterdir() if p.name.startswith(".")) == []
    epochs = [json.loads(line)["epoch"] for line in (fold / "progress.jsonl").read_text().splitlines()]
    assert epochs == [0, 1]
    train(hippo_preprocessed, "tiny", 2, RunOptions(output=out, epochs=1, **FAST))  # starts over, no --resume
    epochs = [json.loads(line)["epoch"] for line in (fold / "progress.jsonl").read_text().splitlines()]
    assert epochs == [0]


def test_nnunet_continue_flag_starts_a_fold_without_checkpoint_and_refuses_an_unreadable_one(hippo_preprocessed,
                                                                                             tmp_path):
    base = [str(hippo_preprocessed), "tiny", "1", "--device", "cpu", "--workers", "0", "--epochs", "1",
            "--iters-per-epoch", "1", "--val-iters-per-epoch", "1", "--quiet", "--c"]
    result = runner.invoke(app, [*base, "-o", str(tmp_path / "fresh")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "fresh" / "fold_1" / "weights.safetensors").is_file()
    fold = tmp_path / "broken" / "fold_1"
    fold.mkdir(parents=True)
    (fold / "checkpoint_latest.pt").write_bytes(b"truncated by a crash")
    result = runner.invoke(app, [*base, "-o", str(tmp_path / "broken")])
    assert result.exit_code == 2 and "no valid checkpoint" in result.output, result.output
    assert (fold / "checkpoint_latest.pt").read_bytes() == b"truncated by a crash"
    (fold / "checkpoint_previous.pt").write_bytes(bytes(range(256)) * 8)  # garbage, as torch reads it
    result = runner.invoke(app, [*base, "-o", str(tmp_path / "broken")])
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1, result.output
    assert result.output.count("corrupt or truncated checkpoint") == 2 and "weights_only" not in result.output
