import json

import numpy as np
import pytest
from typer.testing import CliRunner

from segkit.infer.cli_tools import postprocess_app
from segkit.infer.errors import InferError
from segkit.infer.postprocessing import (
    PostprocessingPlan,
    apply_postprocessing,
    determine_postprocessing,
    largest_component,
    remove_small_components,
)
from segkit.io import Image, read_image, write_image


def _case(blob: bool) -> tuple[np.ndarray, np.ndarray]:
    ref = np.zeros((12, 12, 12), np.uint8)
    ref[2:6, 2:6, 2:6] = 1
    ref[7:10, 7:10, 7:10] = 2
    pred = ref.copy()
    if blob:
        pred[0, 11, 0] = 1  # a stray voxel of class 1 far from the organ
    return pred, ref


def test_largest_component_uses_face_connectivity():
    m = np.zeros((3, 3, 3), bool)
    m[0, 0, 0] = m[1, 1, 1] = m[1, 1, 2] = True  # diagonal neighbours are separate components
    kept = largest_component(m)
    assert kept.sum() == 2 and kept[1, 1, 1] and not kept[0, 0, 0]
    assert not largest_component(np.zeros((2, 2, 2), bool)).any()


def test_apply_foreground_and_per_class():
    pred, ref = _case(blob=True)
    out = apply_postprocessing(pred, PostprocessingPlan(classes=(1,)))
    assert np.array_equal(out, ref)
    # whole-foreground: class 2 is a separate, smaller component and would be removed
    out = apply_postprocessing(pred, PostprocessingPlan(foreground=True))
    assert (out == 2).sum() == 0 and (out == 1).sum() == 64


def test_determine_keeps_only_what_helps():
    plan = determine_postprocessing([_case(True), _case(True)], [1, 2])
    assert plan.classes == (1,) and not plan.foreground
    assert plan.dice_after > plan.dice_before
    plan = determine_postprocessing([_case(False)], [1, 2])
    assert plan.classes == () and not plan.foreground
    with pytest.raises(InferError):
        PostprocessingPlan(classes=(0,))
    assert PostprocessingPlan.from_dict(plan.to_dict()) == plan


def test_cli_determine_then_apply(tmp_path):
    for folder in ("pred", "ref"):
        (tmp_path / folder).mkdir()
    pred, ref = _case(True)
    affine = np.diag([1.0, 1.0, 2.0, 1.0])
    write_image(Image(pred, affine), tmp_path / "pred" / "a.nii.gz", label=True)
    write_image(Image(ref, affine), tmp_path / "ref" / "a.nii.gz", label=True)
    runner = CliRunner()
    result = runner.invoke(postprocess_app, ["determine", str(tmp_path / "pred"), str(tmp_path / "ref"),
                                             "-o", str(tmp_path / "plans" / "pp.json")])  # folder made
    assert result.exit_code == 0, result.output
    result = runner.invoke(postprocess_app, ["apply", str(tmp_path / "pred"), str(tmp_path / "out"),
                                             "-p", str(tmp_path / "plans" / "pp.json")])
    assert result.exit_code == 0, result.output
    out = read_image(tmp_path / "out" / "a.nii.gz")
    assert np.array_equal(out.array, ref) and np.array_equal(out.affine, affine)
    result = runner.invoke(postprocess_app, ["apply", str(tmp_path / "empty"), str(tmp_path / "o2"),
                                             "-p", str(tmp_path / "plans" / "pp.json")])
    assert result.exit_code == 2 and "no label maps" in result.output
    for plan, message in (([], "'format' must be"), ({"format": "segkit-postprocessing/1",
                                                      "keep_largest_per_class": "ab"}, "must be a list")):
        (tmp_path / "bad.json").write_text(json.dumps(plan))
        result = runner.invoke(postprocess_app, ["apply", str(tmp_path / "pred"), str(tmp_path / "o3"),
                                                 "-p", str(tmp_path / "bad.json")])
        assert result.exit_code == 2 and message in result.output
    write_image(Image(ref[:-1], affine), tmp_path / "ref" / "a.nii.gz", label=True)
    result = runner.invoke(postprocess_app, ["determine", str(tmp_path / "pred"), str(tmp_path / "ref"),
                                             "-o", str(tmp_path / "pp2.json")])
    assert result.exit_code == 2 and "differs from the reference grid" in result.output


def test_regions_keep_the_largest_component_of_their_union(tmp_path):
    ref = np.zeros((12, 12, 12), np.uint8)
    ref[2:6, 2:6, 2:6] = 1
    ref[2:6, 2:6, 6:8] = 2  # touches class 1: one component of the region (1, 2)
    pred = ref.copy()
    pred[10, 10, 10] = 2  # a stray voxel of class 2
    out = apply_postprocessing(pred, PostprocessingPlan(classes=((1, 2),)))
    assert np.array_equal(out, ref)
    # per label, class 2's largest component is the slab: the same result; the region keeps class 2 even where
    # class 2 alone would be a smaller piece than the stray blob
    pred2 = ref.copy()
    pred2[2:6, 2:6, 6:8] = 0
    pred2[2:6, 2:6, 6] = 2  # 16 voxels of class 2 beside class 1
    pred2[8:11, 8:11, 8:11] = 2  # 27 voxels of class 2 elsewhere
    by_region = apply_postprocessing(pred2, PostprocessingPlan(classes=((1, 2),)))
    by_label = apply_postprocessing(pred2, PostprocessingPlan(classes=(2,)))
    assert (by_region[8:11, 8:11, 8:11] == 0).all() and (by_region[2:6, 2:6, 6] == 2).all()
    assert (by_label[8:11, 8:11, 8:11] == 2).all() and (by_label[2:6, 2:6, 6] == 0).all()
    ref[0:3, 9:12, 0:3] = pred2[0:3, 9:12, 0:3] = 3  # a separate organ: whole-foreground postprocessing would drop it
    plan = determine_postprocessing([(pred2, ref)], [(1, 2), (2,), (3,)])
    assert plan.classes == ((1, 2),) and not plan.foreground
    assert PostprocessingPlan.from_dict(json.loads(json.dumps(plan.to_dict()))) == plan
    for folder, array in (("pred", pred2), ("ref", ref)):
        (tmp_path / folder).mkdir()
        write_image(Image(array, np.eye(4)), tmp_path / folder / "a.nii.gz", label=True)
    labels = {"background": 0, "whole": [1, 2], "two": [2], "three": [3]}
    (tmp_path / "dataset.json").write_text(json.dumps({"labels": labels, "regions_class_order": [1, 2, 3]}))
    result = CliRunner().invoke(postprocess_app, ["determine", str(tmp_path / "pred"), str(tmp_path / "ref"),
                                                  "--dataset-json", str(tmp_path / "dataset.json"),
                                                  "-o", str(tmp_path / "pp.json")])
    assert result.exit_code == 0, result.output
    assert PostprocessingPlan.load(tmp_path / "pp.json").classes == ((1, 2),)
    with pytest.raises(InferError):
        PostprocessingPlan(classes=((0, 1),))


def test_components_in_unannotated_voxels_do_not_count():
    ref = np.zeros((12, 12, 12), np.uint8)
    ref[2:6, 2:6, 2:6] = 1
    ref[0:2, 10:12, 0:2] = 255  # not annotated
    pred = np.where(ref == 255, 0, ref).astype(np.uint8)
    pred[0, 11, 0] = 1  # a stray component where nobody annotated
    scored_everywhere = determine_postprocessing([(pred, ref)], [1])
    assert scored_everywhere.foreground and scored_everywhere.dice_after == 1.0 > scored_everywhere.dice_before
    plan = determine_postprocessing([(pred, ref)], [1], ignore_label=255)
    assert plan.classes == () and not plan.foreground and plan.dice_before == 1.0


def test_small_components_are_removed_as_totalsegmentator_removes_small_blobs(nnunet_reference_dir):
    labels = read_image(nnunet_reference_dir / "predictions" / "totalseg_fast_example_ct.nii.gz")
    voxel_mm3 = float(np.prod(labels.spacing))
    assert voxel_mm3 == 27.0 and (labels.array > 0).sum() == 87645 and len(np.unique(labels.array)) == 37
    cleaned = remove_small_components(labels.array, 200 / voxel_mm3)
    # TotalSegmentator 2.18's remove_small_blobs_multilabel (its --remove_small_blobs, 200 mm3) on the same file
    # keeps 33583 voxels of 5 classes
    assert (cleaned > 0).sum() == 33583 and len(np.unique(cleaned)) == 6
    assert np.all((cleaned == labels.array) | (cleaned == 0))  # only removes
    removed = (cleaned == 0) & (labels.array > 0)
    assert removed.any() and np.array_equal(remove_small_components(cleaned, 200 / voxel_mm3), cleaned)


def test_a_4d_or_corrupt_label_map_exits_2_and_leaves_no_output(four_d_prediction, tmp_path):
    pred_dir, ref_dir = four_d_prediction
    runner = CliRunner()
    plan = tmp_path / "pp.json"
    plan.write_text(json.dumps(PostprocessingPlan(foreground=True).to_dict()))
    result = runner.invoke(postprocess_app, ["determine", str(pred_dir), str(ref_dir), "-o", str(tmp_path / "x.json")])
    assert result.exit_code == 2 and f"{pred_dir / 'hippocampus_001.nii.gz'}: holds 2 volumes" in result.output
    assert not (tmp_path / "x.json").exists()
    result = runner.invoke(postprocess_app, ["apply", str(pred_dir), str(tmp_path / "o1"), "-p", str(plan)])
    assert result.exit_code == 2 and "holds 2 volumes" in result.output and not (tmp_path / "o1").exists()
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    source = ref_dir / "hippocampus_001.nii.gz"
    (corrupt / source.name).write_bytes(source.read_bytes()[:100])
    result = runner.invoke(postprocess_app, ["apply", str(corrupt), str(tmp_path / "o2"), "-p", str(plan)])
    assert result.exit_code == 2 and "Traceback" not in result.output and not (tmp_path / "o2").exists()


def test_apply_refuses_its_input_folder_as_output(predictions_dir, tmp_path):
    pred = tmp_path / "pred"
    pred.mkdir()
    for name in ("hippocampus_033.nii.gz", "hippocampus_035.nii.gz"):
        (pred / name).write_bytes((predictions_dir / "hippocampus_tta" / name).read_bytes())
    plan = PostprocessingPlan(foreground=True, classes=(1, 2)).save(tmp_path / "pp.json")
    (tmp_path / "link").symlink_to(pred)
    before = {p.name: p.read_bytes() for p in pred.iterdir()}
    for out in (pred, pred / ".", tmp_path / "link"):
        result = CliRunner().invoke(postprocess_app, ["apply", str(pred), str(out), "-p", str(plan)])
        assert result.exit_code == 2, result.output
        assert result.output.strip().splitlines() == [f"error: output folder {out} is the input folder {pred}: outputs "
                                                      f"there would replace or join the inputs; choose another output "
                                                      f"folder"]
        assert {p.name: p.read_bytes() for p in pred.iterdir()} == before


def test_background_or_negative_labels_are_refused(predictions_dir, hippocampus_dir, tmp_path):
    pred, ref = predictions_dir / "hippocampus_tta", hippocampus_dir / "labelsTr"
    for labels, shown in ((["0"], "0"), (["-1"], "-1"), (["1", "-l", "0", "-l", "-2"], "0, -2")):
        result = CliRunner().invoke(postprocess_app, ["determine", str(pred), str(ref), "-o", str(tmp_path / "pp.json"),
                                                      "-l", *labels])
        assert result.exit_code == 2, result.output
        assert result.output.strip().splitlines() == [f"error: labels must be whole numbers > 0 (0 is the background) "
                                                      f"or regions of them, got {shown}; give foreground labels only"]
        assert not (tmp_path / "pp.json").exists()
    for classes in ([0], [[1, 0]], [1.5], [[]]):
        with pytest.raises(InferError, match="labels must be whole numbers > 0"):
            PostprocessingPlan(classes=tuple(classes))
