import json
import shutil
import zipfile

import numpy as np
from typer.testing import CliRunner

from segkit.infer.cli_tools import ensemble_app
from segkit.infer.probabilities import load_probabilities, save_probabilities
from segkit.io import Image, read_image, write_image


def test_probability_files_round_trip_in_nnunet_layout(tmp_path, predictions_dir):
    probs = np.random.default_rng(0).random((3, 4, 5, 6)).astype(np.float32)
    save_probabilities(probs, tmp_path / "a.npz")
    assert np.load(tmp_path / "a.npz")["probabilities"].shape == (3, 6, 5, 4)
    with zipfile.ZipFile(tmp_path / "a.npz") as archive:  # stored: compressing float probabilities costs much, gains 9%
        assert [entry.compress_type for entry in archive.infolist()] == [zipfile.ZIP_STORED]
    np.testing.assert_array_equal(load_probabilities(tmp_path / "a.npz"), probs)
    ref = load_probabilities(predictions_dir / "hippocampus_tta" / "hippocampus_033.npz")
    image = read_image(predictions_dir / "hippocampus_tta" / "hippocampus_033.nii.gz")
    assert ref.shape[1:] == image.spatial_shape
    assert np.array_equal(ref.argmax(0), image.array)


def test_ensemble_averages_probabilities(tmp_path):
    affine = np.diag([1.0, 2.0, 3.0, 1.0])
    a = np.zeros((2, 3, 3, 3), np.float32)
    b = np.zeros((2, 3, 3, 3), np.float32)
    a[0], a[1] = 0.6, 0.4  # a says background
    b[0], b[1] = 0.3, 0.7  # b says foreground more strongly
    b[:, 0] = [[[0.9]], [[0.1]]]  # except in the first slab
    for name, probs in (("m1", a), ("m2", b)):
        (tmp_path / name).mkdir()
        save_probabilities(probs, tmp_path / name / "case.npz")
        write_image(Image(probs.argmax(0).astype(np.uint8), affine), tmp_path / name / "case.nii.gz", label=True)
    result = CliRunner().invoke(ensemble_app, [str(tmp_path / "m1"), str(tmp_path / "m2"), "-o", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    out = read_image(tmp_path / "out" / "case.nii.gz")
    assert np.array_equal(out.affine, affine)
    assert (out.array[0] == 0).all() and (out.array[1:] == 1).all()
    # nnUNetv2_ensemble's spelling: -i FOLDER FOLDER --save_npz -np N
    result = CliRunner().invoke(ensemble_app, ["-i", str(tmp_path / "m1"), str(tmp_path / "m2"), "-o",
                                               str(tmp_path / "nn"), "--save_npz", "-np", "2"])
    assert result.exit_code == 0, result.output
    assert np.array_equal(read_image(tmp_path / "nn" / "case.nii.gz").array, out.array)
    assert (tmp_path / "nn" / "case.npz").is_file()
    result = CliRunner().invoke(ensemble_app, ["-o", str(tmp_path / "o1")])
    assert result.exit_code == 2 and "give the prediction folders to average" in result.output
    result = CliRunner().invoke(ensemble_app, [str(tmp_path / "m1"), "-o", str(tmp_path / "o2")])
    assert result.exit_code == 2 and "at least two" in result.output
    (tmp_path / "m2" / "case.npz").rename(tmp_path / "m2" / "other.npz")
    result = CliRunner().invoke(ensemble_app, [str(tmp_path / "m1"), str(tmp_path / "m2"), "-o", str(tmp_path / "o3")])
    assert result.exit_code == 2 and "lacks the probabilities of 1 case(s) the others have (other)" in result.output
    (tmp_path / "m2" / "other.npz").unlink()
    save_probabilities(np.full((2, 3, 3, 4), 0.5, np.float32), tmp_path / "m2" / "case.npz")  # another grid
    result = CliRunner().invoke(ensemble_app, [str(tmp_path / "m1"), str(tmp_path / "m2"), "-o", str(tmp_path / "o4")])
    assert result.exit_code == 2 and "probability shapes differ: (2, 3, 3, 3) in" in result.output
    assert not list((tmp_path / "o4").glob("*.nii.gz"))


def _prediction_folder(source, folder, cases, probabilities=None):
    """Copy nnU-Net's label maps, probabilities and dataset.json of ``cases``; ``probabilities`` replaces some."""
    folder.mkdir()
    shutil.copy(source / "dataset.json", folder)
    for case in cases:
        shutil.copy(source / f"{case}.nii.gz", folder)
        shutil.copy(source / f"{case}.npz", folder)
    for case, array in (probabilities or {}).items():
        save_probabilities(array, folder / f"{case}.npz")


def test_bad_probabilities_exit_2_and_leave_nothing_unless_a_case_was_written(predictions_dir, tmp_path):
    tta, notta = predictions_dir / "hippocampus_tta", predictions_dir / "hippocampus_notta"
    first, second = "hippocampus_033", "hippocampus_035"
    _prediction_folder(tta, tmp_path / "a", [first, second])
    _prediction_folder(tta, tmp_path / "a1", [first])

    def with_nan(case):
        probs = load_probabilities(notta / f"{case}.npz").copy()
        probs[1, 5, 5, 5] = np.nan
        return probs

    _prediction_folder(notta, tmp_path / "nan", [first], {first: with_nan(first)})
    _prediction_folder(notta, tmp_path / "shape", [first], {first: load_probabilities(notta / f"{first}.npz")[:, 1:]})
    _prediction_folder(notta, tmp_path / "corrupt", [first])
    (tmp_path / "corrupt" / f"{first}.npz").write_bytes((notta / f"{first}.npz").read_bytes()[:200])
    runner = CliRunner()
    for name, message in (("nan", f"{tmp_path / 'nan' / first}.npz: probabilities hold NaN"),
                          ("shape", "probability shapes differ"),
                          ("corrupt", f"{tmp_path / 'corrupt' / first}.npz: cannot read probabilities")):
        out = tmp_path / f"out_{name}"
        result = runner.invoke(ensemble_app, [str(tmp_path / "a1"), str(tmp_path / name), "-o", str(out)])
        assert result.exit_code == 2 and message in result.output, result.output
        assert not out.exists()  # nothing written: neither the folder nor its dataset.json
    _prediction_folder(notta, tmp_path / "b", [first, second], {second: with_nan(second)})
    result = runner.invoke(ensemble_app, [str(tmp_path / "a"), str(tmp_path / "b"), "-o", str(tmp_path / "out")])
    assert result.exit_code == 2 and f"{tmp_path / 'b' / second}.npz: probabilities hold NaN" in result.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["dataset.json", f"{first}.nii.gz"]
    written = read_image(tmp_path / "out" / f"{first}.nii.gz")
    assert np.array_equal(written.affine, read_image(tta / f"{first}.nii.gz").affine)


def test_an_output_folder_that_is_an_input_folder_is_refused(predictions_dir, tmp_path):
    case = "hippocampus_033"
    _prediction_folder(predictions_dir / "hippocampus_tta", tmp_path / "a", [case])
    _prediction_folder(predictions_dir / "hippocampus_notta", tmp_path / "b", [case])
    (tmp_path / "link").symlink_to(tmp_path / "b")
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    for out, folder in ((tmp_path / "a", "a"), (tmp_path / "a" / ".", "a"), (tmp_path / "link", "b")):
        result = CliRunner().invoke(ensemble_app, [str(tmp_path / "a"), str(tmp_path / "b"), "-o", str(out),
                                                   "--save-probabilities"])
        assert result.exit_code == 2, result.output
        assert result.output.strip().splitlines() == [f"error: output folder {out} is the input folder "
                                                      f"{tmp_path / folder}: outputs there would replace or join "
                                                      f"the inputs; choose another output folder"]
        assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before


def test_folders_whose_classes_carry_other_names_are_not_averaged(predictions_dir, tmp_path):
    case = "hippocampus_033"
    _prediction_folder(predictions_dir / "hippocampus_tta", tmp_path / "a", [case])
    _prediction_folder(predictions_dir / "hippocampus_notta", tmp_path / "b", [case])
    dataset = json.loads((tmp_path / "b" / "dataset.json").read_text())
    dataset["labels"]["Anterior"], dataset["labels"]["Posterior"] = dataset["labels"]["Posterior"], 1
    (tmp_path / "b" / "dataset.json").write_text(json.dumps(dataset))  # the same values, the classes swapped
    result = CliRunner().invoke(ensemble_app, [str(tmp_path / "a"), str(tmp_path / "b"), "-o", str(tmp_path / "o")])
    assert result.exit_code == 2 and "probability channels hold different classes" in result.output
    assert not (tmp_path / "o").exists()
