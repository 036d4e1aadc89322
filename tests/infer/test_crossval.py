"""segkit-crossval: each fold's network predicts that fold's validation cases; scored on the raw images."""

import json
import shutil

import numpy as np
import pytest
from typer.testing import CliRunner

from segkit.infer import PredictOptions, Predictor
from segkit.infer.cli_evaluate import app as evaluate_app
from segkit.infer.cli_predict import crossval_app
from segkit.infer.find_best import predict_arguments_of
from segkit.io import read_image

from .conftest import write_small_model_folder

OPTIONS = ["--no-tta", "--precision", "fp32", "--quiet"]


def test_each_case_is_predicted_by_its_own_fold(hippocampus_dir, tmp_path):
    model = write_small_model_folder(tmp_path / "model", configuration="3d_fullres", patch_size=[16, 24, 16],
                                     labels={"background": 0, "Anterior": 1, "Posterior": 2}, folds=2)
    splits = [{"train": ["hippocampus_004"], "val": ["hippocampus_001", "hippocampus_003"]},
              {"train": ["hippocampus_001", "hippocampus_003"], "val": ["hippocampus_004"]}]
    (model / "splits_final.json").write_text(json.dumps(splits))
    out = tmp_path / "cv"
    result = CliRunner().invoke(crossval_app, ["-m", str(model), "-d", str(hippocampus_dir), "-o", str(out), *OPTIONS])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["crossval.json", "dataset.json", "hippocampus_001.nii.gz",
                                                     "hippocampus_003.nii.gz", "hippocampus_004.nii.gz",
                                                     "summary.json"]
    image = read_image(hippocampus_dir / "imagesTr" / "hippocampus_004_0000.nii.gz")
    by_fold = [Predictor.from_model_folder(model, folds=[f], options=PredictOptions(tta=False, precision="fp32"))
               .predict(image).array for f in (0, 1)]
    assert not np.array_equal(by_fold[0], by_fold[1])  # the two folds' networks differ: the test can fail
    np.testing.assert_array_equal(read_image(out / "hippocampus_004.nii.gz").array, by_fold[1])
    summary = json.loads((out / "summary.json").read_text())
    assert [f["cases"] for f in summary["folds"].values()] == [2, 1]
    assert summary["model"] == str(model.resolve())
    # for segkit-find-best's commands
    assert summary["prediction"] == {"step": 0.5, "tta": False, "shift_tta": 0, "precision": "fp32"}
    per_case = {c["case"]: c["metrics"]["1"]["Dice"] for c in summary["metric_per_case"]}
    fold0 = [per_case[f"hippocampus_00{i}.nii.gz"] for i in (1, 3)]
    assert summary["folds"]["0"]["Dice"]["1"] == pytest.approx(np.mean([d for d in fold0 if d is not None]))


def test_a_folder_takes_no_predictions_of_another_model_or_made_with_other_settings(hippocampus_dir, tmp_path):
    model = write_small_model_folder(tmp_path / "model", configuration="3d_fullres", patch_size=[16, 24, 16],
                                     labels={"background": 0, "Anterior": 1, "Posterior": 2}, folds=2)
    splits = [{"train": ["hippocampus_004"], "val": ["hippocampus_001"]},
              {"train": ["hippocampus_001"], "val": ["hippocampus_004"]}]
    (model / "splits_final.json").write_text(json.dumps(splits))
    out = tmp_path / "cv"

    def crossval(fold, *extra):
        return CliRunner().invoke(crossval_app, ["-m", str(model), "-d", str(hippocampus_dir), "-o", str(out),
                                                 "-f", fold, *OPTIONS, *extra])

    result = crossval("0", "--shift-tta", "2")
    assert result.exit_code == 0, result.output
    assert json.loads((out / "summary.json").read_text())["prediction"]["shift_tta"] == 2
    # segkit-evaluate writes its own summary.json over crossval's; the folder's record (crossval.json) stays
    result = CliRunner().invoke(evaluate_app, [str(out), str(hippocampus_dir / "labelsTr"), "--chill", "--quiet"])
    assert result.exit_code == 0 and "prediction" not in json.loads((out / "summary.json").read_text())
    assert predict_arguments_of(out) == ["-m", str(model.resolve()), "--no-tta", "--shift-tta", "2", "--precision",
                                         "fp32"]
    result = crossval("1")  # fold 1 into the same folder, without the shifts: the scores would mix the two
    assert result.exit_code == 2
    assert f"{out} holds predictions made with shift_tta 2; this run asks for shift_tta 0" in result.output
    assert not (out / "hippocampus_004.nii.gz").exists()
    assert crossval("1", "--shift-tta", "2").exit_code == 0 and (out / "hippocampus_004.nii.gz").is_file()
    other = shutil.copytree(model, tmp_path / "other")
    result = CliRunner().invoke(crossval_app, ["-m", str(other), "-d", str(hippocampus_dir), "-o", str(out), *OPTIONS,
                                               "--shift-tta", "2", "--continue"])
    assert result.exit_code == 2 and f"holds predictions of {model.resolve()}; this run predicts with" in result.output


def test_model_folders_given_together_are_cross_validated_as_an_ensemble(hippocampus_dir, tmp_path):
    """Fold K of an ensemble averages fold K of each folder: with the second folder's folds swapped, each case is
    predicted by both folds of the first."""
    labels = {"background": 0, "Anterior": 1, "Posterior": 2}
    first = write_small_model_folder(tmp_path / "first", configuration="3d_fullres", patch_size=[16, 24, 16],
                                     labels=labels, folds=2)
    second = tmp_path / "second"
    shutil.copytree(first, second)
    for k in (0, 1):
        shutil.copy(first / f"fold_{k}" / "weights.safetensors", second / f"fold_{1 - k}" / "weights.safetensors")
    splits = [{"train": ["hippocampus_004"], "val": ["hippocampus_001"]},
              {"train": ["hippocampus_001"], "val": ["hippocampus_004"]}]
    for model in (first, second):
        (model / "splits_final.json").write_text(json.dumps(splits))
    def crossval(out):
        return CliRunner().invoke(crossval_app, ["-m", str(first), "-m", str(second), "-d", str(hippocampus_dir),
                                                 "-o", str(out), *OPTIONS])

    out = tmp_path / "cv"
    result = crossval(out)
    assert result.exit_code == 0, result.output
    both_folds = Predictor.from_model_folder(first, folds=[0, 1], options=PredictOptions(tta=False, precision="fp32"))
    for case in ("hippocampus_001", "hippocampus_004"):
        image = read_image(hippocampus_dir / "imagesTr" / f"{case}_0000.nii.gz")
        np.testing.assert_array_equal(read_image(out / f"{case}.nii.gz").array, both_folds.predict(image).array)
    assert json.loads((out / "summary.json").read_text())["model"] == [str(first.resolve()), str(second.resolve())]
    (second / "splits_final.json").write_text(json.dumps(splits[::-1]))
    result = crossval(tmp_path / "cv2")
    assert result.exit_code == 2 and "trained on other cross-validation splits" in result.output
    assert not (tmp_path / "cv2").exists()


def test_nnunet_folder_with_its_splits_scores_real_dice(hippo_model_dir, hippocampus_dir, tmp_path):
    splits = tmp_path / "splits_final.json"
    splits.write_text(json.dumps([{"train": [], "val": ["hippocampus_033", "hippocampus_035"]}]))
    out = tmp_path / "cv"
    args = ["-m", str(hippo_model_dir), "-d", str(hippocampus_dir), "-o", str(out), "--splits", str(splits), "-f", "0"]
    result = CliRunner().invoke(crossval_app, [*args, "--no-tta"])
    assert result.exit_code == 0, result.output
    assert "fold 0 (2 cases) Dice: 1 " in result.output
    summary = json.loads((out / "summary.json").read_text())
    # the short nnU-Net run reaches a Dice of about 0.8 on hippocampus; random weights stay far below
    assert summary["folds"]["0"]["foreground_dice"] > 0.7
    assert summary["foreground_mean"]["Dice"] == pytest.approx(summary["folds"]["0"]["foreground_dice"])


def test_bad_requests_exit_2(hippo_model_dir, hippocampus_dir, tmp_path):
    runner = CliRunner()
    base = ["-m", str(hippo_model_dir), "-d", str(hippocampus_dir), "-o", str(tmp_path / "cv"), *OPTIONS]
    result = runner.invoke(crossval_app, base)
    assert result.exit_code == 2  # nnU-Net keeps them in its preprocessed folder
    assert f"{hippo_model_dir} has no splits_final.json" in result.output and "with --splits" in result.output
    splits = tmp_path / "splits_final.json"
    splits.write_text(json.dumps([{"train": [], "val": ["hippocampus_999"]}]))
    result = runner.invoke(crossval_app, [*base, "--splits", str(splits)])
    assert result.exit_code == 2 and "hippocampus_999" in result.output
    result = runner.invoke(crossval_app, [*base, "--splits", str(splits), "-f", "all"])
    assert result.exit_code == 2 and "validation cases" in result.output
    result = runner.invoke(crossval_app, [*base, "--splits", str(splits), "-f", "3"])
    assert result.exit_code == 2 and "not in the splits" in result.output
    twice = tmp_path / "twice.json"
    twice.write_text(json.dumps([{"train": [], "val": ["hippocampus_033"]}, {"train": [], "val": ["hippocampus_033"]}]))
    result = runner.invoke(crossval_app, [*base, "--splits", str(twice)])
    assert result.exit_code == 2 and "'hippocampus_033' is a validation case of fold 0 and of fold 1" in result.output
    fake = tmp_path / "fakemodel"
    fake.mkdir()
    shutil.copy(hippo_model_dir / "plans.json", fake)
    result = runner.invoke(crossval_app, ["-m", str(fake), *base[2:]])
    assert result.exit_code == 2 and f"{fake} is neither a segkit model folder" in result.output
    assert not (tmp_path / "cv").exists()


def test_an_output_folder_that_is_a_dataset_folder_is_refused(hippo_model_dir, hippocampus_dir, tmp_path):
    dataset = tmp_path / "Dataset004_Hippocampus"
    for sub in ("imagesTr", "labelsTr"):
        (dataset / sub).mkdir(parents=True)
    shutil.copy(hippocampus_dir / "dataset.json", dataset)
    shutil.copy(hippocampus_dir / "imagesTr" / "hippocampus_001_0000.nii.gz", dataset / "imagesTr")
    shutil.copy(hippocampus_dir / "labelsTr" / "hippocampus_001.nii.gz", dataset / "labelsTr")
    splits = tmp_path / "splits_final.json"
    splits.write_text(json.dumps([{"train": [], "val": ["hippocampus_001"]}]))
    before = {p: p.read_bytes() for p in dataset.rglob("*") if p.is_file()}
    for out in (dataset, dataset / "imagesTr", dataset / "labelsTr"):
        result = CliRunner().invoke(crossval_app, ["-m", str(hippo_model_dir), "-d", str(dataset), "-o", str(out),
                                                   "--splits", str(splits), *OPTIONS])
        assert result.exit_code == 2, result.output
        assert result.output.strip().splitlines() == [f"error: output folder {out} is the input folder {out}: "
                                                      f"outputs there would replace or join the inputs; choose "
                                                      f"another output folder"]
        assert {p: p.read_bytes() for p in dataset.rglob("*") if p.is_file()} == before
