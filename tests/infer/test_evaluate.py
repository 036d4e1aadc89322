import json

import numpy as np
import pytest
from typer.testing import CliRunner

from segkit.infer.cli_evaluate import app
from segkit.infer.errors import EvaluationError, InferError
from segkit.infer.evaluate import EvaluateOptions, evaluate_folders
from segkit.io import Image, read_image, write_image


def _write(folder, name, array, spacing=(1.0, 1.0, 1.0)):
    folder.mkdir(exist_ok=True)
    write_image(Image(array.astype(np.uint8), np.diag([*spacing, 1.0])), folder / name, label=True)


def test_summary_per_case_mean_and_foreground(tmp_path):
    ref = np.zeros((8, 8, 8))
    ref[1:3, 1:3, 1:3] = 1
    ref[5:7, 5:7, 5:7] = 2
    pred = ref.copy()
    pred[1:3, 1:3, 3] = 1  # 4 extra voxels of label 1
    _write(tmp_path / "pred", "a.nii.gz", pred)
    _write(tmp_path / "ref", "a.nii.gz", ref)
    _write(tmp_path / "pred", "b.nii.gz", ref)
    _write(tmp_path / "ref", "b.nii.gz", ref)
    summary = evaluate_folders(tmp_path / "pred", tmp_path / "ref")
    assert summary["labels"] == [1, 2]
    cases = {c["case"]: c["metrics"] for c in summary["metric_per_case"]}
    assert cases["a.nii.gz"]["1"]["Dice"] == pytest.approx(16 / 20)
    assert cases["b.nii.gz"]["1"]["Dice"] == 1.0
    assert summary["mean"]["1"]["Dice"] == pytest.approx(0.9)
    assert summary["mean"]["2"]["Dice"] == 1.0
    assert summary["foreground_mean"]["Dice"] == pytest.approx(0.95)
    # nnU-Net's summary.json layout and names, with segkit's NSD and HD95 besides
    assert cases["a.nii.gz"]["1"] == {"Dice": pytest.approx(0.8), "IoU": pytest.approx(8 / 12), "NSD": 1.0,
                                      "HD95": 1.0, "n_pred": 12, "n_ref": 8, "TP": 8, "FP": 4, "FN": 0, "TN": 500}
    first = summary["metric_per_case"][0]
    assert first["prediction_file"] == str(tmp_path / "pred" / "a.nii.gz")
    assert first["reference_file"] == str(tmp_path / "ref" / "a.nii.gz")
    assert summary["mean"]["1"]["FP"] == 2.0 and summary["foreground_mean"]["FP"] == 1.0


def test_a_missed_class_is_counted_beside_the_hd95_mean_it_cannot_enter(tmp_path):
    ref = np.zeros((8, 8, 8))
    ref[1:3, 1:3, 1:3] = 1
    pred = ref.copy()
    pred[1:3, 1:3, 3] = 1  # one voxel further: HD95 1 mm
    _write(tmp_path / "pred", "a.nii.gz", np.zeros_like(ref))  # label 1 missed: HD95 infinite
    _write(tmp_path / "ref", "a.nii.gz", ref)
    _write(tmp_path / "pred", "b.nii.gz", pred)
    _write(tmp_path / "ref", "b.nii.gz", ref)
    _write(tmp_path / "pred", "c.nii.gz", np.zeros_like(ref))  # absent from both: undefined, not missed
    _write(tmp_path / "ref", "c.nii.gz", np.zeros_like(ref))
    result = CliRunner().invoke(app, [str(tmp_path / "pred"), str(tmp_path / "ref"), "-l", "1",
                                      "-o", str(tmp_path / "summary.json")])
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "summary.json").read_text())
    cases = {c["case"]: c["metrics"]["1"] for c in summary["metric_per_case"]}
    assert cases["a.nii.gz"]["HD95"] is None and cases["c.nii.gz"]["HD95"] is None
    assert summary["mean"]["1"]["HD95"] == 1.0 and summary["mean"]["1"]["HD95_infinite"] == 1
    assert summary["mean"]["1"]["Dice"] == pytest.approx((0 + 16 / 20) / 2)
    assert summary["foreground_mean"]["HD95_infinite"] == 1
    assert "1.0000 (+1 inf)" in result.output  # the table says what the mean leaves out


def test_reference_folder_predictions_against_labels(predictions_dir, hippocampus_dir, tmp_path):
    args = [str(predictions_dir / "hippocampus_tta"), str(hippocampus_dir / "labelsTr"),
            "-o", str(tmp_path / "scores" / "summary.json")]  # the folder is made
    # 10 predictions, 220 references: as in nnU-Net, every reference needs a prediction unless --chill
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2 and "210 reference(s) without prediction" in result.output
    assert not (tmp_path / "scores" / "summary.json").exists()
    result = CliRunner().invoke(app, [*args, "--chill"])
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "scores" / "summary.json").read_text())
    assert len(summary["metric_per_case"]) == 10
    # the short nnU-Net run reached a pseudo Dice of about 0.8
    assert 0.7 < summary["foreground_mean"]["Dice"] < 0.95
    assert "foreground" in result.output
    # nnU-Net's evaluate_simple spelling: -l 1 -il 2 scores the anterior class outside the reference's posterior one
    result = CliRunner().invoke(app, [*args[:2], "--chill", "-l", "1", "-il", "2", "-o", str(tmp_path / "il.json")])
    assert result.exit_code == 0, result.output
    ignoring = json.loads((tmp_path / "il.json").read_text())
    assert ignoring["ignore_label"] == 2 and list(ignoring["mean"]) == ["1"]
    assert ignoring["mean"]["1"]["Dice"] > summary["mean"]["1"]["Dice"] + 0.005  # fewer false positives, same overlap


def test_errors_exit_2(tmp_path):
    _write(tmp_path / "pred", "a.nii.gz", np.zeros((4, 4, 4)))
    _write(tmp_path / "ref", "a.nii.gz", np.zeros((4, 4, 5)))
    result = CliRunner().invoke(app, [str(tmp_path / "pred"), str(tmp_path / "ref")])
    assert result.exit_code == 2 and "grid" in result.output
    result = CliRunner().invoke(app, [str(tmp_path / "pred"), str(tmp_path / "nope")])
    assert result.exit_code == 2 and "does not exist" in result.output
    for tolerance in (-1, float("nan"), float("inf")):
        with pytest.raises(EvaluationError, match="tolerance must be a finite number"):
            EvaluateOptions(tolerance_mm=tolerance)
    for ignore in (-1, 0):
        with pytest.raises(EvaluationError, match="ignore label must be a whole number > 0"):
            EvaluateOptions(ignore_label=ignore)
    # a JSON result is not written over an image, nor as a folder, and nothing is written before the check
    before = (tmp_path / "ref" / "a.nii.gz").read_bytes()
    for target, message in ((tmp_path / "ref" / "a.nii.gz", "name a .json file"), (tmp_path / "ref", "name a .json")):
        result = CliRunner().invoke(app, [str(tmp_path / "pred"), str(tmp_path / "pred"), "-o", str(target)])
        assert result.exit_code == 2 and message in result.output
    assert (tmp_path / "ref" / "a.nii.gz").read_bytes() == before
    (tmp_path / "other").mkdir()
    _write(tmp_path / "other", "z.nii.gz", np.zeros((4, 4, 4)))
    with pytest.raises(EvaluationError, match="without reference"):
        evaluate_folders(tmp_path / "other", tmp_path / "ref")
    assert read_image(tmp_path / "pred" / "a.nii.gz").spatial_shape == (4, 4, 4)
    (tmp_path / "soft").mkdir()
    write_image(Image(np.full((4, 4, 5), 0.5, np.float32), np.eye(4)), tmp_path / "soft" / "a.nii.gz")
    result = CliRunner().invoke(app, [str(tmp_path / "soft"), str(tmp_path / "ref")])
    assert result.exit_code == 2 and "fractional values, not a label map" in result.output
    write_image(Image(np.full((4, 4, 5), np.nan, np.float32), np.eye(4)), tmp_path / "soft" / "a.nii.gz")
    result = CliRunner().invoke(app, [str(tmp_path / "soft"), str(tmp_path / "ref")])
    assert result.exit_code == 2 and "holds NaN or infinite values, not a label map" in result.output
    write_image(Image(np.full((4, 4, 5), -3, np.int16), np.eye(4)), tmp_path / "soft" / "a.nii.gz")
    result = CliRunner().invoke(app, [str(tmp_path / "soft"), str(tmp_path / "ref")])
    assert result.exit_code == 2 and "holds negative values (down to -3), not a label map" in result.output


def test_regions_score_the_union_of_their_labels(predictions_dir, hippocampus_dir, tmp_path):
    dataset = {"labels": {"background": 0, "hippocampus": [1, 2], "posterior": [2]}, "regions_class_order": [1, 2]}
    (tmp_path / "dataset.json").write_text(json.dumps(dataset))
    pred_dir = predictions_dir / "hippocampus_tta"
    result = CliRunner().invoke(app, [str(pred_dir), str(hippocampus_dir / "labelsTr"), "--dataset-json",
                                      str(tmp_path / "dataset.json"), "-o", str(tmp_path / "summary.json"),
                                      "--chill"])
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["labels"] == [[1, 2], [2]] and set(summary["mean"]) == {"(1, 2)", "(2,)"}
    assert summary["names"] == {"(1, 2)": "hippocampus", "(2,)": "posterior"}
    assert "(1, 2) hippocampus" in result.output and "(2,) posterior" in result.output  # the table names them
    whole, posterior = [], []
    for case in summary["metric_per_case"]:
        pred = read_image(pred_dir / case["case"]).array
        ref = read_image(hippocampus_dir / "labelsTr" / case["case"]).array
        dice = 2 * ((pred > 0) & (ref > 0)).sum() / ((pred > 0).sum() + (ref > 0).sum())
        assert case["metrics"]["(1, 2)"]["Dice"] == pytest.approx(dice)
        whole.append(dice)
        posterior.append(case["metrics"]["(2,)"]["Dice"])
    # the union of both classes is segmented better than either class alone
    assert summary["mean"]["(1, 2)"]["Dice"] == pytest.approx(np.mean(whole))
    assert np.mean(whole) > np.mean(posterior)
    plain = evaluate_folders(pred_dir, hippocampus_dir / "labelsTr", options=EvaluateOptions(labels=(2,)),
                             allow_missing=True)
    assert plain["mean"]["2"]["Dice"] == pytest.approx(summary["mean"]["(2,)"]["Dice"])
    (tmp_path / "bad.json").write_text('{"labels": {"background": 0}}')
    result = CliRunner().invoke(app, [str(pred_dir), str(hippocampus_dir / "labelsTr"), "-djfile",  # nnU-Net's spelling
                                      str(tmp_path / "bad.json"), "-pfile", str(tmp_path / "plans.json"), "-np", "2",
                                      "--chill"])
    assert result.exit_code == 2 and "no foreground labels" in result.output


def test_a_4d_prediction_is_named_not_a_traceback(four_d_prediction, tmp_path):
    pred_dir, ref_dir = four_d_prediction
    result = CliRunner().invoke(app, [str(pred_dir), str(ref_dir), "-o", str(tmp_path / "s.json")])
    assert result.exit_code == 2, result.output
    assert f"{pred_dir / 'hippocampus_001.nii.gz'}: holds 2 volumes" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "s.json").exists()


def test_a_grid_mismatch_says_whether_shape_or_affine(hippocampus_dir, tmp_path):
    ref = read_image(hippocampus_dir / "labelsTr" / "hippocampus_001.nii.gz")
    shifted = ref.affine.copy()
    shifted[0, 3] += 5.0
    for name, image in (("aff", Image(ref.array, shifted)), ("shape", Image(ref.array[:-2], ref.affine)),
                        ("ref", ref)):
        (tmp_path / name).mkdir()
        write_image(image, tmp_path / name / "hippocampus_001.nii.gz", label=True)
    result = CliRunner().invoke(app, [str(tmp_path / "aff"), str(tmp_path / "ref"), "--quiet"])
    assert result.exit_code == 2
    assert "differs from the reference grid in its affine: largest entry difference 5," in result.output
    result = CliRunner().invoke(app, [str(tmp_path / "shape"), str(tmp_path / "ref"), "--quiet"])
    assert result.exit_code == 2
    assert f"in shape: {(ref.spatial_shape[0] - 2, *ref.spatial_shape[1:])} vs {ref.spatial_shape}" in result.output


def test_background_or_negative_labels_are_refused_absent_ones_are_not(predictions_dir, hippocampus_dir, tmp_path):
    pred = tmp_path / "pred"
    pred.mkdir()
    for name in ("hippocampus_033.nii.gz", "hippocampus_035.nii.gz"):
        (pred / name).write_bytes((predictions_dir / "hippocampus_tta" / name).read_bytes())
    args = [str(pred), str(hippocampus_dir / "labelsTr"), "--chill", "--quiet"]
    for labels, shown in ((["-1"], "-1"), (["0"], "0"), (["1", "-l", "0"], "0")):
        result = CliRunner().invoke(app, [*args, "-l", *labels])  # the default output is PRED/summary.json
        assert result.exit_code == 2, result.output
        assert result.output.strip().splitlines() == [f"error: labels must be whole numbers > 0 (0 is the background) "
                                                      f"or regions of them, got {shown}; give foreground labels only"]
        assert sorted(p.name for p in pred.iterdir()) == ["hippocampus_033.nii.gz", "hippocampus_035.nii.gz"]
    with pytest.raises(InferError, match=r"got 2\.5, \(1, 0\);"):
        EvaluateOptions(labels=(1, 2.5, (1, 0)))
    # a label that no map holds is scored as nnU-Net scores it: empty on both sides, so no value
    result = CliRunner().invoke(app, [*args, "-l", "1", "-l", "7"])
    assert result.exit_code == 0, result.output
    summary = json.loads((pred / "summary.json").read_text())
    assert summary["labels"] == [1, 7] and summary["mean"]["7"]["Dice"] is None
    assert summary["mean"]["1"]["Dice"] > 0.7
