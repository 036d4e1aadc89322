"""Medical Segmentation Decathlon folders convert to the nnU-Net v2 layout."""

import json
import shutil

import numpy as np
import pytest
from typer.testing import CliRunner

from segkit.io import DatasetError, ImageReadError, read_image
from segkit.io.cli import dataset_app
from segkit.io.dataset import Dataset
from segkit.io.msd import convert_msd
from segkit.io.verify import verify_dataset

runner = CliRunner()


@pytest.mark.parametrize("channels", [1, 2])
def test_msd_task_converts_and_verifies(hippocampus_dir, msd_task, tmp_path, channels):
    task, ids = msd_task(channels)
    out = tmp_path / "Dataset004_Hippocampus"
    convert_msd(task, out, workers=2)
    dataset = Dataset.load(out)
    assert [c.identifier for c in dataset.training] == ids
    assert [c.identifier for c in dataset.test] == ["hippocampus_900"]
    assert dataset.info.labels == {"background": 0, "Anterior": 1, "Posterior": 2}
    assert dataset.info.channel_names == {c: f"MR{c}" for c in range(channels)}
    assert verify_dataset(out, workers=1) == []
    original = read_image(hippocampus_dir / "imagesTr" / f"{ids[1]}_0000.nii.gz")
    last = read_image(out / "imagesTr" / f"{ids[1]}_{channels - 1:04d}.nii.gz")
    np.testing.assert_array_equal(last.array, original.array.astype(np.float32) * channels)
    np.testing.assert_allclose(last.affine, original.affine, atol=1e-5)


def test_non_msd_folder_and_non_empty_output_are_refused(hippocampus_dir, msd_task, tmp_path):
    with pytest.raises(DatasetError, match="not an MSD task"):
        convert_msd(tmp_path, tmp_path / "out")
    with pytest.raises(DatasetError, match="not an MSD dataset.json"):
        convert_msd(hippocampus_dir, tmp_path / "out")
    task, _ = msd_task(1)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("keep me")
    with pytest.raises(DatasetError, match="not empty"):
        convert_msd(task, tmp_path / "full")
    assert (tmp_path / "full" / "x").read_text() == "keep me"


def test_missing_label_is_refused_before_writing_and_a_rerun_works(msd_task, tmp_path):
    task, ids = msd_task(2)
    label = task / "labelsTr" / f"{ids[1]}.nii.gz"
    kept = label.read_bytes()
    label.unlink()
    out = tmp_path / "new" / "out"
    with pytest.raises(DatasetError, match=f"label of {ids[1]}.nii.gz is missing"):
        convert_msd(task, out, workers=1)
    assert not (tmp_path / "new").exists()
    label.write_bytes(kept)
    assert convert_msd(task, out, workers=1).num_training == 3


def test_channel_mismatch_is_refused_and_leaves_the_empty_output_empty(msd_task, tmp_path):
    task, _ = msd_task(1)
    info = json.loads((task / "dataset.json").read_text())
    (task / "dataset.json").write_text(json.dumps({**info, "modality": {"0": "MR0", "1": "MR1"}}))
    (tmp_path / "out").mkdir()
    with pytest.raises(DatasetError, match="has 1 channels, dataset.json declares 2"):
        convert_msd(task, tmp_path / "out", workers=1)
    assert list((tmp_path / "out").iterdir()) == []


def test_unreadable_image_removes_what_the_run_wrote(msd_task, tmp_path):
    task, ids = msd_task(1)
    bad = task / "imagesTr" / f"{ids[2]}.nii.gz"
    bad.write_bytes(bad.read_bytes()[:2000])  # the header is whole, the voxels are cut
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / ".hidden").write_text("keep me")  # not empty: refused, kept
    with pytest.raises(DatasetError, match="not empty"):
        convert_msd(task, tmp_path / "out", workers=1)
    (tmp_path / "out" / ".hidden").unlink()
    with pytest.raises(ImageReadError, match=f"{ids[2]}.nii.gz: not a readable NIfTI file"):
        convert_msd(task, tmp_path / "out", workers=1)  # the first two cases were written, then removed
    assert list((tmp_path / "out").iterdir()) == []
    with pytest.raises(ImageReadError):
        convert_msd(task, tmp_path / "made", workers=2)
    assert not (tmp_path / "made").exists()


def test_task_without_training_images_is_refused(msd_task, tmp_path):
    task, _ = msd_task(1)
    for image in (task / "imagesTr").iterdir():
        image.unlink()
    with pytest.raises(DatasetError, match=r"no training images \(no \*.nii.gz in imagesTr\)"):
        convert_msd(task, tmp_path / "out")
    (task / "imagesTr").rmdir()
    with pytest.raises(DatasetError, match=r"no training images \(no imagesTr folder\)"):
        convert_msd(task, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_convert_msd_command_says_bad_input_and_output_in_one_line(msd_task, tmp_path):
    task, _ = msd_task(1)
    (tmp_path / "afile").write_text("not a folder")
    for out, message in ((tmp_path / "afile", "is a file"), (tmp_path / "afile" / "sub", "is not writable")):
        result = runner.invoke(dataset_app, ["convert-msd", str(task), str(out), "-q"])
        assert result.exit_code == 2, result.output
        assert result.output.startswith("error:") and message in result.output and "Traceback" not in result.output
        assert len(result.output.strip().splitlines()) == 1
    shutil.rmtree(task / "imagesTr")
    result = runner.invoke(dataset_app, ["convert-msd", str(task), str(tmp_path / "out"), "-q"])
    assert result.exit_code == 2 and "no imagesTr" in result.output and "wrote" not in result.output
    assert not (tmp_path / "out").exists()
