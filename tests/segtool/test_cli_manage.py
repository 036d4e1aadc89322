"""segtool tasks, classes, download, weights, combine and info: exit 0 on success, 2 with one line otherwise."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from segkit.io import read_image, write_image
from segtool.cli.main import app

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args], env={"COLUMNS": "200"})


def test_tasks_and_classes(tmp_path, monkeypatch):
    monkeypatch.setenv("SEGTOOL_HOME", str(tmp_path))
    result = invoke("tasks")
    assert result.exit_code == 0 and "total_mr" in result.output and "117" in result.output
    result = invoke("classes", "total")
    assert result.exit_code == 0 and "liver" in result.output and "costal_cartilages" in result.output
    result = invoke("classes", "totl")
    assert result.exit_code == 2 and "did you mean 'total'" in result.output
    # a sub-task: the task that finds its region, and the region
    [row] = [line for line in invoke("tasks").output.splitlines() if " liver_vessels " in line]
    assert row.split("│")[4].strip() == "total"
    assert "runs on the box of liver that total finds, plus 20 mm" in invoke("classes", "liver_vessels").output
    # TotalSegmentator's spelling: -lt, -lc [TASK] (total without one)
    assert invoke("-lt").output == invoke("tasks").output
    assert invoke("-lc").output == invoke("classes", "total").output
    assert invoke("--list_classes", "hippocampus").output == invoke("classes", "hippocampus").output
    result = invoke("-lc", "totl")
    assert result.exit_code == 2 and "did you mean 'total'" in result.output and "Traceback" not in result.output


def test_download_then_weights_list_verify_remove(hippo_cli, tmp_path):
    result = runner.invoke(app, ["download", "hippo", "-q"], env={"COLUMNS": None})
    assert result.exit_code == 0, result.output
    assert "Dataset004_Hippocampus" in result.output
    installed = result.output.strip().rpartition(" -> ")[2]
    assert len(result.output.strip()) > 80 and Path(installed).is_dir()  # not wrapped at 80 columns when piped
    assert invoke("weights", "path").output.strip() == str(tmp_path / "home" / "weights")
    listing = invoke("weights", "list")
    assert listing.exit_code == 0 and "Dataset004_Hippocampus" in listing.output and "yes" in listing.output
    assert invoke("weights", "verify").exit_code == 0
    checkpoint = next((tmp_path / "home" / "weights").rglob("checkpoint_final.pth"))
    checkpoint.write_bytes(b"tampered")
    result = invoke("weights", "verify", "hippo")
    assert result.exit_code == 2 and "modified since install" in result.output
    assert invoke("weights", "remove", "hippo").exit_code == 0
    assert "no weights installed" in invoke("weights", "list").output


def test_download_failure_is_one_line(hippo_cli):
    hippo_cli.files.clear()
    result = invoke("download", "hippo", "-q")
    assert result.exit_code == 2 and "HTTP 404" in result.output and "Traceback" not in result.output
    assert invoke("download", "hippo", "--mode", "fast").exit_code == 2


def test_weights_import_of_a_non_model_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("SEGTOOL_HOME", str(tmp_path / "home"))
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"not a zip")
    result = invoke("weights", "import", junk)
    assert result.exit_code == 2 and "not a readable zip" in result.output
    assert invoke("weights", "import", tmp_path / "absent.zip").exit_code == 2


def test_combine_lung_from_a_totalsegmentator_multilabel(ct_dir, tmp_path):
    result = invoke("combine", "-i", ct_dir / "example_seg.nii.gz", "-o", tmp_path / "lung.nii.gz", "-m", "lung")
    assert result.exit_code == 0, result.output
    seg = read_image(ct_dir / "example_seg.nii.gz")
    expected = np.isin(seg.array, [10, 11, 12, 13, 14])  # the five lobes of total_labels.json
    combined = read_image(tmp_path / "lung.nii.gz")
    assert expected.sum() > 0 and seg.meta["label_names"][1] == "spleen"
    assert "label_names" not in combined.meta  # 1 is the lung here, not the spleen
    np.testing.assert_array_equal(combined.array.astype(bool), expected)


def test_combine_from_a_folder_of_masks(ct_dir, tmp_path):
    seg = read_image(ct_dir / "example_seg.nii.gz")
    masks = tmp_path / "masks"
    masks.mkdir()
    names = seg.meta["label_names"]
    picked = {value: names[value] for value in (30, 31, 5, 98)}  # L2, L1, liver, rib_left_7: all in this scan
    picked[32] = "sacrum"  # T12's voxels stand in for the sacrum, which this scan does not show
    for value, name in picked.items():
        write_image(seg.with_array((seg.array == value).astype(np.uint8)), masks / f"{name}.nii.gz")
    # as totalseg_combine_masks groups them: the vertebrae with the sacrum, and those with the ribs
    for group, values in (("vertebrae", [30, 31, 32]), ("vertebrae_ribs", [30, 31, 32, 98])):
        result = invoke("combine", "-i", masks, "-o", tmp_path / f"{group}.nii.gz", "-m", group)
        assert result.exit_code == 0, result.output
        combined = read_image(tmp_path / f"{group}.nii.gz").array.astype(bool)
        assert np.isin(seg.array, values).sum() > 4000
        np.testing.assert_array_equal(combined, np.isin(seg.array, values))
    # a combined mask never replaces what it is made from: a class mask of the folder, or the multilabel file
    before = (masks / "liver.nii.gz").read_bytes()
    result = invoke("combine", "-i", masks, "-o", masks / "liver.nii.gz", "-m", "vertebrae")
    assert result.exit_code == 2 and "would overwrite liver.nii.gz, a mask in" in result.output
    assert (masks / "liver.nii.gz").read_bytes() == before
    assert invoke("combine", "-i", masks, "-o", masks / "vertebrae.nii.gz", "-m", "vertebrae").exit_code == 0
    multilabel = tmp_path / "seg.nii.gz"
    multilabel.write_bytes((ct_dir / "example_seg.nii.gz").read_bytes())
    result = invoke("combine", "-i", multilabel, "-o", tmp_path / "." / "seg.nii.gz", "-m", "lung")
    assert result.exit_code == 2 and "would overwrite its input" in result.output
    assert multilabel.read_bytes() == (ct_dir / "example_seg.nii.gz").read_bytes()


@pytest.mark.parametrize(("group", "message"), [("lungs", "did you mean 'lung'"), ("body", "holds no class")])
def test_combine_errors(ct_dir, tmp_path, group, message):
    result = invoke("combine", "-i", ct_dir / "example_seg.nii.gz", "-o", tmp_path / "x.nii.gz", "-m", group)
    assert result.exit_code == 2 and message in result.output
    assert not (tmp_path / "x.nii.gz").exists()


def test_info(tmp_path, monkeypatch):
    monkeypatch.setenv("SEGTOOL_HOME", str(tmp_path))
    result = invoke("info")
    assert result.exit_code == 0 and "segkit-infer" in result.output and str(tmp_path) in result.output
    assert "CPU bf16 pays" in result.output and "CPU bf16 kernels" in result.output
    assert "highdicom" in result.output  # the dicom extra, installed by scripts/install.sh


def test_version():
    from importlib import metadata

    result = invoke("--version")
    assert result.exit_code == 0 and result.output.strip() == f"segtool {metadata.version('segtool')}"


def test_no_arguments_shows_help_and_half_arguments_exit_2(tmp_path):
    assert "segtool -i ct.nii.gz" in invoke().output
    assert invoke("-i", tmp_path).exit_code == 2


def test_nifti_scans_and_installed_weights_load_neither_simpleitk_nor_requests(ct_dir, tmp_path):
    # SimpleITK and requests each took 0.1-0.3 s of a segtool run's start-up; only other formats, and downloads,
    # need them. Run as without the `dicom` extra: with pydicom installed, nibabel imports it, and it imports requests.
    code = f"""
import sys
sys.modules["pydicom"] = None
import segtool.cli.main, segtool.cli.segment, segtool.run, segtool.weights, segtool.store
import segtool.api, segtool.segmenter
from segkit.io import read_image, write_image
image = read_image({str(ct_dir / "example_ct.nii.gz")!r})
write_image(image, {str(tmp_path / "copy.nii.gz")!r})
assert not {{"SimpleITK", "requests"}} & set(sys.modules), "loaded at start-up"
write_image(image, {str(tmp_path / "copy.nrrd")!r})
assert "SimpleITK" in sys.modules
"""
    subprocess.run([sys.executable, "-c", code], check=True)
    assert read_image(tmp_path / "copy.nrrd").same_grid(read_image(tmp_path / "copy.nii.gz"))


def test_a_download_bar_appears_only_when_bytes_come():
    from rich.progress import Progress

    from segtool.cli.context import progress_for
    from segtool.registry import load_registry

    (entry,) = load_registry().task("hippocampus").models("default")
    bars = Progress(disable=True)
    update = progress_for(bars)(entry)  # asked for every model, installed or not
    assert not bars.tasks
    update(1024, entry.size)
    update(2048, entry.size)
    assert [(t.description, t.completed) for t in bars.tasks] == [(f"downloading {entry.name}", 2048)]
