import json

import pytest

from segkit.train.config import AugmentConfig, LossName, OptimizerName, TrainConfig
from segkit.train.errors import TrainConfigError
from segkit.train.registry import get_trainer, register_trainer, trainer_names


def test_defaults_are_nnunets():
    c = TrainConfig()
    schedule = (c.epochs, c.iters_per_epoch, c.lr, c.momentum, c.nesterov, c.weight_decay)
    assert schedule == (1000, 250, 1e-2, 0.99, True, 3e-5)
    assert (c.poly_power, c.grad_clip, c.oversample_foreground, c.split_seed) == (0.9, 12.0, 0.33, 12345)


def test_round_trip_through_json():
    c = get_trainer("adamwCosine").replace(augmentation=AugmentConfig(mirror_axes=(0, 2)))
    assert TrainConfig.from_dict(json.loads(json.dumps(c.to_dict()))) == c


@pytest.mark.parametrize("changes", [{"epochs": 0}, {"lr": -1.0}, {"optimizer": "lbfgs"},
                                     {"oversample_foreground": 2.0},
                                     {"norm": "layer"}])
def test_bad_values_raise_one_line(changes):
    with pytest.raises(TrainConfigError) as err:
        TrainConfig(**changes)
    assert "\n" not in str(err.value)


def test_unknown_key_and_bad_augmentation():
    with pytest.raises(TrainConfigError, match="unknown keys"):
        TrainConfig.from_dict({"epoch": 3})
    with pytest.raises(TrainConfigError, match="probability"):
        AugmentConfig(p_rotation=1.5)


def test_builtin_variants():
    names = trainer_names()
    for name in ("default", "1epoch", "5epochs", "noMirroring", "topkDice", "adamCosine", "adamwCosine", "batchNorm"):
        assert name in names
    assert get_trainer("noMirroring").augmentation.mirror_axes == ()
    assert get_trainer("topkDice").loss is LossName.DICE_TOPK
    assert get_trainer("adamCosine").optimizer is OptimizerName.ADAM
    assert get_trainer("batchNorm").norm == "batch"


def test_nnunet_names_of_builtin_trainers():
    assert get_trainer("nnUNetTrainer") is get_trainer("default")
    assert get_trainer("nnUNetTrainer_5epochs").epochs == 5 and get_trainer("nnUNetTrainer_1epoch").epochs == 1
    assert get_trainer("nnUNetTrainerNoMirroring").augmentation.mirror_axes == ()
    assert get_trainer("nnUNetTrainerNoDA").augmentation.p_rotation == 0
    assert get_trainer("nnUNetTrainerBN").norm == "batch"


def test_unknown_trainer_lists_valid_names():
    for name in ("nnUNetTrainerFoo", "nnUNetTrainer_7epochs"):
        with pytest.raises(TrainConfigError, match=f"unknown trainer '{name}'; registered: .*default"):
            get_trainer(name)


def test_user_registers_in_python_and_json(tmp_path):
    register_trainer(TrainConfig(name="test_user_trainer", epochs=3), replace=True)
    assert get_trainer("test_user_trainer").epochs == 3
    with pytest.raises(TrainConfigError, match="already registered"):
        register_trainer(TrainConfig(name="test_user_trainer"))
    path = tmp_path / "mine.json"
    path.write_text(json.dumps({"inherits_from": "topkDice", "epochs": 7, "augmentation": {"p_gamma": 0.0}}))
    config = get_trainer(str(path))
    summary = (config.name, config.epochs, config.loss, config.augmentation.p_gamma)
    assert summary == ("mine", 7, LossName.DICE_TOPK, 0.0)
    path.write_text("{nope")
    with pytest.raises(TrainConfigError, match="invalid JSON"):
        get_trainer(str(path))


@pytest.mark.parametrize("content, message", [
    ({"lr": "0.01"}, "'lr': expected a number, found '0.01'"),
    ({"val_iters_per_epoch": "3"}, "'val_iters_per_epoch': expected an integer"),
    ({"nesterov": "no"}, "'nesterov': expected true or false"),
    ({"seed": 1.5}, "'seed': expected an integer"),
    ({"augmentation": [1]}, "'augmentation' must be an object"),
    ({"augmentation": {"p_rotation": "x"}}, "'p_rotation': expected a number"),
    ({"augmentation": {"gamma_range": [0.7]}}, "'gamma_range': expected \\(low, high\\)"),
    ({"augmentation": {"mirror_axes": [0, "1"]}}, "'mirror_axes': expected axes"),
    ({"inherits_from": 5}, "'inherits_from' must be a trainer name"),
], ids=lambda v: str(v)[:30])
def test_trainer_file_with_wrong_types_is_one_line_naming_the_file(tmp_path, content, message):
    path = tmp_path / "wrong.json"
    path.write_text(json.dumps(content))
    with pytest.raises(TrainConfigError, match=message) as err:
        get_trainer(str(path))
    assert str(err.value).startswith(str(path)) and "\n" not in str(err.value)


def test_numbers_are_floats_after_parsing():
    config = TrainConfig.from_dict({"lr": 1, "augmentation": {"p_gamma": 0, "scaling_range": [1, 2]}})
    assert isinstance(config.lr, float) and config.augmentation.scaling_range == (1.0, 2.0)
    assert TrainConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
