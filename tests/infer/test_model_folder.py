"""What a model folder is, and what a user who named the wrong thing is told (`check_model_folder`)."""

import shutil

import pytest

from segkit.infer.errors import ModelLoadError
from segkit.infer.model_folder import check_model_folder


def test_the_kinds_of_model_folder_and_hints_for_near_misses(hippo_model_dir, tmp_path):
    assert check_model_folder(hippo_model_dir) == "nnunet"
    with pytest.raises(ModelLoadError, match=f"it is one fold of {hippo_model_dir}: give that folder with -f 0"):
        check_model_folder(hippo_model_dir / "fold_0")
    best_only = tmp_path / "best_only"
    (best_only / "fold_0").mkdir(parents=True)
    for name in ("plans.json", "dataset.json"):
        shutil.copy(hippo_model_dir / name, best_only / name)
    (best_only / "fold_0" / "checkpoint_best.pth").write_bytes(b"")
    with pytest.raises(ModelLoadError, match=r"its folds hold checkpoint_best.pth: choose one with --checkpoint"):
        check_model_folder(best_only)
    assert check_model_folder(best_only, checkpoint="checkpoint_best.pth") == "nnunet"
    archive = tmp_path / "model.zip"
    archive.write_bytes(b"PK")
    with pytest.raises(ModelLoadError, match=f"is a zip file: {archive}; install it first with `segkit-import"):
        check_model_folder(archive)
    with pytest.raises(ModelLoadError, match=r"neither a segkit model folder .*checkpoint_final.pth\)$"):
        check_model_folder(tmp_path)  # nothing to suggest
    with pytest.raises(ModelLoadError, match="model folder not found"):
        check_model_folder(tmp_path / "nope")
