"""``segkit-plan``: whole runs, single steps, resume, move-plans, and exit code 2 on bad input."""

from __future__ import annotations

import json
import shutil

from typer.testing import CliRunner

from segkit.io.dataset import DatasetInfo
from segkit.planning.cli import app, with_default_command
from segkit.planning.fingerprint import Fingerprint
from segkit.planning.plans import Plans
from segkit.planning.storage import PreprocessedCase

runner = CliRunner()


def test_full_run_then_resume(tmp_path, small_hippocampus):
    out = tmp_path / "out"
    args = ["run", str(small_hippocampus.root), "-o", str(out), "-c", "3d_fullres", "-np", "2", "-q"]  # nnU-Net's -np
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    plans = Plans.load(out / "plans.json")
    assert plans.configuration("3d_fullres").patch_size == (40, 56, 40)
    assert (out / "fingerprint.json").is_file() and not (out / "3d_lowres").exists()
    cases = sorted(p.stem for p in (out / "3d_fullres").glob("*.json"))
    assert len(cases) == 6
    stamp = (out / "plans.json").stat().st_mtime_ns
    (out / "3d_fullres" / f"{cases[0]}.b2nd").unlink()  # interrupted mid-case
    assert runner.invoke(app, args).exit_code == 0
    assert (out / "plans.json").stat().st_mtime_ns == stamp  # same options: plans reused
    config_hash = json.loads((out / "3d_fullres" / f"{cases[1]}.json").read_text())["configuration_hash"]
    assert PreprocessedCase.is_complete(out / "3d_fullres", cases[0], config_hash)
    # a configuration the plans do not hold (small images: no 3d_lowres; or a typo) is refused before any work
    for command, message in [
        ("preprocess", "the plans hold no configuration '3d_lowres', '3d_fulres'; they hold 2d, 3d_fullres"),
        ("run", "unknown configuration '3d_fulres'; valid: 2d, 3d_fullres, 3d_lowres, 3d_cascade_fullres"),
    ]:
        result = runner.invoke(app, [command, str(small_hippocampus.root), "-o", str(out), "-c", "3d_lowres",
                                     "-c", "3d_fulres", "-c", "2d", "-q"])
        assert result.exit_code == 2 and message in result.output, result.output
        assert not (out / "2d").exists()


def test_a_configuration_the_plans_lack_is_refused_before_anything_is_written(tmp_path, small_hippocampus):
    for name, message in [("3d_lowres", "the plans hold no configuration '3d_lowres'; they hold 2d, 3d_fullres"),
                          ("3d_fulres", "unknown configuration '3d_fulres'; valid: 2d, 3d_fullres")]:
        result = runner.invoke(app, ["run", str(small_hippocampus.root), "-o", str(tmp_path / "out"), "-c", name,
                                     "-np", "2", "-q"])
        assert result.exit_code == 2 and message in result.output, result.output
        assert not (tmp_path / "out").exists()  # no fingerprint.json, plans.json or dataset.json


def test_replanning_keeps_exactly_the_dataset_cases(tmp_path, hippocampus_subset, caplog):
    raw, out = hippocampus_subset(tmp_path / "Dataset907_Four", 4), tmp_path / "out"
    args = ["run", str(raw), "-o", str(out), "-c", "3d_fullres", "-np", "2", "-q"]
    assert runner.invoke(app, args).exit_code == 0
    folder, median_shape = out / "3d_fullres", Plans.load(out / "plans.json").original_median_shape
    *rest, first = sorted(p.stem for p in folder.glob("*.json"))
    (folder / "notes.txt").write_text("kept")
    (folder / "settings.json").write_text('{"identifier": "other"}')  # not the properties of a case "settings"
    (out / "splits_final.json").write_text(json.dumps([{"train": rest[1:], "val": [first, rest[0]]}]))
    (raw / "imagesTr" / f"{first}_0000.nii.gz").unlink()  # the case is dropped from the dataset
    (raw / "labelsTr" / f"{first}.nii.gz").unlink()
    info = json.loads((raw / "dataset.json").read_text())
    (raw / "dataset.json").write_text(json.dumps({**info, "numTraining": 3}))
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        ["notes.txt", "settings.json", *(f"{c}{end}" for c in rest for end in (".b2nd", "_seg.b2nd", ".json"))])
    assert f"removed 1 preprocessed case(s) that are not in the dataset ({first})" in caplog.text
    assert f"splits_final.json names 1 case(s) that are not in the dataset ({first})" in caplog.text
    plans, fingerprint = Plans.load(out / "plans.json"), Fingerprint.load(out / "fingerprint.json")
    assert fingerprint.identifiers == tuple(rest) and plans.original_median_shape == median_shape
    # the same median shape, yet replanned on the new cases' intensities, not those of the old
    assert plans.foreground_intensity_properties_per_channel == fingerprint.intensity_properties


def test_an_unwritable_output_is_refused_before_any_work(tmp_path, small_hippocampus):
    (tmp_path / "file").write_text("in the way")
    out, raw = tmp_path / "file" / "out", str(small_hippocampus.root)
    for args in (["fingerprint", raw], ["plan", raw], ["preprocess", raw], ["move-plans", __file__, raw]):
        result = runner.invoke(app, [*args, "-o", str(out)])
        assert result.exit_code == 2, (args, result.output)
        assert f"output folder {out} is not writable" in result.output and "Traceback" not in result.output


def test_nnunet_dataset_numbers_and_folder_variables(tmp_path, small_hippocampus, monkeypatch):
    raw, pre = tmp_path / "raw", tmp_path / "pre"
    raw.mkdir()
    (raw / "Dataset904_SmallHippocampus").symlink_to(small_hippocampus.root)
    monkeypatch.setenv("nnUNet_raw", str(raw))
    monkeypatch.setenv("nnUNet_preprocessed", str(pre))
    # nnUNetv2_plan_and_preprocess -d 904 -c 3d_fullres -np 1: the output goes to $nnUNet_preprocessed/<name>
    result = runner.invoke(app, with_default_command(["-d", "904", "-c", "3d_fullres", "-np", "1", "-q"]))
    assert result.exit_code == 0, result.output
    out = pre / "Dataset904_SmallHippocampus"
    assert (out / "plans.json").is_file() and len(list((out / "3d_fullres").glob("*.b2nd"))) == 12
    for args, message in [
        (["-d", "905"], f"dataset 905 must match one folder Dataset905_* in {raw}; found: none"),
        (["-d", "904", str(small_hippocampus.root)], "as DATASET_DIR or as -d DATASET"),
        ([], "as DATASET_DIR or as -d DATASET"),
        ([str(small_hippocampus.root)], "-o OUTPUT is needed with DATASET_DIR"),
    ]:
        result = runner.invoke(app, ["run", *args, "-q"])
        assert result.exit_code == 2 and message in result.output, (args, result.output)
    monkeypatch.delenv("nnUNet_raw")
    result = runner.invoke(app, ["run", "-d", "904", "-q"])
    assert result.exit_code == 2 and "$nnUNet_raw, which is not set" in result.output


def test_steps_on_their_own_and_user_configuration_survives_replanning(tmp_path, small_hippocampus):
    out = tmp_path / "out"
    assert runner.invoke(app, ["fingerprint", str(small_hippocampus.root), "-o", str(out), "-q"]).exit_code == 0
    assert runner.invoke(app, ["plan", str(small_hippocampus.root), "-o", str(out), "-q"]).exit_code == 0
    data = json.loads((out / "plans.json").read_text())
    data["configurations"]["3d_fullres_bs4"] = {"inherits_from": "3d_fullres", "batch_size": 4}
    (out / "plans.json").write_text(json.dumps(data))
    result = runner.invoke(app, ["plan", str(small_hippocampus.root), "-o", str(out), "--gpu-memory", "24", "-q"])
    assert result.exit_code == 0, result.output
    plans = Plans.load(out / "plans.json")
    assert plans.extra["gpu_memory_gb"] == 24 and plans.configuration("3d_fullres_bs4").batch_size == 4
    result = runner.invoke(app, ["preprocess", str(small_hippocampus.root), "-o", str(out), "-c", "3d_fullres_bs4"])
    assert result.exit_code == 0 and len(list((out / "3d_fullres_bs4").glob("*.b2nd"))) == 12


def test_inconsistent_dataset_gets_the_verify_report(tmp_path, small_hippocampus):
    broken = tmp_path / "broken"
    shutil.copytree(small_hippocampus.root, broken, symlinks=True)
    next((broken / "labelsTr").iterdir()).unlink()
    result = runner.invoke(app, ["run", str(broken), "-o", str(tmp_path / "out"), "-q"])
    assert result.exit_code == 2 and "problem(s)" in result.output
    assert not (tmp_path / "out").exists()  # nothing ran


def test_anisotropic_one_case_dataset_plans_and_preprocesses(tmp_path, brain_dataset):
    out = tmp_path / "out"
    result = runner.invoke(app, ["run", str(brain_dataset), "-o", str(out), "-c", "3d_fullres", "-c", "2d", "-w", "1"])
    assert result.exit_code == 0, result.output
    assert "occur in no training case" in result.output  # the declared oedema label is absent
    plans = Plans.load(out / "plans.json")
    fullres = plans.configuration("3d_fullres")
    assert fullres.spacing[2] > 6 and fullres.architecture.kernel_sizes[0] == (3, 3, 1)
    assert plans.configuration("2d").slice_axis == 2
    case = PreprocessedCase.open(out / "2d", "brain")
    assert case.data.shape[3] == case.properties.shape_after_crop[2]  # 2D keeps the slices


def test_move_plans(tmp_path, small_hippocampus, brain_dataset):
    out = tmp_path / "out"
    assert runner.invoke(app, ["plan", str(small_hippocampus.root), "-o", str(out), "-q"]).exit_code == 0
    moved_dir = tmp_path / "moved"
    result = runner.invoke(
        app,
        ["move-plans", str(out / "plans.json"), str(brain_dataset), "-o", str(moved_dir), "--plans-name", "pretrained"],
    )
    assert result.exit_code == 0, result.output
    moved, source = Plans.load(moved_dir / "plans.json"), Plans.load(out / "plans.json")
    assert moved.dataset_name == brain_dataset.name and moved.extra["moved_from"] == source.dataset_name
    assert moved.configuration("3d_fullres").patch_size == source.configuration("3d_fullres").patch_size
    assert moved.configuration("3d_fullres").data_identifier == "pretrained_3d_fullres"
    assert moved.foreground_intensity_properties_per_channel == source.foreground_intensity_properties_per_channel


def test_preprocess_after_move_plans_writes_dataset_json(tmp_path, small_hippocampus, hippocampus_subset):
    source, target = tmp_path / "source", hippocampus_subset(tmp_path / "Dataset908_Target", 2)
    assert runner.invoke(app, ["plan", str(small_hippocampus.root), "-o", str(source), "-q"]).exit_code == 0
    out = tmp_path / "finetune"
    assert runner.invoke(app, ["move-plans", str(source / "plans.json"), str(target), "-o", str(out)]).exit_code == 0
    result = runner.invoke(app, ["preprocess", str(target), "-o", str(out), "-c", "3d_fullres", "-w", "1", "-q"])
    assert result.exit_code == 0, result.output
    assert DatasetInfo.from_file(out / "dataset.json") == DatasetInfo.from_file(target / "dataset.json")
    assert len(list((out / "3d_fullres").glob("*.json"))) == 2


def test_usage_errors_exit_2(tmp_path, small_hippocampus):
    result = runner.invoke(app, ["run", str(small_hippocampus.root), "-o", str(tmp_path), "--preset", "huge", "-q"])
    assert result.exit_code == 2 and "valid: default, resenc_m" in result.output
    result = runner.invoke(app, ["preprocess", str(small_hippocampus.root), "-o", str(tmp_path / "none")])
    assert result.exit_code == 2 and "cannot read plans" in result.output
    assert runner.invoke(app, ["run", str(tmp_path / "missing"), "-o", str(tmp_path)]).exit_code == 2


def test_default_command_is_run():
    assert with_default_command(["data", "-o", "x"]) == ["run", "data", "-o", "x"]
    assert with_default_command(["move-plans", "a"]) == ["move-plans", "a"]
    assert with_default_command(["--help"]) == ["--help"]


def test_two_d_dataset(tmp_path, hippocampus):
    import nibabel as nib
    import numpy as np

    root = tmp_path / "Dataset906_Slices"
    (root / "imagesTr").mkdir(parents=True)
    (root / "labelsTr").mkdir()
    for case in hippocampus.training[:4]:  # the middle slice of each case, stored as (i, j, 1)
        image, label = nib.load(case.image_files[0]), nib.load(case.label_file)
        k = image.shape[2] // 2
        for source, target in (
            (image, root / "imagesTr" / case.image_files[0].name),
            (label, root / "labelsTr" / case.label_file.name),
        ):
            array = np.asanyarray(source.dataobj)[:, :, k : k + 1]
            nib.save(nib.Nifti1Image(array, source.affine), target)
    (root / "dataset.json").write_text(
        json.dumps(
            {
                "channel_names": {"0": "MRI"},
                "numTraining": 4,
                "labels": {"background": 0, "a": 1, "b": 2},
                "file_ending": ".nii.gz",
            }
        )
    )
    out = tmp_path / "out"
    result = runner.invoke(app, ["run", str(root), "-o", str(out), "-w", "2"])
    assert result.exit_code == 0, result.output
    assert "2D dataset" in result.output
    plans = Plans.load(out / "plans.json")
    assert plans.configuration_names == ("2d",) and plans.configuration("2d").slice_axis == 2
    case = PreprocessedCase.open(out / "2d", hippocampus.training[0].identifier)
    assert case.data.shape[3] == 1 and case.seg.shape == case.data.shape
