"""Preprocessed data made with other plans is refused, before anything is written; a configuration shares the
folder of the one it inherits from only where the preprocessing is the same (real hippocampus cases)."""

import json

import pytest
from typer.testing import CliRunner

from segkit.planning.pipeline import configuration_hash
from segkit.planning.plans import Plans
from segkit.train.cli import app
from segkit.train.config import TrainConfig
from segkit.train.data.provenance import expected_hash
from segkit.train.data.splits import make_splits
from segkit.train.errors import TrainDataError
from segkit.train.setup import DataSetup

CONFIG = TrainConfig(epochs=1, iters_per_epoch=1)


def _linked(preprocessed, target, *, configurations=None, drop=()):
    """A preprocessed folder whose cases link to `preprocessed`'s (less the cases `drop`), with `configurations`
    merged into its plans' configurations."""
    plans = json.loads((preprocessed / "plans.json").read_text())
    for name, entry in (configurations or {}).items():
        plans["configurations"][name] = {**plans["configurations"].get(name, {}), **entry}
    target.mkdir()
    (target / "plans.json").write_text(json.dumps(plans))
    (target / "dataset.json").write_text((preprocessed / "dataset.json").read_text())
    for folder in ("3d_fullres", "2d"):
        (target / folder).mkdir()
        for path in (preprocessed / folder).iterdir():
            if not path.name.startswith(tuple(f"{case}." for case in drop) + tuple(f"{case}_" for case in drop)):
                (target / folder / path.name).symlink_to(path)
    return target


def test_variants_that_keep_the_preprocessing_share_their_parents_folder(hippo_preprocessed, tmp_path):
    variants = {"3d_bs4": {"inherits_from": "3d_fullres", "batch_size": 4},
                "2d_bs8": {"inherits_from": "2d", "batch_size": 8}}
    pre = _linked(hippo_preprocessed, tmp_path / "pre", configurations=variants)
    for name, folder in (("3d_fullres", "3d_fullres"), ("tiny", "3d_fullres"), ("3d_bs4", "3d_fullres"),
                         ("tiny2d", "2d"), ("2d_bs8", "2d")):
        assert DataSetup.load(pre, name, 0, CONFIG).store.folder == pre / folder, name
    plans = Plans.load(pre / "plans.json")  # the patch size only sets how the arrays are chunked
    assert expected_hash(plans, "tiny", "3d_fullres") == configuration_hash(plans, "3d_fullres")


@pytest.mark.parametrize("configurations, configuration", [
    ({"3d_fullres": {"spacing": [1.5, 1.5, 1.5]}}, "3d_fullres"),  # plans edited after preprocessing
    ({"3d_fullres": {"spacing": [1.5, 1.5, 1.5]}}, "tiny"),  # ... which its variants inherit
    ({"3d_sp": {"inherits_from": "3d_fullres", "spacing": [1.5, 1.5, 1.5]}}, "3d_sp"),  # a variant not preprocessed
    ({"2d_ct": {"inherits_from": "2d", "normalization_schemes": ["CTNormalization"]}}, "2d_ct"),
], ids=["edited", "edited_parent", "variant", "2d_variant"])
def test_data_preprocessed_with_other_plans_is_refused(hippo_preprocessed, tmp_path, configurations, configuration):
    pre = _linked(hippo_preprocessed, tmp_path / "pre", configurations=configurations)
    with pytest.raises(TrainDataError, match=f"{configuration} was not preprocessed, or preprocessed with other plans "
                                             rf".*segkit-plan preprocess DATASET_DIR -o {pre} -c {configuration}`"):
        DataSetup.load(pre, configuration, 0, CONFIG)
    out = tmp_path / "m"
    result = CliRunner().invoke(app, [str(pre), configuration, "0", "-o", str(out), "--device", "cpu", "--workers",
                                      "0", "--epochs", "1", "--iters-per-epoch", "1"])
    assert result.exit_code == 2 and result.output.startswith("error:"), result.output
    assert len(result.output.strip().splitlines()) == 1 and not out.exists()


def test_a_split_naming_cases_missing_from_the_preprocessed_folder_is_refused(hippo_preprocessed, tmp_path):
    ids = sorted(p.stem for p in (hippo_preprocessed / "3d_fullres").glob("*.json"))
    pre = _linked(hippo_preprocessed, tmp_path / "pre", drop=ids[:1])  # as preprocessing removes a stale case
    (pre / "splits_final.json").write_text(json.dumps(make_splits(ids)))
    fold = next(i for i, split in enumerate(make_splits(ids)) if ids[0] in split["val"])
    out = tmp_path / "m"
    result = CliRunner().invoke(app, [str(pre), "tiny", str(fold), "-o", str(out), "--device", "cpu"])
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1, result.output
    assert f"names cases that are not preprocessed: ['{ids[0]}']" in result.output and not out.exists()
