"""segkit-predict through CliRunner: naming, --continue, probabilities, and bad input (exit 2)."""

import json
import shutil
import subprocess
import sys

import numpy as np
from typer.testing import CliRunner

from segkit.infer.cli_predict import app
from segkit.infer.probabilities import load_probabilities
from segkit.io import read_image, write_image


def _args(inputs, out, model, *extra):
    return ["-i", str(inputs), "-o", str(out), "-m", str(model), "-f", "0", "--no-tta", "--precision", "fp32",
            "--quiet", *extra]


def _two_cases(predictions_dir, tmp_path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    for path in sorted((predictions_dir / "inputs").glob("*_0000.nii.gz"))[:2]:
        shutil.copy(path, inputs / path.name)
    return inputs


def test_predict_folder_names_outputs_like_nnunet(hippo_model_dir, predictions_dir, tmp_path):
    inputs = _two_cases(predictions_dir, tmp_path)
    out = tmp_path / "out"
    result = CliRunner().invoke(app, _args(inputs, out, hippo_model_dir, "--save-probabilities"))
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in out.iterdir())
    assert names == ["dataset.json", "hippocampus_033.nii.gz", "hippocampus_033.npz", "hippocampus_035.nii.gz",
                     "hippocampus_035.npz"]
    labels = json.loads((out / "dataset.json").read_text())["labels"]
    assert labels == json.loads((hippo_model_dir / "dataset.json").read_text())["labels"]
    for case in ("hippocampus_033", "hippocampus_035"):
        ours = read_image(out / f"{case}.nii.gz")
        ref = read_image(predictions_dir / "hippocampus_notta" / f"{case}.nii.gz")
        assert np.array_equal(ours.affine, read_image(inputs / f"{case}_0000.nii.gz").affine)
        assert (ours.array == ref.array).mean() > 0.999
        ref_probs = load_probabilities(predictions_dir / "hippocampus_notta" / f"{case}.npz")
        assert np.abs(load_probabilities(out / f"{case}.npz") - ref_probs).mean() < 1e-3
    # --continue leaves existing outputs alone, but predicts a case again whose asked-for probabilities are missing
    before = (out / "hippocampus_033.nii.gz").stat().st_mtime_ns
    (out / "hippocampus_035.npz").unlink()
    result = CliRunner().invoke(app, _args(inputs, out, hippo_model_dir, "--continue", "--save-probabilities"))
    assert result.exit_code == 0
    assert (out / "hippocampus_033.nii.gz").stat().st_mtime_ns == before
    assert (out / "hippocampus_035.npz").is_file()


def test_single_file_input(hippo_model_dir, predictions_dir, tmp_path):
    path = sorted((predictions_dir / "inputs").glob("*_0000.nii.gz"))[0]
    result = CliRunner().invoke(app, _args(path, tmp_path / "out", hippo_model_dir, "--fast-export"))
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["dataset.json", path.name.replace("_0000", "")]


def test_outputs_keep_the_input_format_and_dataset_json_says_so(hippo_model_dir, predictions_dir, tmp_path):
    source = sorted((predictions_dir / "inputs").glob("*_0000.nii.gz"))[0]
    inputs = tmp_path / "in"
    inputs.mkdir()
    write_image(read_image(source), inputs / source.name.replace(".nii.gz", ".nrrd"))
    result = CliRunner().invoke(app, _args(inputs, tmp_path / "out", hippo_model_dir))
    assert result.exit_code == 0, result.output
    case = source.name.replace("_0000.nii.gz", "")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["dataset.json", f"{case}.nrrd"]
    assert json.loads((tmp_path / "out" / "dataset.json").read_text())["file_ending"] == ".nrrd"
    ref = read_image(predictions_dir / "hippocampus_notta" / f"{case}.nii.gz")
    assert (read_image(tmp_path / "out" / f"{case}.nrrd").array == ref.array).mean() > 0.999


def test_bad_input_exits_2_with_one_line(hippo_model_dir, predictions_dir, tmp_path):
    runner = CliRunner()
    (tmp_path / "empty").mkdir()
    result = runner.invoke(app, _args(tmp_path / "empty", tmp_path / "o1", hippo_model_dir))
    assert result.exit_code == 2 and "holds no images" in result.output
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = runner.invoke(app, _args(_two_cases(predictions_dir, tmp_path), blocker / "sub", hippo_model_dir))
    assert result.exit_code == 2 and "not writable" in result.output
    result = runner.invoke(app, _args(tmp_path / "in", tmp_path / "o2", tmp_path / "empty"))
    assert result.exit_code == 2 and "neither a segkit model folder" in result.output
    assert not (tmp_path / "o1").exists() and not (tmp_path / "o2").exists()  # no output folder left behind
    result = runner.invoke(app, [*_args(tmp_path / "in", tmp_path / "o2", hippo_model_dir), "-f", "3"])
    assert result.exit_code == 2 and "not found" in result.output


def test_bad_case_mid_run_keeps_written_files_valid(hippo_model_dir, predictions_dir, tmp_path):
    inputs = _two_cases(predictions_dir, tmp_path)
    image = read_image(sorted(inputs.iterdir())[0])
    broken = image.array.astype(np.float32)
    broken[5, 5, 5] = np.nan
    write_image(image.with_array(broken), inputs / "zz_nan_0000.nii.gz")
    out = tmp_path / "out"
    result = CliRunner().invoke(app, _args(inputs, out, hippo_model_dir))
    assert result.exit_code == 2
    assert "case zz_nan: image holds NaN" in result.output and "Traceback" not in result.output
    written = sorted(out.glob("*.nii.gz"))
    assert [p.name for p in written] == ["hippocampus_033.nii.gz", "hippocampus_035.nii.gz"]
    for path in written:
        source = inputs / path.name.replace(".nii", "_0000.nii")
        assert read_image(path).spatial_shape == read_image(source).spatial_shape
    assert not [p for p in out.iterdir() if p.name.startswith(".")]


def test_console_scripts_start_without_importing_torch():
    code = ("import sys, segkit.infer, segkit.infer.cli_predict, segkit.infer.cli_tools, segkit.infer.cli_evaluate; "
            "assert 'torch' not in sys.modules, 'torch was imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_nnunet_spelling_of_several_folds_is_accepted():
    from segkit.infer.cli_predict import join_fold_values, parse_folds

    joined = join_fold_values(["-i", "in", "-f", "0", "1", "all", "--no-tta", "--folds", "3", "-o", "out"])
    assert joined == ["-i", "in", "-f", "0,1,all", "--no-tta", "--folds", "3", "-o", "out"]
    assert parse_folds([joined[3]]) == (0, 1, "all")
    assert join_fold_values(["-f", "0,2"]) == ["-f", "0,2"]
