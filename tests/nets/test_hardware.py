"""What each precision name means on each device (`segkit.nets.autocast_dtype`)."""

import pytest
import torch

from segkit.nets import PrecisionError, autocast_dtype, cudnn_autotuning, hardware

CPU, CUDA = torch.device("cpu"), torch.device("cuda")


@pytest.mark.parametrize("pays", [True, False])
def test_auto_is_the_callers_cuda_choice_and_bf16_only_on_cpus_where_it_pays(monkeypatch, pays):
    monkeypatch.setattr(hardware, "cpu_bf16_pays", lambda: pays)
    for cuda_auto in (torch.float16, torch.bfloat16):
        assert autocast_dtype("auto", CUDA, cuda_auto=cuda_auto) == cuda_auto
        assert autocast_dtype("auto", CPU, cuda_auto=cuda_auto) == (torch.bfloat16 if pays else None)
    assert autocast_dtype("fp32", CUDA, cuda_auto=torch.float16) is None


@pytest.mark.parametrize(("emulated", "amx", "speedup", "pays"), [
    (True, True, 5.0, False),  # no bf16 kernels: never, whatever else holds
    (False, True, 0.5, True),  # AMX: always
    (False, False, 2.4, True),  # AVX-512 BF16 measured faster (Zen 5)
    (False, False, 0.75, False),  # AVX-512 BF16 measured slower (layout reorders)
])
def test_bf16_pays_with_amx_or_a_measured_speedup(monkeypatch, emulated, amx, speedup, pays):
    monkeypatch.setattr(hardware, "cpu_emulation_message", lambda dtype: "emulated" if emulated else None)
    monkeypatch.setattr(hardware, "cpu_has_amx", lambda: amx)
    monkeypatch.setattr(hardware, "bf16_conv_speedup", lambda: speedup)
    assert hardware.cpu_bf16_pays.__wrapped__() is pays


def test_the_bf16_measurement_agrees_with_the_cpus_kernels():
    # where oneDNN has no bf16 kernels it emulates them many times slower; where it has them, the ratio is real
    rng = torch.get_rng_state()
    speedup = hardware.bf16_conv_speedup(rounds=1)
    assert torch.equal(torch.get_rng_state(), rng)  # a seeded training run draws the same numbers after it
    assert 0 < speedup < 1000
    if hardware.cpu_emulation_message(torch.bfloat16):
        assert speedup < 1


def test_emulated_and_unknown_precisions_are_refused(monkeypatch):
    monkeypatch.setattr(hardware, "cpu_emulation_message", lambda dtype: f"no {dtype} kernels")
    assert autocast_dtype("bf16", CUDA, cuda_auto=torch.float16) == torch.bfloat16
    with pytest.raises(PrecisionError, match="no torch.float16 kernels"):
        autocast_dtype("fp16", CPU, cuda_auto=torch.float16)
    with pytest.raises(PrecisionError, match="unknown precision 'half'; valid: auto, fp32, bf16, fp16"):
        autocast_dtype("half", CPU, cuda_auto=torch.float16)


def test_cudnn_autotuning_is_on_only_inside_the_block_and_only_for_cuda():
    before = torch.backends.cudnn.benchmark
    with cudnn_autotuning(CPU):
        assert torch.backends.cudnn.benchmark == before
    try:
        torch.backends.cudnn.benchmark = False
        with cudnn_autotuning(CUDA):
            assert torch.backends.cudnn.benchmark
        assert not torch.backends.cudnn.benchmark
        with pytest.raises(RuntimeError, match="inside"), cudnn_autotuning(torch.device("cuda", 1)):
            raise RuntimeError("inside")
        assert not torch.backends.cudnn.benchmark
    finally:
        torch.backends.cudnn.benchmark = before
