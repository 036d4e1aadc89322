"""The resumable steps of segkit-plan."""

import json
import shutil

import pytest

from segkit.io.dataset import Dataset, DatasetInfo
from segkit.io.errors import DatasetError
from segkit.planning.fingerprint import Fingerprint
from segkit.planning.planner import PlanOptions
from segkit.planning.runner import FINGERPRINT_FILE, copy_dataset_json, fingerprint_step, plan_step, verify


def test_fingerprint_reused_only_when_valid(tmp_path, small_hippocampus):
    first = fingerprint_step(small_hippocampus, tmp_path, workers=1)
    stamp = (tmp_path / FINGERPRINT_FILE).stat().st_mtime_ns
    assert fingerprint_step(small_hippocampus, tmp_path, workers=1) == first
    assert (tmp_path / FINGERPRINT_FILE).stat().st_mtime_ns == stamp
    (tmp_path / FINGERPRINT_FILE).write_text('{"truncated": ')  # a damaged file is recomputed
    assert fingerprint_step(small_hippocampus, tmp_path, workers=1) == first
    fewer = Dataset(small_hippocampus.root, small_hippocampus.info, small_hippocampus.training[:3])
    assert len(fingerprint_step(fewer, tmp_path, workers=1).identifiers) == 3  # other cases: recomputed
    assert len(Fingerprint.load(tmp_path / FINGERPRINT_FILE).identifiers) == 3


def test_plans_replanned_when_options_change(tmp_path, small_hippocampus):
    fingerprint = fingerprint_step(small_hippocampus, tmp_path, workers=1)
    default = plan_step(small_hippocampus, fingerprint, tmp_path, options=PlanOptions())
    assert plan_step(small_hippocampus, fingerprint, tmp_path, options=PlanOptions()) == default
    resenc = plan_step(small_hippocampus, fingerprint, tmp_path, options=PlanOptions(preset="resenc_m"))
    assert resenc.extra["planner"] == "resenc_m" and resenc != default


def test_verify_reports_problems(tmp_path, small_hippocampus):
    verify(small_hippocampus.root, workers=1)  # a clean dataset passes
    broken = tmp_path / "broken"
    (broken / "imagesTr").mkdir(parents=True)
    (broken / "labelsTr").mkdir()
    (broken / "dataset.json").write_text((small_hippocampus.root / "dataset.json").read_text())
    for case in small_hippocampus.training[:2]:
        (broken / "imagesTr" / case.image_files[0].name).symlink_to(case.image_files[0])
    with pytest.raises(DatasetError, match="problem"):
        verify(broken, workers=1)
    two = tmp_path / "two_channels"  # the summary names the missing file, not only its case
    shutil.copytree(small_hippocampus.root, two, symlinks=True)
    info = json.loads((two / "dataset.json").read_text())
    (two / "dataset.json").write_text(json.dumps({**info, "channel_names": {"0": "MRI", "1": "MRI"}}))
    for case in small_hippocampus.training[1:]:
        (two / "imagesTr" / f"{case.identifier}_0001.nii.gz").symlink_to(case.image_files[0])
    with pytest.raises(DatasetError, match=f"{small_hippocampus.training[0].identifier}_0001.nii.gz: file is missing"):
        verify(two, workers=1)


def test_dataset_json_lands_beside_the_plans(tmp_path, small_hippocampus):
    path = copy_dataset_json(small_hippocampus, tmp_path / "out")
    assert path == tmp_path / "out" / "dataset.json"
    assert DatasetInfo.from_file(path) == small_hippocampus.info


def test_an_unwritable_output_fails_first_and_a_failed_run_leaves_no_folder(tmp_path, small_hippocampus):
    from segkit.io.errors import FileWriteError
    from segkit.planning.runner import RunOptions, plan_and_preprocess

    (tmp_path / "file").write_text("in the way")
    with pytest.raises(FileWriteError, match="is not writable"):  # before verifying or fingerprinting anything
        plan_and_preprocess(tmp_path / "missing_dataset", tmp_path / "file" / "out")
    with pytest.raises(DatasetError):
        plan_and_preprocess(tmp_path / "missing_dataset", tmp_path / "new" / "out", options=RunOptions(workers=1))
    assert not (tmp_path / "new").exists()
