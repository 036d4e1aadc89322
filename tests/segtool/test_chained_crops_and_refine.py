"""A sub-task whose region another sub-task finds (TotalSegmentator's teeth, found by craniofacial_structures on the
skull that total finds) and a map trimmed to another task's class (its vertebrae_pp_refined), on real MRI with the
reference hippocampus model served locally."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from segkit.io import read_image
from segtool import Segmenter, SegmentOptions
from segtool.cli.main import app
from segtool.errors import SegtoolError
from segtool.regions import box_around
from segtool.registry import load_registry
from segtool.vertebrae import trim_to

runner = CliRunner()
CASE = "hippocampus_033"


@pytest.fixture()
def scan(nnunet_reference_dir):
    return nnunet_reference_dir / "predictions" / "inputs" / f"{CASE}_0000.nii.gz"


@pytest.fixture()
def registry(hippo_registry, monkeypatch, tmp_path):
    """hippo; hippo_part on hippo's posterior class + 2 mm; hippo_inner on hippo_part's anterior class + 1 mm;
    hippo_trimmed: hippo's map grown by 1 mm and kept inside the hippocampus that hippo_coarse finds (the same model
    on a 2 mm grid, both its classes as one). The CLI reads this registry."""
    from segtool.cli import context

    path = hippo_registry(crop={"classes": ["posterior"], "margin_mm": 2.0, "mode": "default"})
    data = json.loads(path.read_text())
    hippo = data["tasks"]["hippo"]
    data["tasks"]["hippo_inner"] = {**hippo, "crop": {"task": "hippo_part", "classes": ["anterior"], "margin_mm": 1.0,
                                                      "mode": "default"}}
    data["tasks"]["hippo_trimmed"] = {**hippo, "refine": {"task": "hippo_coarse", "class": "hippocampus",
                                                          "grow_mm": 1.0}}
    coarse = {**hippo["modes"]["default"][0], "labels": {"1": "hippocampus", "2": "hippocampus"}, "spacing_mm": 2.0,
              "input_resampling": "totalsegmentator", "label_export": "nearest"}
    data["tasks"]["hippo_coarse"] = {"modality": "MR", "labels": {"1": "hippocampus"}, "modes": {"default": [coarse]}}
    path.write_text(json.dumps(data))
    loaded = load_registry(path)
    monkeypatch.setenv("SEGTOOL_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(context, "registry", lambda: loaded)
    return loaded


def test_a_sub_task_found_by_a_sub_task_runs_where_that_one_finds_it(registry, scan, tmp_path):
    image = read_image(scan)

    def alone(task: str, of=image) -> np.ndarray:
        return Segmenter(SegmentOptions(task=task, device="cpu"), registry=registry).segment(of).array

    inner = Segmenter(SegmentOptions(task="hippo_inner", device="cpu"), registry=registry)
    assert inner.finder.task.name == "hippo_part" and inner.finder.segmenter.finder.task.name == "hippo"
    assert len(inner.all_models) == 3  # hippo finds hippo_part's region, hippo_part finds this one's, then its own
    part = alone("hippo_part")
    box = box_around(part == 1, image.spacing, 1.0)
    assert inner._region(image) == box and box != box_around(part == 2, image.spacing, 1.0)
    out = tmp_path / "inner.nii.gz"
    result = runner.invoke(app, ["-i", str(scan), "-o", str(out), "-ta", "hippo_inner", "--ml", "-q"])
    assert result.exit_code == 0, result.output
    labels = read_image(out).array
    assert np.array_equal(labels[box], alone("hippo", image.crop(box))) and set(np.unique(labels)) == {0, 1, 2}
    labels[box] = 0
    assert not labels.any()

    result = runner.invoke(app, ["download", "hippo_inner", "-q"])
    assert result.exit_code == 0, result.output
    assert "hippo_inner crop (hippo_part default): Dataset004_Hippocampus ->" in result.output
    assert "hippo_inner crop (hippo default): Dataset004_Hippocampus ->" in result.output


def test_a_refined_map_is_trimmed_to_the_class_another_task_finds(registry, scan, tmp_path):
    image = read_image(scan)
    trimmed = Segmenter(SegmentOptions(task="hippo_trimmed", device="cpu"), registry=registry)
    assert trimmed.refiner.task.name == "hippo_coarse" and len(trimmed.all_models) == 2
    whole, coarse = (Segmenter(SegmentOptions(task=task, device="cpu"), registry=registry).segment(image).array
                     for task in ("hippo", "hippo_coarse"))
    expected = trim_to(whole, coarse == 1, image.spacing, 1.0)
    assert set(np.unique(expected)) == {0, 1, 2}
    assert (expected[whole == 0] > 0).any() and (expected[whole > 0] == 0).any()  # grown here, trimmed there
    out = tmp_path / "trimmed.nii.gz"
    result = runner.invoke(app, ["-i", str(scan), "-o", str(out), "-ta", "hippo_trimmed", "--ml", "-q"])
    assert result.exit_code == 0, result.output
    assert np.array_equal(read_image(out).array, expected)

    result = runner.invoke(app, ["download", "hippo_trimmed", "-q"])
    assert result.exit_code == 0, result.output
    assert "hippo_trimmed refine (hippo_coarse default): Dataset004_Hippocampus ->" in result.output
    with pytest.raises(SegtoolError, match="not with a ROI subset, a body crop or a task cropped or trimmed"):
        Segmenter(SegmentOptions(task="hippo_trimmed", device="cpu", save_lowres=True), registry=registry)
    result = runner.invoke(app, ["-i", str(scan), "-o", str(tmp_path / "low.nii.gz"), "-ta", "hippo_trimmed", "--ml",
                                 "-sl"])
    assert result.exit_code == 2 and "not with a ROI subset, a body crop or a task cropped or trimmed" in result.output
    assert len(result.output.strip().splitlines()) == 1 and not (tmp_path / "low.nii.gz").exists()


@pytest.mark.parametrize(("change", "message"), [
    ({"hippo_part": {"crop": {"task": "hippo_inner", "classes": ["anterior"]}}},
     "crops never reach one that runs on the whole scan \\(hippo_part -> hippo_inner\\)"),
    ({"hippo_trimmed": {"refine": {"task": "hippo_part", "class": "anterior"}}},
     "refine task 'hippo_part' is not another task of this registry with default models that run on the whole scan"),
    ({"hippo_trimmed": {"refine": {"task": "hippo_coarse", "class": "cortex"}}},
     "refine class 'cortex' is not a class of 'hippo_coarse'"),
    ({"hippo": {"cleanup": {"separate_vertebrae": {}}, "labels": {"1": "anterior", "3": "posterior"}}},
     "separate_vertebrae needs the vertebrae numbered 1, 2, ... top down"),
    ({"hippo_trimmed": {"refine": {"task": "hippo_coarse", "class": "hippocampus", "grow_mm": -2}}},
     "refine grow_mm must be a number of at least 0, got -2"),
    ({"hippo_trimmed": {"refine": {"task": "hippo_coarse", "class": "hippocampus", "grow_mm": "2 mm"}}},
     "refine grow_mm must be a number of at least 0, got '2 mm'"),
    ({"hippo": {"cleanup": {"separate_vertebrae": {"grow_mm": "3"}}}},
     "separate_vertebrae grow_mm must be a number of at least 0, got '3'"),
    ({"hippo": {"cleanup": {"separate_vertebrae": {"grow": 3.0}}}},
     "separate_vertebrae takes min_component_mm3 and grow_mm, got {'grow': 3.0}"),
    ({"hippo_coarse": {"refine": {"task": "hippo_trimmed", "class": "anterior"}}},  # a cycle of refines
     "refine task 'hippo_coarse' is not another task of this registry with default models that run on the whole "
     "scan, untrimmed"),
    ({"hippo_part": {"crop": {"task": "hippo_trimmed", "classes": ["anterior"], "mode": "default"}}},
     "crop task 'hippo_trimmed' is trimmed to another task's map \\(refine\\)"),
    ({"hippo_inner": {"crop": {"task": "hippo_part", "classes": ["anterior"]}}},  # MR: located by fast models
     "task 'hippo_part' has no 'fast' mode to crop with"),
    ({"hippo_trimmed": {"refine": {"task": "hippo_coarse", "class": "hippocampus", "grow": 2}}},
     "refine takes task, class and grow_mm, got"),
    ({"hippo_inner": {"crop": {"task": "hippo_part", "classes": ["anterior"], "margin_mm": -1, "mode": "default"}}},
     "crop margin_mm must be a number of at least 0, got -1"),
])
def test_broken_chains_and_refines_are_refused_at_load(registry, change, message):
    path = registry.source
    data = json.loads(path.read_text())
    for task, fields in change.items():
        data["tasks"][task].update(fields)
    path.write_text(json.dumps(data))
    with pytest.raises(SegtoolError, match=message):
        load_registry(path)


def test_totalsegmentators_vertebrae_and_teeth_tasks_are_wired_as_it_runs_them():
    registry = load_registry()
    helpers = {name: [(role, task.name, mode.value) for role, task, mode in registry.helpers(registry.task(name))]
               for name in ("teeth", "vertebrae_pp", "vertebrae_pp_refined", "vertebrae_body")}
    assert helpers == {"teeth": [("crop", "craniofacial_structures", "default"), ("crop", "total", "fastest")],
                       "vertebrae_pp": [], "vertebrae_pp_refined": [("refine", "vertebrae_body", "default")],
                       "vertebrae_body": []}
    teeth = registry.task("teeth")
    assert teeth.crop.classes == ("teeth_lower", "teeth_upper") and teeth.crop.margin_mm == 10.0
    assert len(teeth.labels) == 77 and teeth.labels[11] == "upper_right_central_incisor_fdi11"
    (model,) = teeth.models("default")
    assert model.configuration == "3d_lowres_high" and model.spacing_mm == (0.5, 0.5, 0.5) and not model.mirroring
    refined = registry.task("vertebrae_pp_refined")
    assert refined.labels == registry.task("vertebrae_pp").labels and refined.labels[24] == "vertebrae_L5"
    assert refined.refine.class_name == "vertebrae_body" and refined.refine.grow_mm == 2.0
    assert refined.cleanup.separate_vertebrae.grow_mm == 3.0


def test_tasks_counts_the_weights_a_task_needs_as_installed_or_not(registry):
    def row(task: str) -> str:
        result = runner.invoke(app, ["tasks"], env={"COLUMNS": "200"})
        [cells] = [cells for cells in (line.split("│") for line in result.output.splitlines())
                   if len(cells) > 6 and cells[1].strip() == task]
        return cells[6].strip()

    assert row("hippo_inner") == "default 0/1; needed 0/2"
    assert runner.invoke(app, ["download", "hippo", "-q"]).exit_code == 0  # one zip: every task's model here
    assert row("hippo_inner") == row("hippo_trimmed") == row("hippo") == "all"


def test_a_sub_task_that_finds_no_region_of_its_own_still_finds_one_for_the_next(registry, scan, tmp_path):
    # as TotalSegmentator: craniofacial_structures, run to find the teeth, runs on the whole scan where total finds no
    # skull (a dental CBCT); run as the task itself, it gives an empty map there
    path = registry.source
    data = json.loads(path.read_text())
    data["tasks"]["hippo"]["labels"]["3"] = "cortex"  # a class the model never predicts
    data["tasks"]["hippo_part"]["crop"]["classes"] = ["cortex"]
    path.write_text(json.dumps(data))
    changed = load_registry(path)
    image = read_image(scan)
    part = Segmenter(SegmentOptions(task="hippo_part", device="cpu"), registry=changed)
    assert part._region(image) is None and not part.segment(image).array.any()
    whole = Segmenter(SegmentOptions(task="hippo", device="cpu"), registry=changed).segment(image).array
    inner = Segmenter(SegmentOptions(task="hippo_inner", device="cpu"), registry=changed)
    assert inner.finder.segmenter.whole_scan_without_region and not part.whole_scan_without_region
    assert inner._region(image) == box_around(whole == 1, image.spacing, 1.0)


def test_save_lowres_on_a_chained_task_is_refused_before_any_download(registry, http_server, scan, tmp_path):
    out = tmp_path / "low.nii.gz"
    result = runner.invoke(app, ["-i", str(scan), "-o", str(out), "-ta", "hippo_inner", "--ml", "-sl"])
    assert result.exit_code == 2 and "trimmed to another's classes ('hippo_inner')" in result.output
    assert len(result.output.strip().splitlines()) == 1 and not out.exists()
    assert http_server[1].log == []  # not even the models that find its region were fetched


def test_missing_crop_masks_are_refused_before_any_download(registry, http_server, scan, tmp_path):
    out = tmp_path / "inner.nii.gz"
    result = runner.invoke(app, ["-i", str(scan), "-o", str(out), "-ta", "hippo_inner", "--ml", "-cp", str(tmp_path)])
    assert result.exit_code == 2 and f"crop_path {tmp_path} has no mask anterior.nii.gz" in result.output
    assert len(result.output.strip().splitlines()) == 1 and not out.exists()
    assert http_server[1].log == []  # neither its own model nor those that would find its region were fetched
