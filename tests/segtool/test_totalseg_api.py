"""``segtool.totalsegmentator``: TotalSegmentator's Python signature, run by segtool."""

import json
import re

import numpy as np
import pytest

from segkit.io import read_image

CASE = "hippocampus_033"


def test_totalsegmentators_call_runs_as_segment_does(hippo_cli, nnunet_reference_dir, tmp_path, capsys):
    from segtool import segment, totalsegmentator

    scan = nnunet_reference_dir / "predictions" / "inputs" / f"{CASE}_0000.nii.gz"
    out = tmp_path / "ts"
    result = totalsegmentator(scan, out, task="hippocampus", statistics=True, statistics_exclude_masks_at_border=False,
                              statistics_normalized_intensities=True, device="gpu", report=tmp_path / "run.json",
                              verbose=True, quiet=True, nr_thr_resamp=2, nora_tag="None", debug=False)
    assert "hippocampus_v3 predicted (33, 48, 38)" in capsys.readouterr().err  # verbose: the steps
    labels = np.asarray(result.dataobj)
    assert np.array_equal(labels, np.asarray(segment(scan, task="hippocampus").dataobj))
    assert sorted(p.name for p in out.iterdir()) == ["anterior.nii.gz", "posterior.nii.gz", "statistics.json"]

    image = read_image(scan).array.astype(np.float64)
    normalized = (image - image.min()) / (image.max() - image.min())
    stats = json.loads((out / "statistics.json").read_text())
    for value, name in ((1, "anterior"), (2, "posterior")):
        assert stats[name]["intensity"] == pytest.approx(normalized[labels == value].mean(), abs=1e-5)
    report = json.loads((tmp_path / "run.json").read_text())
    assert report["input"] == str(scan) and report["device"] == "cpu" and report["task"] == "hippocampus"
    assert report["scans"][0]["files"] == [str(out / "anterior.nii.gz"), str(out / "posterior.nii.gz"),
                                           str(out / "statistics.json")]


def test_what_segtool_cannot_honour_is_refused_and_devices_are_translated(tmp_path):
    from segtool import totalsegmentator
    from segtool.errors import SegtoolError

    for arguments, name in (({"radiomics": True}, "radiomics"), ({"license_number": "x"}, "license_number"),
                            ({"plans": "nnUNetResEncUNetLPlans"}, "plans")):
        with pytest.raises(SegtoolError, match=f"does not support TotalSegmentator's {name}"):
            totalsegmentator(tmp_path / "absent.nii.gz", tmp_path / "out", **arguments)
    assert not (tmp_path / "out").exists()
    import torch

    from segtool import SegmentOptions

    # a torch.device is taken by its name, the index kept (gpu and gpu:N are segtool's names too)
    assert [SegmentOptions(device=str(torch.device(*d))).device for d in (("cpu",), ("cuda", 1))] == ["cpu", "cuda:1"]


def test_roi_subset_is_one_name_or_several_and_other_types_are_refused(hippo_cli, nnunet_reference_dir, tmp_path):
    from segtool import totalsegmentator
    from segtool.errors import SegtoolError

    scan = nnunet_reference_dir / "predictions" / "inputs" / f"{CASE}_0000.nii.gz"
    labels = totalsegmentator(scan, None, task="hippocampus", roi_subset="posterior")  # one name, not its letters
    assert set(np.unique(np.asarray(labels.dataobj))) == {0, 2}
    for arguments, message in [({"roi_subset": 5}, "roi_subset must be a class name or a list of them, got 5"),
                               ({"roi_subset_robust": ["posterior", 5]}, "roi_subset_robust must be a class name"),
                               ({"model_size": ["small"]}, "model_size must be a size name"),
                               ({"output_type": 5}, "output type must be one or more of"),
                               ({"statistics": f"{tmp_path / 'stats'}/"}, "names a folder; the statistics file"),
                               ({"crop_path": 5}, "crop_path must be a path")]:
        with pytest.raises(SegtoolError, match=re.escape(message)):
            totalsegmentator(scan, tmp_path / "out", task="hippocampus", **arguments)
    assert not (tmp_path / "out").exists() and not (tmp_path / "stats").exists()
