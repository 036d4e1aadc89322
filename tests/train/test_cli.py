import json
import logging
import re
import subprocess
import sys

from typer.testing import CliRunner

from segkit.train.cli import app

runner = CliRunner()


def test_cli_trains_and_reports_the_folder(hippo_preprocessed, tmp_path):
    out = tmp_path / "cli_model"
    result = runner.invoke(app, [str(hippo_preprocessed), "tiny", "all", "-o", str(out), "--device", "cpu",
                                 "--epochs", "1", "--iters-per-epoch", "1", "--workers", "0", "-tr", "noMirroring",
                                 "--quiet"])
    assert result.exit_code == 0, result.output
    info = json.loads((out / "model.json").read_text())
    assert info["folds"] == ["all"] and info["trainer"] == "noMirroring" and info["mirroring_axes"] == []
    assert (out / "fold_all" / "weights.safetensors").is_file()


def test_seed_trains_the_same_recipe_again_from_other_weights(hippo_preprocessed, tmp_path):
    from safetensors.numpy import load_file

    weights = {}
    for seed in (None, 7):
        out = tmp_path / f"seed_{seed}"
        extra = [] if seed is None else ["--seed", str(seed)]
        result = runner.invoke(app, [str(hippo_preprocessed), "tiny", "all", "-o", str(out), "--device", "cpu",
                                     "--epochs", "1", "--iters-per-epoch", "1", "--workers", "0", "--quiet", *extra])
        assert result.exit_code == 0, result.output
        assert json.loads((out / "fold_all" / "train_config.json").read_text())["seed"] == (seed or 0)
        weights[seed] = load_file(out / "fold_all" / "weights.safetensors")
    assert weights[None].keys() == weights[7].keys()
    assert not all((weights[None][k] == weights[7][k]).all() for k in weights[None])


def test_dataset_number_as_nnunet_takes_it(hippo_preprocessed, tmp_path, monkeypatch):
    (tmp_path / "pre").mkdir()
    (tmp_path / "pre" / "Dataset004_Hippocampus").symlink_to(hippo_preprocessed)
    monkeypatch.setenv("nnUNet_preprocessed", str(tmp_path / "pre"))
    monkeypatch.setenv("nnUNet_results", str(tmp_path / "results"))
    short = ["--device", "cpu", "--epochs", "1", "--iters-per-epoch", "1", "--workers", "0", "--quiet"]
    # nnUNetv2_train 4 CONFIG FOLD -tr nnUNetTrainer: the result folder goes where nnU-Net puts its own
    result = runner.invoke(app, ["4", "tiny", "all", "-tr", "nnUNetTrainer", *short])
    assert result.exit_code == 0, result.output
    plans_name = json.loads((hippo_preprocessed / "plans.json").read_text())["plans_name"]
    folder = tmp_path / "results" / "Dataset004_Hippocampus" / f"default__{plans_name}__tiny"
    assert result.output.strip() == str(folder) and (folder / "fold_all" / "weights.safetensors").is_file()
    from segkit.infer.results_folder import find_result_folder  # segkit-predict -d 4 -c tiny -tr default -p ...

    assert find_result_folder("4", "tiny", trainer="default", plans=plans_name) == folder
    result = runner.invoke(app, ["5", "tiny", "all", *short])
    assert result.exit_code == 2 and "dataset 5 must match one folder Dataset005_*" in result.output
    monkeypatch.delenv("nnUNet_preprocessed")
    result = runner.invoke(app, ["Dataset004_Hippocampus", "tiny", "all", *short])
    assert result.exit_code == 2 and "$nnUNet_preprocessed, which is not set" in result.output


def test_bad_input_is_one_line_and_exit_2(hippo_preprocessed, tmp_path):
    cases = [
        [str(tmp_path / "missing"), "3d_fullres", "0"],
        [str(hippo_preprocessed), "3d_fullres", "5"],
        [str(hippo_preprocessed), "3d_fullres", "x"],
        [str(hippo_preprocessed), "3d_lowres", "0"],
        [str(hippo_preprocessed), "3d_fullres", "0", "-tr", "nnUNetTrainerNope"],
        [str(hippo_preprocessed), "3d_fullres", "0", "--device", "tpu"],
        [str(hippo_preprocessed), "tiny", "0", "--pretrained", str(tmp_path / "none.safetensors"), "--epochs", "1"],
    ]
    for args in cases:
        result = runner.invoke(app, [*args, "--workers", "0", "--device", "cpu"] if "--device" not in args else args)
        assert result.exit_code == 2, (args, result.output)
        assert "error:" in result.output and "Traceback" not in result.output


def test_val_only_rescores_a_trained_fold(hippo_preprocessed, tmp_path, caplog):
    out = tmp_path / "v"
    base = [str(hippo_preprocessed), "tiny", "3", "-o", str(out), "--device", "cpu", "--workers", "0", "--quiet"]
    short = ["--epochs", "1", "--iters-per-epoch", "1", "--val-iters-per-epoch", "1"]
    assert runner.invoke(app, [*base, *short]).exit_code == 0
    summary = out / "fold_3" / "validation" / "summary.json"
    first = json.loads(summary.read_text())
    summary.unlink()
    with caplog.at_level(logging.INFO, logger="segkit.train.final_validation"):
        result = runner.invoke(app, [*base, "--val", "--npz"])  # nnU-Net's --val-only --save-probabilities
    assert result.exit_code == 0, result.output
    assert re.search(r"validation Dice \(\d+ cases, preprocessed grid, no mirroring\): 1 \d\.\d{4}, 2 \d\.\d{4}; "
                     r"foreground mean \d\.\d{4}", caplog.text), caplog.text
    assert json.loads(summary.read_text())["mean"] == first["mean"]
    assert len(list((out / "fold_3" / "validation").glob("*.npz"))) == len(first["metric_per_case"])
    # each run keeps its log lines in the fold folder, --quiet or not
    logs = "".join(path.read_text() for path in sorted((out / "fold_3").glob("training_log_*.txt")))
    assert "training fold 3 of tiny with default: 16 training / 4 validation cases, cpu" in logs
    assert "epoch 0/1: train loss" in logs and "validating fold 3 of tiny" in logs
    assert logs.count("validation Dice (4 cases") == 2


def test_fold_all_validates_on_its_training_cases_as_nnunet_does(hippo_preprocessed, tmp_path):
    out = tmp_path / "all"
    base = [str(hippo_preprocessed), "tiny", "all", "-o", str(out), "--device", "cpu", "--workers", "0", "--quiet"]
    result = runner.invoke(app, [*base, "--epochs", "1", "--iters-per-epoch", "1", "--val-iters-per-epoch", "1"])
    assert result.exit_code == 0, result.output
    summary = out / "fold_all" / "validation" / "summary.json"
    cases = [case["case"] for case in json.loads(summary.read_text())["metric_per_case"]]
    assert len(cases) == len(list((hippo_preprocessed / "3d_fullres").glob("*.json"))) == 20
    summary.unlink()
    assert runner.invoke(app, [*base, "--val"]).exit_code == 0
    assert [case["case"] for case in json.loads(summary.read_text())["metric_per_case"]] == cases
    logs = "".join(path.read_text() for path in sorted((out / "fold_all").glob("training_log_*.txt")))
    assert "20 training / 20 validation cases" in logs and "validating fold all of tiny" in logs


def test_console_script_starts_without_importing_torch():
    code = "import sys, segkit.train, segkit.train.cli; assert 'torch' not in sys.modules, 'torch was imported'"
    subprocess.run([sys.executable, "-c", code], check=True)
