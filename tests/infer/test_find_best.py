import json

import numpy as np
from typer.testing import CliRunner

from segkit.infer.cli_tools import find_best_app
from segkit.infer.find_best import find_best
from segkit.infer.probabilities import save_probabilities
from segkit.io import Image, write_image

AFFINE = np.diag([1.0, 1.0, 1.0, 1.0])


def _folder(path, probs_per_case):
    path.mkdir()
    for case, probs in probs_per_case.items():
        save_probabilities(probs, path / f"{case}.npz")
        write_image(Image(probs.argmax(0).astype(np.uint8), AFFINE), path / f"{case}.nii.gz", label=True)


def test_ranks_candidates_and_pair_ensembles(tmp_path):
    ref = np.zeros((6, 6, 6), np.uint8)
    ref[:3] = 1
    (tmp_path / "ref").mkdir()
    write_image(Image(ref, AFFINE), tmp_path / "ref" / "c.nii.gz", label=True)
    # a is right on the first slab only, b on the second and third: alone each misses part, together right
    a = np.zeros((2, 6, 6, 6), np.float32)
    a[0], a[1] = 0.55, 0.45
    a[:, 0] = np.array([0.0, 1.0])[:, None, None]
    b = np.zeros((2, 6, 6, 6), np.float32)
    b[0], b[1] = 0.55, 0.45
    b[:, 1:3] = np.array([0.2, 0.8])[:, None, None, None]
    _folder(tmp_path / "a", {"c": a})
    _folder(tmp_path / "b", {"c": b})
    # the folders' model folders and prediction settings, as segkit-crossval records them: b's is an ensemble of two
    (tmp_path / "a" / "summary.json").write_text(json.dumps({"model": "/models/A", "prediction": {
        "step": 0.5, "tta": True, "shift_tta": 6, "precision": "fp32"}}))
    (tmp_path / "b" / "summary.json").write_text(json.dumps({"model": ["/models/B1", "/models/B2"], "prediction": {
        "step": 0.25, "tta": False, "shift_tta": 0}}))
    result = CliRunner().invoke(find_best_app, [str(tmp_path / "ref"), f"a={tmp_path / 'a'}", f"b={tmp_path / 'b'}",
                                                "-o", str(tmp_path / "best" / "instr.json")])  # folder made
    assert result.exit_code == 0, result.output
    instructions = json.loads((tmp_path / "best" / "instr.json").read_text())
    assert instructions["best"]["members"] == ["a", "b"]
    assert instructions["best"]["foreground_dice"] == 1.0
    assert [r["name"] for r in instructions["ranking"]][1:] == ["b", "a"]
    assert instructions["commands"] == [
        "segkit-predict -i INPUT -o OUTPUT_a -m /models/A --shift-tta 6 --precision fp32 --save-probabilities",
        "segkit-predict -i INPUT -o OUTPUT_b -m /models/B1 -m /models/B2 --step 0.25 --no-tta --save-probabilities",
        "segkit-ensemble OUTPUT_a OUTPUT_b -o OUTPUT"]
    bad = CliRunner().invoke(find_best_app, [str(tmp_path / "ref"), "a", "-o", str(tmp_path / "x.json")])
    assert bad.exit_code == 2 and "NAME=FOLDER" in bad.output
    twice = CliRunner().invoke(find_best_app, [str(tmp_path / "ref"), f"a={tmp_path / 'a'}", f"a={tmp_path / 'b'}",
                                               "-o", str(tmp_path / "x.json")])
    assert twice.exit_code == 2 and "given twice" in twice.output
    for target, message in ((tmp_path / "best", "is a folder"), (tmp_path / "p" / "postprocessing.json", "beside")):
        refused = CliRunner().invoke(find_best_app, [str(tmp_path / "ref"), f"a={tmp_path / 'a'}", "-o", str(target)])
        assert refused.exit_code == 2 and message in refused.output
    assert not (tmp_path / "p" / "postprocessing.json").exists()
    missing = CliRunner().invoke(find_best_app, [str(tmp_path / "ref"), f"a={tmp_path / 'a'}", "b=nope", "-o",
                                                 str(tmp_path / "x.json")])
    assert missing.exit_code == 2 and "candidate 'b': nope is not a folder of predictions" in missing.output


def test_candidates_without_probabilities_are_ranked_and_said_to_be_left_out_of_ensembles(tmp_path, caplog):
    ref = np.zeros((4, 4, 4), np.uint8)
    ref[:2] = 1
    (tmp_path / "ref").mkdir()
    write_image(Image(ref, AFFINE), tmp_path / "ref" / "c.nii.gz", label=True)
    probs = np.stack([1.0 - ref, ref]).astype(np.float32)
    _folder(tmp_path / "a", {"c": probs})
    _folder(tmp_path / "b", {"c": probs[::-1].copy()})
    (tmp_path / "b" / "c.npz").unlink()  # b kept only its label maps
    result = find_best({"a": tmp_path / "a", "b": tmp_path / "b"}, tmp_path / "ref")
    assert [r["name"] for r in result["ranking"]] == ["a", "b"]  # no ensemble could be made
    assert "no pair ensembles with b: no probabilities (.npz) there" in caplog.text


def test_candidates_must_predict_the_same_cases(tmp_path):
    ref = np.zeros((4, 4, 4), np.uint8)
    ref[:2] = 1
    (tmp_path / "ref").mkdir()
    probs = np.stack([1.0 - ref, ref]).astype(np.float32)
    for case in ("c", "d"):
        write_image(Image(ref, AFFINE), tmp_path / "ref" / f"{case}.nii.gz", label=True)
    _folder(tmp_path / "a", {"c": probs, "d": probs})
    _folder(tmp_path / "b", {"c": probs})
    result = CliRunner().invoke(find_best_app, [str(tmp_path / "ref"), f"a={tmp_path / 'a'}", f"b={tmp_path / 'b'}",
                                                "-o", str(tmp_path / "new" / "instr.json")])
    assert result.exit_code == 2 and "predicted different cases (2 and 1 label maps)" in result.output
    assert not (tmp_path / "new").exists()  # the output's folder is made only to write the result


def test_determines_postprocessing_for_the_winner(tmp_path):
    ref = np.zeros((8, 8, 8), np.uint8)
    ref[1:4, 1:4, 1:4] = 1
    (tmp_path / "ref").mkdir()
    write_image(Image(ref, AFFINE), tmp_path / "ref" / "c.nii.gz", label=True)
    probs = np.zeros((2, 8, 8, 8), np.float32)
    probs[0] = 0.9
    probs[:, 1:4, 1:4, 1:4] = np.array([0.1, 0.9])[:, None, None, None]
    probs[:, 6, 6, 6] = [0.1, 0.9]  # a stray voxel: largest-component postprocessing removes it
    _folder(tmp_path / "a", {"c": probs})
    result = CliRunner().invoke(find_best_app, [str(tmp_path / "ref"), f"a={tmp_path / 'a'}",
                                                "-o", str(tmp_path / "instr.json")])
    assert result.exit_code == 0, result.output
    instructions = json.loads((tmp_path / "instr.json").read_text())
    assert instructions["best"]["foreground_dice"] == 2 * 27 / 55
    plan = json.loads((tmp_path / "postprocessing.json").read_text())
    assert plan["keep_largest_foreground"] or plan["keep_largest_per_class"] == [1]
    assert plan["dice_after"] == 1.0
    apply = f"segkit-postprocess apply OUTPUT_RAW OUTPUT -p {tmp_path / 'postprocessing.json'}"
    assert instructions["commands"] == ["segkit-predict -i INPUT -o OUTPUT_RAW -m MODEL_a", apply]
    # segkit-crossval records the model folder beside its predictions; the commands then name it
    (tmp_path / "a" / "summary.json").write_text(json.dumps({"model": "/models/hippo"}))
    result = CliRunner().invoke(find_best_app, [str(tmp_path / "ref"), f"a={tmp_path / 'a'}",
                                                "-o", str(tmp_path / "instr.json")])
    assert result.exit_code == 0, result.output
    commands = json.loads((tmp_path / "instr.json").read_text())["commands"]
    assert commands[0] == "segkit-predict -i INPUT -o OUTPUT_RAW -m /models/hippo"


def test_a_4d_prediction_exits_2_naming_the_file(four_d_prediction, tmp_path):
    pred_dir, ref_dir = four_d_prediction
    result = CliRunner().invoke(find_best_app, [str(ref_dir), f"a={pred_dir}", "-o", str(tmp_path / "fb.json")])
    assert result.exit_code == 2, result.output
    assert f"{pred_dir / 'hippocampus_001.nii.gz'}: holds 2 volumes" in result.output
    assert not (tmp_path / "fb.json").exists()
