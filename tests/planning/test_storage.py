"""The blosc2 case store: patch reads, properties, completeness."""

from __future__ import annotations

import numpy as np
import pytest

from segkit.planning.errors import PreprocessingError
from segkit.planning.storage import CaseProperties, PreprocessedCase, remove_other_cases


def _properties(identifier="case_1", config_hash="abc"):
    return CaseProperties(
        identifier=identifier,
        original_spacing=(1.0, 1.0, 2.0),
        original_shape=(50, 60, 70),
        affine=tuple(tuple(float(v) for v in row) for row in np.eye(4)),
        crop_box=((1, 41), (2, 52), (3, 33)),
        shape_after_crop=(40, 50, 30),
        spacing=(1.0, 1.0, 1.0),
        shape=(40, 50, 60),
        class_locations={1: np.array([[1, 2, 3], [4, 5, 6]], np.int32), 2: np.zeros((0, 3), np.int32)},
        configuration_hash=config_hash,
    )


def test_write_then_read_patches(tmp_path):
    rng = np.random.default_rng(0)
    data = rng.random((2, 40, 50, 60)).astype(np.float32)
    seg = rng.integers(-1, 3, (1, 40, 50, 60)).astype(np.int16)
    PreprocessedCase.write(tmp_path, data=data, seg=seg, properties=_properties(), patch_size=(16, 16, 16))
    case = PreprocessedCase.open(tmp_path, "case_1")
    assert case.data.chunks == (1, 16, 16, 16)
    region = (slice(3, 19), slice(10, 40), slice(50, 60))
    patch, patch_seg = case.read_patch(region)
    assert np.array_equal(patch, data[(slice(None), *region)]) and np.array_equal(
        patch_seg, seg[(slice(None), *region)]
    )
    loaded = case.properties
    assert loaded.crop_box == ((1, 41), (2, 52), (3, 33)) and loaded.class_locations[1].tolist() == [
        [1, 2, 3],
        [4, 5, 6],
    ]
    assert loaded.class_locations[2].shape == (0, 3)
    assert CaseProperties.from_dict(loaded.to_dict()).to_dict() == _properties().to_dict()


def test_completeness(tmp_path):
    data, seg = np.zeros((1, 4, 4, 4), np.float32), np.zeros((1, 4, 4, 4), np.int16)
    assert not PreprocessedCase.is_complete(tmp_path, "case_1", "abc")
    PreprocessedCase.write(tmp_path, data=data, seg=seg, properties=_properties(), patch_size=(4, 4, 4))
    assert PreprocessedCase.is_complete(tmp_path, "case_1", "abc")
    assert not PreprocessedCase.is_complete(tmp_path, "case_1", "other")  # made with another configuration
    (tmp_path / "case_1_seg.b2nd").unlink()
    assert not PreprocessedCase.is_complete(tmp_path, "case_1", "abc")
    assert not list(tmp_path.glob(".*tmp*"))  # no temporary files left behind


def test_errors(tmp_path):
    with pytest.raises(PreprocessingError, match="no complete preprocessed case"):
        PreprocessedCase.open(tmp_path, "missing")
    with pytest.raises(PreprocessingError, match="one grid"):
        PreprocessedCase.write(
            tmp_path,
            data=np.zeros((1, 4, 4, 4)),
            seg=np.zeros((4, 4, 4)),
            properties=_properties(),
            patch_size=(4, 4, 4),
        )


def test_remove_other_cases_deletes_only_case_files(tmp_path):
    data, seg = np.zeros((1, 4, 4, 4), np.float32), np.zeros((1, 4, 4, 4), np.int16)
    for ident in ("case_1", "case_2", "case_2_seg"):
        PreprocessedCase.write(tmp_path, data=data, seg=seg, properties=_properties(ident), patch_size=(4, 4, 4))
    (tmp_path / "case_3.b2nd").write_bytes(b"")  # an array whose properties were never written
    (tmp_path / "notes.json").write_text('{"identifier": "case_1", "configuration_hash": "abc"}')  # not "notes"
    (tmp_path / ".case_4.b2nd.0123abcd.tmp.b2nd").write_bytes(b"")  # a write in progress
    (tmp_path / "sub").mkdir()
    assert remove_other_cases(tmp_path, ["case_1", "case_2"]) == ["case_2_seg"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        ".case_4.b2nd.0123abcd.tmp.b2nd", "case_1.b2nd", "case_1.json", "case_1_seg.b2nd", "case_2.b2nd",
        "case_2.json", "case_2_seg.b2nd", "notes.json", "sub",
    ]  # case_2_seg.b2nd is case_2's labels, kept
    assert remove_other_cases(tmp_path / "missing", []) == []
