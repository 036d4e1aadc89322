"""model.json round trip and model-folder recognition."""

import json
import shutil

import pytest

from segkit.io.model_folder import (
    ModelFolderError,
    ModelInfo,
    fold_dir,
    is_nnunet_result_folder,
    read_model_info,
    write_model_info,
)


def test_model_info_round_trips_through_model_json(tmp_path):
    info = ModelInfo("default", "3d_fullres", (0, 1, "all"), {"background": 0, "a": 1, "r": (1, 2)}, (0, 2),
                     {"segkit-train": "0.1.0"})
    write_model_info(info, tmp_path)
    assert read_model_info(tmp_path) == info
    assert json.loads((tmp_path / "model.json").read_text())["format"] == "segkit-model"
    assert fold_dir(tmp_path, "all").name == "fold_all"


@pytest.mark.parametrize(("change", "message"), [
    ({"format": "other"}, "'format' must be"),
    ({"folds": []}, "at least one fold"),
    ({"folds": [-1]}, "folds must be"),
    ({"labels": {"a": 1}}, "background"),
    ({"folds": "x"}, "malformed"),
])
def test_malformed_model_json_is_refused(tmp_path, change, message):
    data = ModelInfo("t", "c", (0,), {"background": 0}).to_dict() | change
    (tmp_path / "model.json").write_text(json.dumps(data))
    with pytest.raises(ModelFolderError, match=message):
        read_model_info(tmp_path)


def test_missing_model_json_is_refused(tmp_path):
    with pytest.raises(ModelFolderError, match="no model.json"):
        read_model_info(tmp_path)


def test_nnunet_result_folder_is_recognised(nnunet_reference_dir, tmp_path):
    folder = nnunet_reference_dir / "Dataset004_Hippocampus" / "nnUNetTrainer_refShort__nnUNetPlans__3d_fullres"
    assert is_nnunet_result_folder(folder)
    copy = tmp_path / "model"
    shutil.copytree(folder, copy, ignore=shutil.ignore_patterns("*.pth"))
    assert not is_nnunet_result_folder(copy)
