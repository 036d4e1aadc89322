"""What the CPU offers for low-precision convolutions, and what each precision name means on a device."""

from __future__ import annotations

import contextlib
import functools
import math
import time
from collections.abc import Iterator

import torch

from segkit.nets.errors import PrecisionError


@functools.cache
def cpu_has_amx() -> bool:
    """Tell whether the CPU has AMX tiles, where oneDNN runs bfloat16 convolutions 2-3x faster than float32."""
    check = getattr(torch.cpu, "_is_amx_tile_supported", None)
    return bool(check()) if check is not None else False


#: how much faster than float32 a bf16 convolution must run for ``auto`` to choose bf16 on a CPU without AMX
BF16_MIN_SPEEDUP = 1.3


@functools.cache
def cpu_bf16_pays() -> bool:
    """Tell whether bf16 autocast pays on this CPU: always with AMX, never where oneDNN would emulate it, and on
    AVX-512 BF16 CPUs without AMX where a measured convolution (`bf16_conv_speedup`) runs at least
    `BF16_MIN_SPEEDUP` times faster than in float32.

    That measurement is needed because such CPUs differ: on an AMD EPYC of family 26 (Zen 5) bf16 ran the
    hippocampus U-Net 2.4x faster than float32 (one 40x56x40 tile: 0.108 s -> 0.045 s); on an earlier AVX-512 BF16
    host it ran slower (182 ms -> 243 ms), oneDNN's layout reorders eating the gain.
    """
    if cpu_emulation_message(torch.bfloat16):
        return False
    return cpu_has_amx() or bf16_conv_speedup() >= BF16_MIN_SPEEDUP


def bf16_conv_speedup(rounds: int = 3) -> float:
    """float32 time / bf16 autocast time of one 32-channel 3x3x3 convolution on a 16^3 channels-last map (the
    layout segkit predicts and trains in on the CPU), best of ``rounds`` after a warm-up; about 30 ms in all. Its
    random numbers come from a generator of its own: a seeded training run draws the same ones with or without it."""
    generator = torch.Generator().manual_seed(0)
    weight, x = (torch.randn(shape, generator=generator).contiguous(memory_format=torch.channels_last_3d)
                 for shape in ((32, 32, 3, 3, 3), (1, 32, 16, 16, 16)))

    def seconds(bf16: bool) -> float:
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            start = time.perf_counter()
            torch.nn.functional.conv3d(x, weight, padding=1)
            return time.perf_counter() - start

    seconds(False), seconds(True)
    best = {False: math.inf, True: math.inf}
    for _ in range(rounds):
        for bf16 in best:
            best[bf16] = min(best[bf16], seconds(bf16))
    return best[False] / best[True]


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
