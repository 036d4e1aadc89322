"""Medical Segmentation Decathlon folders convert to the nnU-Net v2 layout."""

import numpy as np
import pytest

from segkit.io import DatasetError, read_image
from segkit.io.dataset import Dataset
from segkit.io.msd import convert_msd
from segkit.io.verify import verify_dataset


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
