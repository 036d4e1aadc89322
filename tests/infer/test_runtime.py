"""Which autocast dtype each precision gives on each device."""

import pytest
import torch

from segkit.infer import runtime
from segkit.infer.runtime import Precision, autocast_dtype
from segkit.nets import hardware

CPU, CUDA = torch.device("cpu"), torch.device("cuda")


@pytest.mark.parametrize("pays", [True, False])
def test_auto_is_bf16_only_on_cpus_where_it_pays(monkeypatch, pays):
    monkeypatch.setattr(hardware, "cpu_bf16_pays", lambda: pays)
    assert autocast_dtype(Precision.AUTO, CPU) == (torch.bfloat16 if pays else None)
    assert autocast_dtype(Precision.AUTO, CUDA) == torch.float16
    assert autocast_dtype(Precision.FP32, CPU) is None


@pytest.mark.parametrize("emulated", [True, False])
def test_bf16_and_fp16_are_refused_on_cpus_that_would_emulate_them(monkeypatch, emulated):
    monkeypatch.setattr(hardware, "cpu_emulation_message", lambda dtype: f"no {dtype} kernels" if emulated else None)
    for precision, dtype in ((Precision.BF16, torch.bfloat16), (Precision.FP16, torch.float16)):
        assert autocast_dtype(precision, CUDA) == dtype
        if emulated:
            with pytest.raises(runtime.InferError, match=f"no {dtype} kernels"):
                autocast_dtype(precision, CPU)
        else:
            assert autocast_dtype(precision, CPU) == dtype


def test_device_names_are_checked():
    assert runtime.parse_device("CPU") == CPU
    for name in ("meta", "tpu"):
        with pytest.raises(runtime.InferError, match="cpu, cuda"):
            runtime.parse_device(name)
