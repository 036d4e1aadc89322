"""Exact folding of an eval-mode batch norm into the conv before it."""

from __future__ import annotations

import torch
from torch import nn


@torch.no_grad()
def fold_batch_norm(weight: torch.Tensor, bias: torch.Tensor | None,
                    bn: nn.modules.batchnorm._BatchNorm) -> tuple[torch.Tensor, torch.Tensor]:
    """Return (W', b') with W' = W * g / s and b' = beta + (b - mu) * g / s, s = sqrt(var + eps).

    Args:
        weight: conv weight (out, in, *kernel).
        bias: conv bias (out,) or None (taken as zero).
        bn: the batch norm that follows the conv; its running statistics are used (eval semantics).

    Returns:
        New float tensors (weight, bias) computed in float64 and cast back to the weight's dtype.
    """
    dtype = weight.dtype
    scale = bn.weight.double() / torch.sqrt(bn.running_var.double() + bn.eps)
    b = torch.zeros_like(bn.running_mean, dtype=torch.float64) if bias is None else bias.double()
    new_weight = weight.double() * scale.reshape(-1, *([1] * (weight.dim() - 1)))
    new_bias = bn.bias.double() + (b - bn.running_mean.double()) * scale
    return new_weight.to(dtype), new_bias.to(dtype)
