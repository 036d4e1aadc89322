"""Which autocast the trainer picks for each precision and device."""

import pytest
import torch

from segkit.nets import hardware
from segkit.train.config import Precision
from segkit.train.errors import TrainConfigError
from segkit.train.precision import Autocast


@pytest.mark.parametrize("pays", [True, False])
def test_auto_trains_in_bf16_only_on_cpus_where_it_pays(monkeypatch, pays):
    monkeypatch.setattr(hardware, "cpu_bf16_pays", lambda: pays)
    chosen = Autocast.choose(Precision.AUTO, torch.device("cpu"))
    assert chosen.dtype == (torch.bfloat16 if pays else None)
    assert not chosen.needs_scaler
    assert Autocast.choose(Precision.FP32, torch.device("cpu")).dtype is None


@pytest.mark.parametrize("emulated", [True, False])
def test_bf16_and_fp16_are_refused_on_cpus_that_would_emulate_them(monkeypatch, emulated):
    monkeypatch.setattr(hardware, "cpu_emulation_message", lambda dtype: f"no {dtype} kernels" if emulated else None)
    for chosen, dtype in ((Precision.BF16, torch.bfloat16), (Precision.FP16, torch.float16)):
        assert Autocast.choose(chosen, torch.device("cuda")).dtype == dtype
        if emulated:
            with pytest.raises(TrainConfigError, match=f"no {dtype} kernels"):
                Autocast.choose(chosen, torch.device("cpu"))
        else:
            assert Autocast.choose(chosen, torch.device("cpu")).dtype == dtype


@pytest.mark.parametrize(("device", "dtype", "dims", "expected"), [
    ("cpu", torch.bfloat16, 3, torch.channels_last_3d),
    ("cpu", torch.bfloat16, 2, torch.contiguous_format),  # 2D batches are large: not measured
    ("cpu", None, 3, torch.contiguous_format),  # fp32 measured slower channels-last
    ("cuda", torch.bfloat16, 3, torch.contiguous_format),
])
def test_bf16_on_the_cpu_trains_3d_networks_channels_last(device, dtype, dims, expected):
    assert Autocast(device, dtype).memory_format(dims) == expected
