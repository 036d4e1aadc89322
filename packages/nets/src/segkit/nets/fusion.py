"""Fusion for inference: `fuse(model)` returns an equivalent, faster eval-mode copy.

What it does, all exact up to float rounding:

- folds every batch norm into the conv before it (W' = W * g / s, b' = beta + (b - mu) * g / s with
  s = sqrt(running_var + eps)), for plain blocks, residual blocks and their 1x1 skip projections;
- merges each re-parameterizable block's kxk, 1x1 and identity branches into one biased kxk conv;
- drops the deep-supervision heads and switches deep supervision off (single full-resolution output);
- switches to eval mode;
- with ``fast_layers`` (default), replaces the 1x1 heads and the kernel == stride transposed convs by
  GEMM-based equivalents (`segkit.nets.fastpath`), which oneDNN runs 2x slower as convs on CPU, and has
  every other conv run oneDNN's kernel on CPU float32 whatever the batch size, and every affine instance
  norm normalize in place (float32 maps, and channels-last maps of any dtype).

Instance norm cannot be folded: its mean and variance are computed from each input (and so does group norm,
for the same reason). A model with instance norm therefore gains from fusing the dropped heads, the fast layers
and the in-place norm; its larger speed-ups come from the dtype (bf16 autocast) chosen at inference.
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from segkit.nets import layers
from segkit.nets.blocks import ConvNormAct, RepBlock
from segkit.nets.fastpath import (
    InstanceNormInPlace,
    OneDnnConv,
    PointwiseConv,
    ShuffleUpsample,
    is_affine_instance_norm,
    is_pointwise,
    is_shuffle_upsample,
    runs_on_onednn,
)
from segkit.nets.folding import fold_batch_norm
from segkit.nets.unet import UNet


@torch.no_grad()
def _fold_conv_norm(block: ConvNormAct) -> None:
    conv = block.conv
    weight, bias = fold_batch_norm(conv.weight, conv.bias, block.norm)
    new = type(conv)(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, padding=conv.padding,
                     bias=True).to(device=weight.device, dtype=weight.dtype)
    new.weight.copy_(weight)
    new.bias.copy_(bias)
    block.conv = new
    block.norm = nn.Identity()


def _use_fast_layers(model: UNet) -> None:
    decoder = model.decoder
    decoder.heads = nn.ModuleList(PointwiseConv(h) if is_pointwise(h) else h for h in decoder.heads)
    decoder.upsamplers = nn.ModuleList(ShuffleUpsample(u) if is_shuffle_upsample(u) else u
                                       for u in decoder.upsamplers)
    for block in list(model.modules()):  # a list: the loop replaces modules
        if not isinstance(block, ConvNormAct):
            continue
        if runs_on_onednn(block.conv):
            block.conv = OneDnnConv(block.conv)
        if is_affine_instance_norm(block.norm):
            block.norm = InstanceNormInPlace(block.norm)


def fuse(model: nn.Module, *, fast_layers: bool = True, in_place: bool = False) -> nn.Module:
    """Return a fused eval-mode copy of `model` (the argument is left untouched, unless ``in_place``).

    Args:
        model: a network from `build_network` (other modules get the folding of their segkit blocks, and
            their ``deep_supervision`` switched off if they have one).
        fast_layers: replace heads and upsamplers by their GEMM equivalents (UNet only).
        in_place: fuse ``model`` itself, for a caller that owns it (no copy: 0.17 s less for TotalSegmentator's
            3 mm CT U-Net).

    Returns:
        The fused copy, in eval mode, returning a single tensor; its ``deep_supervision`` cannot be turned
        back on because the low-resolution heads are gone.
    """
    fused = (model if in_place else copy.deepcopy(model)).eval()
    for module in list(fused.modules()):
        if isinstance(module, ConvNormAct) and isinstance(module.norm, _BatchNorm) and layers.is_conv(module.conv):
            _fold_conv_norm(module)
        elif isinstance(module, RepBlock):
            module.merge_branches()
    if isinstance(fused, UNet):
        fused.deep_supervision = False
        fused.decoder.heads = nn.ModuleList([fused.decoder.heads[-1]])
        if fast_layers:
            _use_fast_layers(fused)
    elif hasattr(fused, "deep_supervision"):
        fused.deep_supervision = False
    fused.is_fused = True
    return fused
