"""What the CPU offers for low-precision convolutions, and what each precision name means on a device."""

from __future__ import annotations

import contextlib
import functools
import platform
import re
from collections.abc import Iterator
from pathlib import Path

import torch

from segkit.nets.errors import PrecisionError


@functools.cache
def cpu_has_amx() -> bool:
    """Tell whether the CPU has AMX tiles, where oneDNN runs bfloat16 convolutions 2-3x faster than float32."""
    check = getattr(torch.cpu, "_is_amx_tile_supported", None)
    return bool(check()) if check is not None else False


#: the first AMD CPU family (Zen 5) whose AVX-512 units are 512 bits wide; Zen 4 (family 25) splits each 512-bit
#: instruction in two
AMD_FULL_WIDTH_AVX512_FAMILY = 26


@functools.cache
def cpu_bf16_pays() -> bool:
    """Tell whether bf16 autocast pays on this CPU: always with AMX, never where oneDNN would emulate it, and with
    AVX-512 BF16 alone on AMD CPUs from Zen 5 on (`AMD_FULL_WIDTH_AVX512_FAMILY`).

    Such CPUs differ: on a Zen 5 EPYC bf16 ran the hippocampus U-Net 2.4x faster than float32 (one 40x56x40 tile:
    0.108 s -> 0.045 s); on an earlier AVX-512 BF16 EPYC it ran slower (182 ms -> 243 ms), oneDNN's layout reorders
    eating the gain. The choice rests on what the CPU is, never on a timing, so that one command gives the same
    result on one machine however busy it is (a 30 ms timing had picked either precision from run to run).
    """
    if cpu_emulation_message(torch.bfloat16):
        return False
    if cpu_has_amx():
        return True
    vendor, family = cpu_vendor_and_family(_cpu_description())
    return vendor == "AuthenticAMD" and family is not None and family >= AMD_FULL_WIDTH_AVX512_FAMILY


def cpu_vendor_and_family(description: str) -> tuple[str | None, int | None]:
    """The vendor (``AuthenticAMD``, ``GenuineIntel``) and family number that a CPU ``description`` names: Linux's
    ``/proc/cpuinfo`` or Windows' ``platform.processor()`` (``AMD64 Family 26 Model 2 Stepping 0, AuthenticAMD``);
    None for what it does not say."""
    vendor = re.search(r"AuthenticAMD|GenuineIntel", description)
    family = re.search(r"(?:cpu family\s*:|Family)\s*(\d+)", description)
    return (vendor.group() if vendor else None), (int(family.group(1)) if family else None)


def _cpu_description() -> str:
    try:
        return Path("/proc/cpuinfo").read_text(errors="replace")[:4096]  # the first processor's lines
    except OSError:
        return platform.processor()


_ONEDNN_CHECKS = {torch.bfloat16: "_is_mkldnn_bf16_supported", torch.float16: "_is_mkldnn_fp16_supported"}


@functools.cache
def cpu_emulation_message(dtype: torch.dtype) -> str | None:
    """Why convolutions in ``dtype`` (bfloat16 or float16) should not run on this CPU, or None where oneDNN has
    kernels for them (AVX-512, AMX).

    Elsewhere PyTorch falls back to a reference kernel: a 32-channel 3x3x3 convolution on a 40x56x40 map took
    6.6-8.5 s in bf16 or fp16 against 77-92 ms in float32 on an AVX2 CPU, and one hippocampus case 6 minutes.
    """
    check = getattr(torch.ops.mkldnn, _ONEDNN_CHECKS[dtype], None)
    if check is not None and check():
        return None
    name = "bf16" if dtype is torch.bfloat16 else "fp16"
    return (f"this CPU has no {name} convolution kernels (they need AVX-512) and would emulate them about 90x "
            f"slower than fp32; use precision fp32 or auto")


def autocast_dtype(precision: str, device: torch.device, *, cuda_auto: torch.dtype) -> torch.dtype | None:
    """The autocast dtype that ``precision`` (``auto``, ``fp32``, ``bf16``, ``fp16``) means on ``device``; None: fp32.

    ``auto`` is ``cuda_auto`` on CUDA, bf16 on CPUs where it pays (`cpu_bf16_pays`) and fp32 elsewhere. bf16 or fp16
    on a CPU that would emulate them raise `PrecisionError` (`cpu_emulation_message`).
    """
    if precision == "fp32":
        return None
    if precision in ("bf16", "fp16"):
        dtype = torch.bfloat16 if precision == "bf16" else torch.float16
        if device.type == "cpu" and (problem := cpu_emulation_message(dtype)):
            raise PrecisionError(problem)
        return dtype
    if precision != "auto":
        raise PrecisionError(f"unknown precision {precision!r}; valid: auto, fp32, bf16, fp16")
    if device.type == "cuda":
        return cuda_auto
    return torch.bfloat16 if device.type == "cpu" and cpu_bf16_pays() else None


@contextlib.contextmanager
def cudnn_autotuning(device: torch.device) -> Iterator[None]:
    """Let cuDNN time its convolution algorithms for each new input shape inside the block on a CUDA ``device``, as
    nnU-Net does to train and predict; the previous setting comes back afterwards (elsewhere: nothing changes).

    Every tile, and every training batch, of a model has one shape, so the first one's search serves all later ones.
    """
    if device.type != "cuda":
        yield
        return
    previous = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = True
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark = previous
