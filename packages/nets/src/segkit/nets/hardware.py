"""What the CPU offers for low-precision convolutions."""

from __future__ import annotations

import functools

import torch


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
