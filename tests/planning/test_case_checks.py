"""A broken training case planned without verification (``--no-verify``, or the Python API) is one error line,
never a traceback, a NaN case or an undeclared label in the preprocessed data (real hippocampus cases)."""

from __future__ import annotations

import re
import shutil

import nibabel as nib
import numpy as np
import pytest
from typer.testing import CliRunner

from segkit.io.dataset import Dataset
from segkit.planning.case_checks import check_case_arrays
from segkit.planning.cli import app
from segkit.planning.errors import PreprocessingError
from segkit.planning.pipeline import preprocess_dataset
from segkit.planning.plans import Plans

runner = CliRunner()


def _break(root, kind: str) -> None:
    """Rewrite the first case of `root` (a copy of symlinks) with one defect."""
    label = sorted((root / "labelsTr").iterdir())[0]
    image = root / "imagesTr" / label.name.replace(".nii.gz", "_0000.nii.gz")
    target = image if kind == "nan" else label
    loaded = nib.load(target)
    array = np.asanyarray(loaded.dataobj).copy()
    if kind == "nan":
        array = array.astype(np.float32)
        array[3, 4, 5] = np.nan
    elif kind == "label":
        array[3, 4, 5] = 7
    else:
        array = array[:-2]
    target.unlink()
    header = loaded.header.copy()
    header.set_data_dtype(array.dtype)  # a uint8 header would turn the NaN into 0
    header.set_slope_inter(1, 0)
    nib.save(nib.Nifti1Image(array, loaded.affine, header), target)


@pytest.mark.parametrize("kind, message", [
    ("nan", "image has 1 NaN/Inf voxels"),
    ("label", r"label values \[7\] are not declared in dataset.json"),
    ("shape", "label shape .* differs from image shape"),
])
def test_no_verify_run_refuses_a_broken_case_in_one_line(tmp_path, small_hippocampus, kind, message):
    broken = tmp_path / "Dataset906_Broken"
    shutil.copytree(small_hippocampus.root, broken, symlinks=True)
    _break(broken, kind)
    out = tmp_path / "out"
    args = ["run", str(broken), "-o", str(out), "-c", "3d_fullres", "--no-verify", "-q", "-w", "1"]
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert result.output.startswith("error:") and len(result.output.strip().splitlines()) == 1, result.output
    assert re.search(message, result.output), result.output
    assert not out.exists()


def test_preprocessing_rechecks_a_case_changed_after_planning(tmp_path, small_hippocampus):
    """A fingerprint and plans made earlier do not let a case broken since then through."""
    data = tmp_path / "Dataset907_Changed"
    shutil.copytree(small_hippocampus.root, data, symlinks=True)
    out = tmp_path / "out"
    result = runner.invoke(app, ["run", str(data), "-o", str(out), "-c", "3d_fullres", "--no-preprocess", "-q"])
    assert result.exit_code == 0, result.output
    _break(data, "label")
    with pytest.raises(PreprocessingError, match=r"label values \[7\]"):
        preprocess_dataset(Dataset.load(data), Plans.load(out / "plans.json"), configuration="3d_fullres", output=out)


def test_check_case_arrays_accepts_a_good_case():
    image = np.random.default_rng(0).normal(size=(1, 4, 5, 6)).astype(np.float32)
    check_case_arrays("ok", image, np.ones((4, 5, 6), np.uint8), label_values=(0, 1, 2))
    check_case_arrays("ok", image, np.ones((1, 4, 5, 6), np.int16), label_values=None)
    check_case_arrays("ok", image, None)
