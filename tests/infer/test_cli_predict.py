"""segkit-predict through CliRunner: naming, --continue, probabilities, and bad input (exit 2)."""

import errno
import json
import logging
import shutil
import subprocess
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

from segkit.infer.cli_predict import app
from segkit.infer.errors import InferError
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
    args = [a for a in _args(inputs, out, hippo_model_dir, "--continue", "--save-probabilities") if a != "--quiet"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0
    assert f"1 case(s) written to {out}; 1 already there, kept (--continue)" in result.output
    assert (out / "hippocampus_033.nii.gz").stat().st_mtime_ns == before
    assert (out / "hippocampus_035.npz").is_file()


def test_nnunet_options_verbose_and_not_on_device_are_taken(hippo_model_dir, predictions_dir, tmp_path, caplog):
    path = sorted((predictions_dir / "inputs").glob("*_0000.nii.gz"))[0]
    with caplog.at_level(logging.INFO, logger="segkit"):
        result = CliRunner().invoke(app, _args(path, tmp_path / "o", hippo_model_dir, "--verbose", "--not_on_device"))
    assert result.exit_code == 0, result.output
    assert ("3d_fullres: fold(s) 0 on cpu, float32, step 0.5, mirroring off, shifts off, 1 tile(s) per forward "
            "pass") in caplog.text
    assert f"wrote {tmp_path / 'o' / 'hippocampus_033.nii.gz'}" in caplog.text


def test_single_file_input(hippo_model_dir, predictions_dir, tmp_path):
    path = sorted((predictions_dir / "inputs").glob("*_0000.nii.gz"))[0]
    result = CliRunner().invoke(app, _args(path, tmp_path / "out", hippo_model_dir, "--fast-export"))
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["dataset.json", path.name.replace("_0000", "")]


def test_shift_tta_predicts_as_the_predictor_with_shifts(hippo_model_dir, predictions_dir, tmp_path):
    from segkit.infer import PredictOptions, Predictor

    path = sorted((predictions_dir / "inputs").glob("*_0000.nii.gz"))[0]
    result = CliRunner().invoke(app, _args(path, tmp_path / "out", hippo_model_dir, "--shift-tta", "3"))
    assert result.exit_code == 0, result.output
    ours = read_image(tmp_path / "out" / path.name.replace("_0000", "")).array
    options = PredictOptions(tta=False, shift_tta=3, precision="fp32")
    np.testing.assert_array_equal(ours, Predictor.from_model_folder(hippo_model_dir, folds=[0], options=options)
                                  .predict(path).array)
    assert not np.array_equal(ours, read_image(predictions_dir / "hippocampus_notta" / path.name.replace("_0000", ""))
                              .array)  # nnU-Net's, without shifts
    result = CliRunner().invoke(app, _args(path, tmp_path / "bad", hippo_model_dir, "--shift-tta", "-1"))
    assert result.exit_code == 2 and not (tmp_path / "bad").exists()
    result = CliRunner().invoke(app, _args(path, tmp_path / "bad", hippo_model_dir, "--shift-tta", "40"))
    assert result.exit_code == 2 and not (tmp_path / "bad").exists()
    assert "moves the image by a whole patch (40x56x40) or more" in result.output


@pytest.mark.parametrize("ending", [".nrrd", ".mgz"])
def test_outputs_keep_the_input_format_and_dataset_json_says_so(hippo_model_dir, predictions_dir, tmp_path, ending):
    source = sorted((predictions_dir / "inputs").glob("*_0000.nii.gz"))[0]
    inputs = tmp_path / "in"
    inputs.mkdir()
    write_image(read_image(source), inputs / source.name.replace(".nii.gz", ending))
    result = CliRunner().invoke(app, _args(inputs, tmp_path / "out", hippo_model_dir))
    assert result.exit_code == 0, result.output
    case = source.name.replace("_0000.nii.gz", "")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["dataset.json", f"{case}{ending}"]
    assert json.loads((tmp_path / "out" / "dataset.json").read_text())["file_ending"] == ending
    ref = read_image(predictions_dir / "hippocampus_notta" / f"{case}.nii.gz")
    predicted = read_image(tmp_path / "out" / f"{case}{ending}")
    assert predicted.same_grid(ref, tolerance=1e-5) and (predicted.array == ref.array).mean() > 0.999


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
    result = runner.invoke(app, [*_args(tmp_path / "in", tmp_path / "o3", hippo_model_dir), "--timing",
                                 str(tmp_path / "empty")])  # a folder: checked before the model loads
    assert result.exit_code == 2 and "is a folder; name a .json file" in result.output
    assert not (tmp_path / "o3").exists()


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


def _nan_case(predictions_dir, tmp_path):
    inputs = tmp_path / "nan_in"
    inputs.mkdir()
    image = read_image(sorted((predictions_dir / "inputs").glob("*_0000.nii.gz"))[0])
    broken = image.array.astype(np.float32)
    broken[5, 5, 5] = np.nan
    write_image(image.with_array(broken), inputs / "zz_nan_0000.nii.gz")
    return inputs


def test_a_run_that_writes_no_case_leaves_nothing_behind(hippo_model_dir, predictions_dir, tmp_path):
    inputs = _nan_case(predictions_dir, tmp_path)
    result = CliRunner().invoke(app, _args(inputs, tmp_path / "new" / "out", hippo_model_dir))
    assert result.exit_code == 2 and "case zz_nan: image holds NaN" in result.output
    assert not (tmp_path / "new").exists()  # both folders this run created are gone
    kept = tmp_path / "kept"
    kept.mkdir()
    (kept / "note.txt").write_text("mine")
    result = CliRunner().invoke(app, _args(inputs, kept, hippo_model_dir))
    assert result.exit_code == 2
    assert [p.name for p in kept.iterdir()] == ["note.txt"]  # the folder and its file stay, dataset.json does not


def test_a_full_disk_while_writing_probabilities_is_one_line(hippo_model_dir, predictions_dir, tmp_path, monkeypatch):
    def full_disk(handle, header):
        handle.write(b"\x93NUMPY")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(np.lib.format, "write_array_header_1_0", full_disk)
    path = sorted((predictions_dir / "inputs").glob("*_0000.nii.gz"))[0]
    out = tmp_path / "out"
    result = CliRunner().invoke(app, _args(path, out, hippo_model_dir, "--save-probabilities"))
    assert result.exit_code == 2, result.output
    assert result.output.strip().splitlines() == [f"error: {out / 'hippocampus_033.npz'}: could not write (No space "
                                                  f"left on device)"]
    assert not out.exists()  # no half-written .npz, no temp file, no dataset.json


def test_bad_model_folders_say_what_is_wrong(hippo_model_dir, predictions_dir, tmp_path):
    runner = CliRunner()
    path = sorted((predictions_dir / "inputs").glob("*_0000.nii.gz"))[0]
    result = runner.invoke(app, [*_args(path, tmp_path / "o", hippo_model_dir), "--checkpoint", "nosuch.pth"])
    assert result.exit_code == 2 and "no fold folder holds nosuch.pth (they hold checkpoint_final.pth)" in result.output
    whole_path = str(hippo_model_dir / "fold_0" / "checkpoint_final.pth")
    result = runner.invoke(app, [*_args(path, tmp_path / "o", hippo_model_dir), "-chk", whole_path])
    assert result.exit_code == 2 and "checkpoint names a file in each fold_K folder" in result.output
    (tmp_path / "a_file").write_text("")
    result = runner.invoke(app, _args(path, tmp_path / "a_file", hippo_model_dir))
    assert result.exit_code == 2 and "output folder" in result.output and "a_file is a file; give a folder" \
        in result.output
    model = tmp_path / "T__P__3d_fullres"
    (model / "fold_0").mkdir(parents=True)
    for name in ("plans.json", "dataset.json"):
        shutil.copy(hippo_model_dir / name, model)
    (model / "fold_0" / "checkpoint_final.pth").write_text("garbage" * 10)
    result = runner.invoke(app, _args(path, tmp_path / "o", model))
    assert result.exit_code == 2 and "checkpoint_final.pth is not a readable torch checkpoint" in result.output
    # the checkpoint names its configuration, as nnU-Net reads it: a renamed copy of a result folder loads
    shutil.copy(hippo_model_dir / "fold_0" / "checkpoint_final.pth", model / "fold_0")
    renamed = model.rename(tmp_path / "my_model")
    result = runner.invoke(app, _args(path, tmp_path / "o", renamed))
    assert result.exit_code == 0, result.output
    assert np.array_equal(read_image(tmp_path / "o" / "hippocampus_033.nii.gz").array,
                          read_image(predictions_dir / "hippocampus_notta" / "hippocampus_033.nii.gz").array)
    plans = json.loads((renamed / "plans.json").read_text())
    del plans["configurations"]["3d_fullres"]
    (renamed / "plans.json").write_text(json.dumps(plans))
    result = runner.invoke(app, _args(path, tmp_path / "o2", renamed))
    assert result.exit_code == 2 and "configuration '3d_fullres' (named by its checkpoint, or else by the folder's " \
        "name) is not in plans.json (there: 2d)" in result.output
    shutil.copy(hippo_model_dir / "plans.json", renamed)
    model = renamed.rename(tmp_path / "T__P__3d_fullres")
    dataset = json.loads((model / "dataset.json").read_text())
    (model / "dataset.json").write_text(json.dumps({k: v for k, v in dataset.items() if k != "labels"}))
    result = runner.invoke(app, _args(path, tmp_path / "o3", model))
    assert result.exit_code == 2
    assert f"{model / 'dataset.json'}: 'labels' must map 'background' to 0, got no labels" in result.output
    assert not (tmp_path / "o2").exists() and not (tmp_path / "o3").exists()


def test_several_model_folders_predict_as_one_ensemble(hippo_model_dir, shipped_hippocampus_dir, predictions_dir,
                                                      tmp_path):
    from segkit.infer.predictor import PredictOptions, Predictor

    path = sorted((predictions_dir / "inputs").glob("*_0000.nii.gz"))[3]
    models = ["-m", str(hippo_model_dir), "-m", str(shipped_hippocampus_dir)]
    result = CliRunner().invoke(app, ["-i", str(path), "-o", str(tmp_path / "o"), *models, "--no-tta", "--precision",
                                      "fp32", "--quiet"])
    assert result.exit_code == 0, result.output
    both = Predictor.from_model_folder([hippo_model_dir, shipped_hippocampus_dir],
                                       options=PredictOptions(tta=False, precision="fp32"))
    assert np.array_equal(read_image(tmp_path / "o" / path.name.replace("_0000", "")).array,
                          both.predict(read_image(path)).array)
    other = tmp_path / "other"
    shutil.copytree(hippo_model_dir, other)
    dataset = json.loads((other / "dataset.json").read_text())
    (other / "dataset.json").write_text(json.dumps({**dataset, "labels": {"background": 0, "head": 1, "tail": 2}}))
    result = CliRunner().invoke(app, _args(path, tmp_path / "o2", hippo_model_dir, "-m", str(other)))
    assert result.exit_code == 2 and result.output.count("\n") == 1
    assert f"{other} prepares scans other than {hippo_model_dir} does (labels differ)" in result.output
    assert not (tmp_path / "o2").exists()


def test_console_scripts_start_without_importing_torch():
    code = ("import sys, segkit.infer, segkit.infer.cli_predict, segkit.infer.cli_tools, segkit.infer.cli_evaluate; "
            "assert 'torch' not in sys.modules, 'torch was imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_folds_are_numbers_or_all_given_apart_or_comma_joined():
    from segkit.infer.cli_predict import parse_folds

    assert parse_folds(["0", "1,all"]) == (0, 1, "all") and parse_folds(None) is None
    with pytest.raises(InferError, match="fold 'x' is neither a number nor 'all'"):
        parse_folds(["0,x"])


def _snapshot(folder):
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}


def test_an_output_folder_that_is_the_input_folder_is_refused_before_any_work(hippo_model_dir, predictions_dir,
                                                                             tmp_path):
    inputs = _two_cases(predictions_dir, tmp_path)
    (tmp_path / "link").symlink_to(inputs)
    before = _snapshot(inputs)
    single = sorted(inputs.iterdir())[0]
    for given, out in ((inputs, inputs), (inputs, inputs / "."), (inputs, tmp_path / "link"), (single, inputs)):
        result = CliRunner().invoke(app, _args(given, out, tmp_path / "no_model_is_loaded"))
        assert result.exit_code == 2, result.output
        assert result.output.strip().splitlines() == [f"error: output folder {out} is the input folder {inputs}: "
                                                      f"outputs there would replace or join the inputs; choose "
                                                      f"another output folder"]
        assert sorted(p.name for p in inputs.iterdir()) == sorted(before) and _snapshot(inputs) == before
    # a folder inside the input folder is fine: cases are not searched for in subfolders
    result = CliRunner().invoke(app, _args(inputs, inputs / "pred", hippo_model_dir))
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (inputs / "pred").iterdir()) == ["dataset.json", "hippocampus_033.nii.gz",
                                                                   "hippocampus_035.nii.gz"]
    assert _snapshot(inputs) == before


def test_a_model_found_by_dataset_as_nnunetv2_predict_finds_it(hippo_model_dir, predictions_dir, tmp_path,
                                                              monkeypatch):
    inputs = _two_cases(predictions_dir, tmp_path)
    common = ["-i", str(inputs), "-f", "0", "--no-tta", "--precision", "fp32", "--quiet"]
    by_folder = CliRunner().invoke(app, [*common, "-o", str(tmp_path / "m"), "-m", str(hippo_model_dir)])
    assert by_folder.exit_code == 0, by_folder.output
    monkeypatch.setenv("nnUNet_results", str(hippo_model_dir.parent.parent))
    nnunet_spelling = ["-i", str(inputs), "-f", "0", "-step_size", "0.5", "--disable_tta", "-device", "cpu", "-npp",
                       "1", "-nps", "1", "-chk", "checkpoint_final.pth", "--disable_progress_bar",
                       "--precision", "fp32"]
    for dataset, args in (("4", common), ("Dataset004_Hippocampus", nnunet_spelling)):  # nnUNetv2_predict's too
        out = tmp_path / f"d{dataset}"
        result = CliRunner().invoke(app, [*args, "-o", str(out), "-d", dataset, "-c", "3d_fullres",
                                          "-tr", "nnUNetTrainer_refShort"])
        assert result.exit_code == 0, result.output
        for case in ("hippocampus_033", "hippocampus_035"):
            assert np.array_equal(read_image(out / f"{case}.nii.gz").array,
                                  read_image(tmp_path / "m" / f"{case}.nii.gz").array)

    for args, message in [
        (["-d", "4", "-c", "2d", "-tr", "nnUNetTrainer_refShort"],
         "has no nnUNetTrainer_refShort__nnUNetPlans__2d; it has: nnUNetTrainer_refShort__nnUNetPlans__3d_fullres"),
        (["-d", "4", "-c", "3d_fullres"], "has no nnUNetTrainer__nnUNetPlans__3d_fullres"),
        (["-d", "99", "-c", "3d_fullres"], "dataset 99 must match one folder Dataset099_*"),
        (["-d", "4"], "-d DATASET needs -c CONFIGURATION"),
        ([], "give the model as -m MODEL_FOLDER or as -d DATASET -c CONFIGURATION"),
        (["-d", "4", "-c", "3d_fullres", "-m", str(hippo_model_dir)], "one of the two"),
        (["-m", str(hippo_model_dir), "-c", "2d", "-p", "nnUNetPlans"],  # -c and -p would be ignored
         f"-c/-p: these pick a result folder under -d DATASET, but -m {hippo_model_dir} gives the folder itself"),
        (["-d", str(hippo_model_dir.parent), "-c", "3d_fullres", "-tr", "nnUNetTrainer_refShort"],  # a path
         f"dataset must be a number or a dataset folder name of {hippo_model_dir.parent.parent} (Dataset004_Name), "
         f"got '{hippo_model_dir.parent}'"),
        (["-d", "..", "-c", "3d_fullres"], "dataset must be a number or a dataset folder name"),
        (["-d", "", "-c", "3d_fullres"], "dataset must be a number or a dataset folder name"),
    ]:
        result = CliRunner().invoke(app, [*common, "-o", str(tmp_path / "bad"), *args])
        assert result.exit_code == 2 and message in result.output, (args, result.output)
        assert result.output.strip().count("\n") == 0 and not (tmp_path / "bad").exists()
    monkeypatch.setenv("nnUNet_results", str(hippo_model_dir / "plans.json"))
    result = CliRunner().invoke(app, [*common, "-o", str(tmp_path / "bad"), "-d", "4", "-c", "3d_fullres"])
    assert result.exit_code == 2 and f"results folder {hippo_model_dir / 'plans.json'} is not a folder" in result.output
    monkeypatch.delenv("nnUNet_results")
    result = CliRunner().invoke(app, [*common, "-o", str(tmp_path / "bad"), "-d", "4", "-c", "3d_fullres"])
    assert result.exit_code == 2 and "$nnUNet_results, which is not set" in result.output


def test_parts_split_the_cases_as_nnunetv2_predict_does(hippo_model_dir, predictions_dir, tmp_path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    for path in sorted((predictions_dir / "inputs").glob("*_0000.nii.gz"))[:3]:
        shutil.copy(path, inputs / path.name)
    out = tmp_path / "out"
    written = []
    for part in (0, 1):
        result = CliRunner().invoke(app, _args(inputs, out, hippo_model_dir, "--num-parts", "2", "--part-id",
                                               str(part)))
        assert result.exit_code == 0, result.output
        written.append(sorted(p.name for p in out.glob("*.nii.gz")))
    assert written == [["hippocampus_033.nii.gz", "hippocampus_036.nii.gz"],  # every second case, in name order
                       ["hippocampus_033.nii.gz", "hippocampus_035.nii.gz", "hippocampus_036.nii.gz"]]
    empty = CliRunner().invoke(app, _args(inputs, tmp_path / "none", hippo_model_dir, "--num-parts", "4",
                                          "--part-id", "3"))
    assert empty.exit_code == 0 and not (tmp_path / "none").exists()  # a part without cases writes nothing
    result = CliRunner().invoke(app, _args(inputs, out, hippo_model_dir, "--num-parts", "2", "--part-id", "2"))
    assert result.exit_code == 2 and "--part-id must be below --num-parts (2), got 2" in result.output
