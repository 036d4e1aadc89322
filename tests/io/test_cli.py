"""segkit-dataset and segkit-image: exit code 0 on success, 2 with one line on bad input."""

import numpy as np
import pytest
from typer.testing import CliRunner

from segkit.io import Image, read_image, write_image
from segkit.io.cli import dataset_app, image_app

runner = CliRunner()


def test_verify_passes_on_real_dataset(hippocampus_subset, tmp_path):
    root = hippocampus_subset(tmp_path / "Dataset999_Subset", 4)
    result = runner.invoke(dataset_app, ["verify", str(root), "--quiet"])
    assert result.exit_code == 0, result.output
    assert "4 training and 0 test cases" in result.output


def test_verify_lists_problems_and_exits_2(hippocampus_subset, tmp_path):
    root = hippocampus_subset(tmp_path / "Dataset999_Subset", 3)
    label = sorted((root / "labelsTr").iterdir())[1]
    label.unlink()
    result = runner.invoke(dataset_app, ["verify", str(root), "-q"])
    assert result.exit_code == 2
    assert "1 problem(s)" in result.output and label.name.removesuffix(".nii.gz") in result.output


def test_verify_on_a_non_dataset_is_one_line_exit_2(tmp_path):
    result = runner.invoke(dataset_app, ["verify", str(tmp_path)])
    assert result.exit_code == 2
    assert result.output.strip().startswith("error:") and "no dataset.json" in result.output
    assert "Traceback" not in result.output


def test_convert_msd_command(msd_task, tmp_path):
    task, _ = msd_task(2)
    result = runner.invoke(dataset_app, ["convert-msd", str(task), str(tmp_path / "out"), "-q"])
    assert result.exit_code == 0, result.output
    assert "3 training cases with 2 channel(s)" in result.output
    result = runner.invoke(dataset_app, ["convert-msd", str(task), str(tmp_path / "out"), "-q"])
    assert result.exit_code == 2 and "not empty" in result.output


def test_image_convert_dicom_to_canonical_nifti(ct_dir, tmp_path):
    target = tmp_path / "ct.nii.gz"
    result = runner.invoke(image_app, ["convert", str(ct_dir / "example_ct_dicom"), str(target), "--canonical"])
    assert result.exit_code == 0, result.output
    converted = read_image(target)
    assert converted.axis_codes == ("R", "A", "S") and converted.spatial_shape == (512, 512, 20)


@pytest.mark.parametrize("bad", ["missing.nii.gz", "notes.txt"])
def test_image_commands_on_bad_input_exit_2_and_write_nothing(tmp_path, bad):
    (tmp_path / "notes.txt").write_text("not an image")
    result = runner.invoke(image_app, ["convert", str(tmp_path / bad), str(tmp_path / "out.nii.gz")])
    assert result.exit_code == 2 and "error:" in result.output
    assert not (tmp_path / "out.nii.gz").exists()
    assert runner.invoke(image_app, ["info", str(tmp_path / bad)]).exit_code == 2


def test_image_info(ct_dir):
    result = runner.invoke(image_app, ["info", str(ct_dir / "example_ct_sm.nii.gz")])
    assert result.exit_code == 0 and "(122, 101, 30)" in result.output


def test_image_info_counts_nan_voxels_beside_the_range_of_the_others(tmp_path):
    array = np.arange(27, dtype=np.float32).reshape(3, 3, 3)
    array[0, 0, 0] = np.nan
    write_image(Image(array, np.eye(4)), tmp_path / "nan.nii.gz")
    result = runner.invoke(image_app, ["info", str(tmp_path / "nan.nii.gz")])
    assert result.exit_code == 0 and "1.0 .. 26.0 (1 NaN or infinite voxels)" in result.output


def test_image_convert_onto_its_input_is_refused(ct_dir, tmp_path):
    source = tmp_path / "ct.nii.gz"
    source.write_bytes((ct_dir / "example_ct_sm.nii.gz").read_bytes())
    result = runner.invoke(image_app, ["convert", str(source), str(tmp_path / "." / "ct.nii.gz"), "--canonical"])
    assert result.exit_code == 2 and "the output is the input" in result.output
    assert source.read_bytes() == (ct_dir / "example_ct_sm.nii.gz").read_bytes()


def test_image_convert_of_a_bad_metaimage_prints_only_our_line(tmp_path, capfd):
    bad = tmp_path / "bad.mha"
    bad.write_text("ObjectType = Image\nNDims = 3\nDimSize = 10 10 10\nElementType = MET_SHORT\n"
                   "ElementDataFile = missing.raw\n")
    result = runner.invoke(image_app, ["convert", str(bad), str(tmp_path / "x.nrrd")])
    assert result.exit_code == 2
    assert result.output.startswith("error:") and len(result.output.strip().splitlines()) == 1
    assert capfd.readouterr().err == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.mha"]
