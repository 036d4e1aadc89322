import json

import pytest

from segkit.train.data.splits import SPLITS_FILE, fold_cases, load_or_create_splits, make_splits
from segkit.train.errors import TrainDataError


def test_splits_equal_nnunets_for_hippocampus(nnunet_reference_dir):
    reference = json.loads((nnunet_reference_dir / "Dataset004_Hippocampus" / "splits_final.json").read_text())
    ids = sorted({k for fold in reference for k in fold["train"] + fold["val"]})
    ours = make_splits(ids, num_folds=5, seed=12345)
    for mine, theirs in zip(ours, reference, strict=False):
        assert mine["val"] == sorted(theirs["val"]) and mine["train"] == sorted(theirs["train"])


def test_created_once_and_user_file_wins(tmp_path):
    ids = tuple(f"case_{i:02d}" for i in range(12))
    splits = load_or_create_splits(tmp_path, ids, num_folds=3, seed=1)
    assert json.loads((tmp_path / SPLITS_FILE).read_text()) == splits
    custom = [{"train": list(ids[:6]), "val": list(ids[6:])}]
    (tmp_path / SPLITS_FILE).write_text(json.dumps(custom))
    assert load_or_create_splits(tmp_path, ids, num_folds=5, seed=1) == custom
    (tmp_path / SPLITS_FILE).write_text(json.dumps([{"train": ["ghost"], "val": []}]))
    with pytest.raises(TrainDataError, match="ghost"):
        load_or_create_splits(tmp_path, ids, num_folds=5, seed=1)


def test_fold_selection():
    ids = tuple(f"c{i}" for i in range(10))
    splits = make_splits(ids, num_folds=5)
    train, val = fold_cases(splits, 2, ids)
    assert len(val) == 2 and not set(train) & set(val) and len(train) == 8
    assert fold_cases(splits, "all", ids) == (sorted(ids), sorted(ids))  # nnU-Net validates fold all on its cases
    with pytest.raises(TrainDataError, match="expected 0..4"):
        fold_cases(splits, 5, ids)


@pytest.mark.parametrize("content, message", [
    ({"train": ["case_00"], "val": ["case_01"]}, "expected a list of"),
    ([], "expected a list of"),
    ([{"train": ["case_00"]}], "fold 0: expected a list of"),
    ([{"train": "case_00", "val": []}], "fold 0: expected a list of"),
    ([{"train": [], "val": ["case_00"]}], "fold 0 has no training cases"),
], ids=["object", "empty", "no_val", "string", "no_train"])
def test_malformed_user_splits_are_one_line(tmp_path, content, message):
    ids = tuple(f"case_{i:02d}" for i in range(4))
    (tmp_path / SPLITS_FILE).write_text(json.dumps(content))
    with pytest.raises(TrainDataError, match=message) as err:
        load_or_create_splits(tmp_path, ids, num_folds=2, seed=1)
    assert str(err.value).startswith(str(tmp_path / SPLITS_FILE)) and "\n" not in str(err.value)
