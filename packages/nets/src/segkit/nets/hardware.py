"""What the CPU offers for low-precision convolutions, and what each precision name means on a device."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator

import torch

from segkit.nets.errors import PrecisionError


@functools.cache
def cpu_has_amx() -> bool:
    """Tell whether the CPU has AMX tiles, where oneDNN runs bfloat16 convolutions 2-3x faster than float32.

    CPUs with AVX-512 BF16 but no AMX gained nothing from bfloat16 for nnU-Net's U-Nets (oneDNN's layout
    reorders ate the gain), and CPUs without either emulate it many times slower.
    """
    check = getattr(torch.cpu, "_is_amx_tile_supported", None)
    return bool(check()) if check is not None else False


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

    ``auto`` is ``cuda_auto`` on CUDA, bf16 on CPUs with AMX (`cpu_has_amx`) and fp32 elsewhere. bf16 or fp16 on a
    CPU that would emulate them raise `PrecisionError` (`cpu_emulation_message`).
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
    return torch.bfloat16 if device.type == "cpu" and cpu_has_amx() else None


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
