"""Optional torch.compile for inference (inductor with weight freezing), measured in benchmarks/bench_nets.py."""

from __future__ import annotations

import torch
from torch import nn


def compile_for_inference(model: nn.Module) -> nn.Module:
    """Return ``torch.compile(model)`` with inductor's freezing (constant-folded, pre-packed conv weights).

    The options apply to this compilation only (no global inductor config is changed). The first call
    compiles for that input shape (tens of seconds on 2 CPU cores; needs a C++ compiler), later calls
    with the same shape reuse it, so it pays off only when many tiles of one size follow. Call it on a
    fused eval-mode model and run it under ``torch.no_grad()`` (freezing requires it).
    """
    return torch.compile(model.eval(), dynamic=False, options={"freezing": True})
