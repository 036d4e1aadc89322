"""What each precision name means on each device (`segkit.nets.autocast_dtype`)."""

import platform

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


ZEN5 = "processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 26\nmodel\t\t: 2\n"
ZEN4 = ZEN5.replace("26", "25")
INTEL = "processor\t: 0\nvendor_id\t: GenuineIntel\ncpu family\t: 6\nmodel\t\t: 143\n"


@pytest.mark.parametrize(("emulated", "amx", "cpu", "pays"), [
    (True, True, ZEN5, False),  # no bf16 kernels: never, whatever else holds
    (False, True, INTEL, True),  # AMX: always
    (False, False, ZEN5, True),  # AVX-512 BF16 on 512-bit units: 2.4x faster than float32
    (False, False, "AMD64 Family 26 Model 2 Stepping 0, AuthenticAMD", True),  # the same, as Windows names it
    (False, False, ZEN4, False),  # AVX-512 BF16 on 256-bit halves: slower than float32 (layout reorders)
    (False, False, INTEL, False),  # AVX-512 BF16 without AMX
    (False, False, "", False),  # a CPU that does not say what it is
])
def test_bf16_pays_with_amx_or_full_width_avx512_bf16(monkeypatch, emulated, amx, cpu, pays):
    monkeypatch.setattr(hardware, "cpu_emulation_message", lambda dtype: "emulated" if emulated else None)
    monkeypatch.setattr(hardware, "cpu_has_amx", lambda: amx)
    monkeypatch.setattr(hardware, "_cpu_description", lambda: cpu)
    assert hardware.cpu_bf16_pays.__wrapped__() is pays


def test_this_cpus_description_names_its_vendor_and_family_and_the_choice_is_stable():
    vendor, family = hardware.cpu_vendor_and_family(hardware._cpu_description())
    if platform.machine() in ("x86_64", "AMD64"):
        assert vendor in ("AuthenticAMD", "GenuineIntel") and family > 0
    assert len({hardware.cpu_bf16_pays.__wrapped__() for _ in range(5)}) == 1  # no timing: one answer


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
