"""nnU-Net folder -> segkit model folder -> zip -> installed folder: the same predictions all the way."""

import shutil
import zipfile

import numpy as np
from typer.testing import CliRunner

from segkit.infer.cli_tools import export_app, import_app
from segkit.infer.predictor import PredictOptions, Predictor
from segkit.io import read_image
from segkit.io.model_folder import read_model_info


def test_convert_export_import_predict_the_same(hippo_model_dir, predictions_dir, hippo_predictor_notta, tmp_path):
    runner = CliRunner()
    converted = tmp_path / "hippo_segkit"
    result = runner.invoke(import_app, [str(hippo_model_dir), str(converted), "-f", "0"])
    assert result.exit_code == 0, result.output
    info = read_model_info(converted)
    assert info.folds == (0,) and info.mirroring_axes == (0, 1, 2) and info.labels["Posterior"] == 2
    assert (converted / "fold_0" / "weights.safetensors").is_file()

    archive = tmp_path / "zips" / "hippo.zip"  # the folder is made
    assert runner.invoke(export_app, [str(converted), str(archive)]).exit_code == 0
    assert sorted(zipfile.ZipFile(archive).namelist()) == [
        "hippo_segkit/dataset.json", "hippo_segkit/fold_0/weights.safetensors", "hippo_segkit/model.json",
        "hippo_segkit/plans.json"]
    result = runner.invoke(import_app, [str(archive), str(tmp_path / "installed")])
    assert result.exit_code == 0, result.output
    installed = tmp_path / "installed" / "hippo_segkit"
    assert [p.name for p in (tmp_path / "installed").iterdir()] == ["hippo_segkit"]

    image = read_image(sorted((predictions_dir / "inputs").glob("*.nii.gz"))[2])
    expected = hippo_predictor_notta.predict(image).array
    ours = Predictor.from_model_folder(installed, options=PredictOptions(tta=False, precision="fp32"))
    assert ours.setup.patch_size == (40, 56, 40) and ours.folds == (0,)
    assert np.array_equal(ours.predict(image).array, expected)

    # float16 export: half the bytes, predictions within rounding of the float32 weights
    half = tmp_path / "half.zip"
    assert runner.invoke(export_app, [str(converted), str(half), "--half"]).exit_code == 0
    size = lambda z: zipfile.ZipFile(z).getinfo("hippo_segkit/fold_0/weights.safetensors").file_size  # noqa: E731
    assert 0.45 < size(half) / size(archive) < 0.55
    assert runner.invoke(import_app, [str(half), str(tmp_path / "half")]).exit_code == 0
    halved = Predictor.from_model_folder(tmp_path / "half" / "hippo_segkit",
                                         options=PredictOptions(tta=False, precision="fp32")).predict(image).array
    assert (halved == expected).mean() > 0.999
    # the same model gives the same zip, byte for byte, however its files were written: a published sha256 can be
    # checked against a new export
    again = tmp_path / "again" / "hippo_segkit"
    assert runner.invoke(import_app, [str(hippo_model_dir), str(again), "-f", "0"]).exit_code == 0
    for flags in ([], ["--half"]):
        first, second = tmp_path / "first.zip", tmp_path / "second.zip"
        assert runner.invoke(export_app, [str(converted), str(first), *flags]).exit_code == 0
        assert runner.invoke(export_app, [str(again), str(second), *flags]).exit_code == 0
        assert first.read_bytes() == second.read_bytes()
        first.unlink()
        second.unlink()
    not_a_model = tmp_path / "not_a_model"
    not_a_model.mkdir()
    result = runner.invoke(export_app, [str(not_a_model), str(tmp_path / "none.zip"), "--half"])
    assert result.exit_code == 2 and "not a segkit model folder" in result.output
    assert not (tmp_path / "none.zip").exists()
    result = runner.invoke(export_app, [str(hippo_model_dir), str(tmp_path / "none.zip")])
    assert result.exit_code == 2 and f"is an nnU-Net result folder; convert it first with `segkit-import " \
        f"{hippo_model_dir} TARGET_FOLDER`" in result.output

    # importing again onto an existing folder is refused and leaves nothing half-written
    result = runner.invoke(import_app, [str(archive), str(tmp_path / "installed")])
    assert result.exit_code == 2 and "exists already" in result.output
    assert [p.name for p in (tmp_path / "installed").iterdir()] == ["hippo_segkit"]
    bad = tmp_path / "bad.zip"
    bad.write_text("not a zip")
    result = runner.invoke(import_app, [str(bad), str(tmp_path / "x")])
    assert result.exit_code == 2 and "bad.zip is not a zip file" in result.output
    result = runner.invoke(import_app, [str(tmp_path / "missing.zip"), str(tmp_path / "x")])
    assert result.exit_code == 2 and "missing.zip: no such file" in result.output
    corrupt = tmp_path / "corrupt.zip"
    data = bytearray(archive.read_bytes())
    data[len(data) // 2] ^= 0xFF  # inside the stored weights: the CRC check fails on extraction
    corrupt.write_bytes(bytes(data))
    result = runner.invoke(import_app, [str(corrupt), str(tmp_path / "y")])
    assert result.exit_code == 2 and "cannot extract" in result.output
    assert not list((tmp_path / "y").iterdir())
    result = runner.invoke(import_app, [str(archive), str(bad)])
    assert result.exit_code == 2 and f"cannot import into {bad}" in result.output

    # damaged weights are refused when exported, and when a zip made without segkit brings them
    damaged = tmp_path / "damaged"
    shutil.copytree(converted, damaged)
    weights = damaged / "fold_0" / "weights.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    result = runner.invoke(export_app, [str(damaged), str(tmp_path / "damaged.zip")])
    assert result.exit_code == 2 and "cannot export" in result.output and "not a safetensors file" in result.output
    assert not (tmp_path / "damaged.zip").exists()
    with zipfile.ZipFile(tmp_path / "by_hand.zip", "w") as handle:
        for path in sorted(damaged.rglob("*")):
            handle.write(path, path.relative_to(tmp_path).as_posix())
    result = runner.invoke(import_app, [str(tmp_path / "by_hand.zip"), str(tmp_path / "z")])
    assert result.exit_code == 2 and "cannot import" in result.output and "not a safetensors file" in result.output
    assert not list((tmp_path / "z").iterdir())
