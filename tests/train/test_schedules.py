import pytest
import torch

from segkit.train.config import OptimizerName, ScheduleName, TrainConfig
from segkit.train.schedules import build_optimizer, learning_rate


def test_poly_schedule_matches_nnunet_formula():
    c = TrainConfig(epochs=10)
    assert learning_rate(c, 0) == pytest.approx(1e-2)
    assert learning_rate(c, 5) == pytest.approx(1e-2 * 0.5 ** 0.9)
    assert learning_rate(c, 9) == pytest.approx(1e-2 * 0.1 ** 0.9)


def test_cosine_and_constant():
    c = TrainConfig(epochs=10, schedule=ScheduleName.COSINE)
    assert learning_rate(c, 0) == pytest.approx(1e-2)
    assert learning_rate(c, 5) == pytest.approx(0.5e-2)
    assert learning_rate(c.replace(schedule=ScheduleName.CONSTANT), 9) == 1e-2


def test_optimizers():
    params = [torch.nn.Parameter(torch.zeros(2))]
    sgd = build_optimizer(TrainConfig(), params)
    assert isinstance(sgd, torch.optim.SGD) and sgd.defaults["nesterov"] and sgd.defaults["momentum"] == 0.99
    assert isinstance(build_optimizer(TrainConfig(optimizer=OptimizerName.ADAMW), params), torch.optim.AdamW)
