"""Which autocast the trainer picks for each precision and device."""

import pytest
import torch

from segkit.train import precision
from segkit.train.config import Precision
from segkit.train.precision import Autocast


@pytest.mark.parametrize("amx", [True, False])
def test_auto_trains_in_bf16_only_on_cpus_with_amx(monkeypatch, amx):
    monkeypatch.setattr(precision, "cpu_has_amx", lambda: amx)
    chosen = Autocast.choose(Precision.AUTO, torch.device("cpu"))
    assert chosen.dtype == (torch.bfloat16 if amx else None)
    assert not chosen.needs_scaler
    assert Autocast.choose(Precision.FP32, torch.device("cpu")).dtype is None
