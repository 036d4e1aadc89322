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
