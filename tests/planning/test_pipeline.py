"""Preprocessing a dataset: all cases stored, reruns resume, partial or stale outputs are redone."""

from __future__ import annotations

import numpy as np

from segkit.planning.fingerprint import extract_fingerprint
from segkit.planning.pipeline import preprocess_dataset
from segkit.planning.planner import plan_dataset
from segkit.planning.plans import Plans
from segkit.planning.storage import PreprocessedCase


def test_preprocess_resume_and_redo(tmp_path, small_hippocampus):
    fingerprint = extract_fingerprint(small_hippocampus, workers=2)
    plans = plan_dataset(fingerprint, small_hippocampus.info)
    calls = []
    folder = preprocess_dataset(
        small_hippocampus,
        plans,
        configuration="3d_fullres",
        output=tmp_path,
        workers=2,
        on_case_done=lambda: calls.append(1),
    )
    ids = [c.identifier for c in small_hippocampus.training]
    assert folder == tmp_path / "3d_fullres" and len(calls) == 6
    case = PreprocessedCase.open(folder, ids[0])
    assert case.data.shape[0] == 1 and case.seg.shape[1:] == case.data.shape[1:]
    assert set(case.properties.class_locations) == {1, 2} and case.properties.original_shape
    mtimes = {i: (folder / f"{i}.json").stat().st_mtime_ns for i in ids}
    (folder / f"{ids[2]}_seg.b2nd").unlink()  # an interrupted case
    preprocess_dataset(small_hippocampus, plans, configuration="3d_fullres", output=tmp_path, workers=1)
    redone = [i for i in ids if (folder / f"{i}.json").stat().st_mtime_ns != mtimes[i]]
    assert redone == [ids[2]] and PreprocessedCase.is_complete(folder, ids[2], case.properties.configuration_hash)
    data = plans.to_dict()
    data["configurations"]["3d_fullres"]["spacing"] = [1.5, 1.5, 1.5]  # a changed plan invalidates every case
    changed = Plans.from_dict(data)
    preprocess_dataset(small_hippocampus, changed, configuration="3d_fullres", output=tmp_path, workers=2)
    old_hash = case.properties.configuration_hash
    case = PreprocessedCase.open(folder, ids[0])
    assert case.properties.spacing == (1.5, 1.5, 1.5) and case.properties.configuration_hash != old_hash
    assert np.all(np.array(case.data.shape[1:]) < np.array(case.properties.shape_after_crop))
    assert len(list(folder.glob("*.json"))) == 6 and not list(folder.glob(".*"))
