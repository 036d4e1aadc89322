"""Autocast settings per device: bf16 or fp16 (+ gradient scaling) on CUDA, bf16 on CPUs where it pays, else fp32.

Where bf16 pays (`segkit.nets.cpu_bf16_pays`: AMX, or AVX-512 BF16 on an AMD Zen 5 or later) a bf16-autocast training
step of the hippocampus U-Net took 0.81 s against 1.43 s in fp32 (batch 8, AMX). On an AVX-512 BF16 CPU where it
ran slower than fp32 (7.1 s vs 6.2 s), ``auto`` keeps fp32; ``bf16`` can still be chosen.

3D networks in bf16 on the CPU train channels-last, one sample per forward/backward pass (`memory_format`):
oneDNN's bf16 convolutions work in that layout, and in the usual one PyTorch reorders every activation and
gradient to and from it. The hippocampus U-Net's step (batch 8, AMX CPU, 2 threads) took 0.49 s that way,
against 0.64 s in the usual layout in passes of 2 samples (0.70 s in passes of 1). Channels-last in passes of 2
took 0.66 s, as PyTorch's instance norm then copies layouts itself.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch

from segkit.nets import PrecisionError, autocast_dtype
from segkit.train.config import Precision
from segkit.train.errors import TrainConfigError


@dataclass(frozen=True)
class Autocast:
    """The autocast dtype for a device (None = full fp32) and whether gradients need scaling."""

    device_type: str
    dtype: torch.dtype | None

    @classmethod
    def choose(cls, precision: Precision, device: torch.device) -> Autocast:
        """Resolve `precision` for `device` (``auto``: bf16 if supported, else fp16 on CUDA; bf16 on CPUs where it
        pays). bf16 or fp16 on a CPU that would emulate them raise `TrainConfigError`."""
        cuda_auto = torch.bfloat16 if device.type == "cuda" and torch.cuda.is_bf16_supported() else torch.float16
        try:
            return cls(device.type, autocast_dtype(precision.value, device, cuda_auto=cuda_auto))
        except PrecisionError as err:
            raise TrainConfigError(str(err)) from None

    @property
    def needs_scaler(self) -> bool:
        """fp16 on CUDA needs a GradScaler."""
        return self.dtype is torch.float16 and self.device_type == "cuda"

    def memory_format(self, dims: int) -> torch.memory_format:
        """The layout of a ``dims``-D network's parameters and inputs: channels-last for 3D networks in bf16 on the
        CPU (see the module doc; 2D batches are large and were not measured), else the usual one."""
        if dims == 3 and self.device_type == "cpu" and self.dtype is torch.bfloat16:
            return torch.channels_last_3d
        return torch.contiguous_format

    def context(self) -> contextlib.AbstractContextManager:
        """The autocast context (a no-op for fp32)."""
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=self.dtype)
