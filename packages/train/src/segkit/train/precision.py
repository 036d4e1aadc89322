"""Autocast settings per device: bf16 where the hardware has it, fp16 + gradient scaling on older GPUs."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch

from segkit.train.config import Precision


def cpu_has_bf16() -> bool:
    """Whether this CPU runs bf16 matrix math natively (AVX-512 BF16 / AMX)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


@dataclass(frozen=True)
class Autocast:
    """The autocast dtype for a device (None = full fp32) and whether gradients need scaling."""

    device_type: str
    dtype: torch.dtype | None

    @classmethod
    def choose(cls, precision: Precision, device: torch.device) -> Autocast:
        """Resolve `precision` for `device` (``auto``: bf16 if supported, else fp16 on CUDA, fp32 on CPU)."""
        if precision is Precision.FP32:
            return cls(device.type, None)
        if precision is Precision.BF16:
            return cls(device.type, torch.bfloat16)
        if precision is Precision.FP16:
            return cls(device.type, torch.float16)
        if device.type == "cuda":
            return cls("cuda", torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16)
        return cls(device.type, torch.bfloat16 if cpu_has_bf16() else None)

    @property
    def needs_scaler(self) -> bool:
        """fp16 on CUDA needs a GradScaler."""
        return self.dtype is torch.float16 and self.device_type == "cuda"

    def context(self) -> contextlib.AbstractContextManager:
        """The autocast context (a no-op for fp32)."""
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=self.dtype)
