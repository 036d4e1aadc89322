"""Conv blocks of the U-Nets: plain conv-norm-nonlin, ResNet-D basic block, re-parameterizable block.

Each block reports `feature_map_size(input_size)`: the number of values its convs write for one sample of
spatial size `input_size` (channels x voxels, summed over its convs), the quantity nnU-Net's planner
uses to estimate activation memory.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from segkit.nets import layers
from segkit.nets.layers import LayerOptions


def strided_size(input_size: tuple[int, ...], stride: tuple[int, ...]) -> tuple[int, ...]:
    """Return the spatial size after a 'same'-padded conv of stride `stride` (floor division, as nnU-Net)."""
    return tuple(i // s for i, s in zip(input_size, stride, strict=True))


def _as_tuple(value: tuple[int, ...] | int, dims: int) -> tuple[int, ...]:
    return (value,) * dims if isinstance(value, int) else tuple(value)


class ConvNormAct(nn.Module):
    """conv -> norm -> nonlinearity (nonlinearity optional): nnU-Net's ConvDropoutNormReLU without dropout."""

    def __init__(self, in_channels: int, out_channels: int, opts: LayerOptions, *, kernel: tuple[int, ...],
                 stride: tuple[int, ...] | int = 1, act: bool = True, bias: bool | None = None):
        super().__init__()
        self.stride = _as_tuple(stride, opts.dims)
        self.out_channels = out_channels
        self.conv = layers.conv(opts, in_channels, out_channels, kernel=kernel, stride=self.stride, bias=bias)
        self.norm = layers.norm(opts, out_channels)
        self.act = layers.nonlin(opts) if act else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.norm(self.conv(x)))

    def feature_map_size(self, input_size: tuple[int, ...]) -> int:
        """Return channels x voxels of the output for spatial input size `input_size`."""
        return self.out_channels * math.prod(strided_size(input_size, self.stride))


class ResidualBlock(nn.Module):
    """ResNet-D basic block: act(conv2(conv1(x)) + skip(x)), skip = avgpool(stride) then 1x1 conv + norm.

    The pool is present only when strided, the 1x1 projection (no bias) only when the width changes.
    """

    def __init__(self, in_channels: int, out_channels: int, opts: LayerOptions, *, kernel: tuple[int, ...],
                 stride: tuple[int, ...] | int = 1):
        super().__init__()
        self.stride = _as_tuple(stride, opts.dims)
        self.out_channels = out_channels
        self.conv1 = ConvNormAct(in_channels, out_channels, opts, kernel=kernel, stride=self.stride)
        self.conv2 = ConvNormAct(out_channels, out_channels, opts, kernel=kernel, act=False)
        strided = any(s != 1 for s in self.stride)
        self.skip_pool = layers.avg_pool(opts, self.stride) if strided else nn.Identity()
        self.skip_proj = (ConvNormAct(in_channels, out_channels, opts, kernel=(1,) * opts.dims, act=False,
                                      bias=False) if in_channels != out_channels else nn.Identity())
        self.act = layers.nonlin(opts)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = self.skip_proj(self.skip_pool(x))
        out = self.conv2(self.conv1(x))
        out += residual
        return self.act(out)

    def feature_map_size(self, input_size: tuple[int, ...]) -> int:
        """Return channels x voxels written by conv1, conv2 and the skip projection or pool."""
        out = self.out_channels * math.prod(strided_size(input_size, self.stride))
        has_skip = not isinstance(self.skip_proj, nn.Identity) or not isinstance(self.skip_pool, nn.Identity)
        return out * (3 if has_skip else 2)


class RepBlock(nn.Module):
    """RepVGG-style block: act(BN(kxk conv) + BN(1x1 conv) + BN(identity)), mergeable into one kxk conv.

    The identity branch exists only for unstrided blocks that keep the width. After `merge_branches()`
    the block is act(conv(x)) with one biased kxk conv, numerically the same function in eval mode.
    """

    def __init__(self, in_channels: int, out_channels: int, opts: LayerOptions, *, kernel: tuple[int, ...],
                 stride: tuple[int, ...] | int = 1):
        super().__init__()
        self.stride = _as_tuple(stride, opts.dims)
        self.kernel = tuple(kernel)
        self.out_channels = out_channels
        self.dims = opts.dims
        self.conv_k = layers.conv(opts, in_channels, out_channels, kernel=self.kernel, stride=self.stride, bias=False)
        self.bn_k = layers.batch_norm(opts, out_channels)
        self.conv_1 = layers.conv(opts, in_channels, out_channels, kernel=(1,) * opts.dims, stride=self.stride,
                                  bias=False)
        self.bn_1 = layers.batch_norm(opts, out_channels)
        keeps = in_channels == out_channels and all(s == 1 for s in self.stride)
        self.bn_id = layers.batch_norm(opts, out_channels) if keeps else None
        self.merged: nn.Module | None = None
        self.act = layers.nonlin(opts)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.merged is not None:
            return self.act(self.merged(x))
        out = self.bn_k(self.conv_k(x)) + self.bn_1(self.conv_1(x))
        if self.bn_id is not None:
            out = out + self.bn_id(x)
        return self.act(out)

    def feature_map_size(self, input_size: tuple[int, ...]) -> int:
        """Return channels x voxels of the output (the deployed block writes one map)."""
        return self.out_channels * math.prod(strided_size(input_size, self.stride))

    @torch.no_grad()
    def merge_branches(self) -> None:
        """Fold every branch's batch norm (running statistics) into one biased kxk conv, in place."""
        from segkit.nets.folding import fold_batch_norm

        if self.merged is not None:
            return
        weight, bias = fold_batch_norm(self.conv_k.weight, None, self.bn_k)
        w1, b1 = fold_batch_norm(self.conv_1.weight, None, self.bn_1)
        center = tuple(k // 2 for k in self.kernel)
        index = (slice(None), slice(None)) + center
        weight[index] += w1.reshape(w1.shape[:2])
        bias += b1
        if self.bn_id is not None:
            eye = torch.zeros_like(weight)
            channels = torch.arange(weight.shape[0])
            eye[(channels, channels) + center] = 1.0
            w_id, b_id = fold_batch_norm(eye, None, self.bn_id)
            weight += w_id
            bias += b_id
        merged = layers._CONV[self.dims](weight.shape[1], weight.shape[0], self.kernel, self.stride,
                                         padding=tuple((k - 1) // 2 for k in self.kernel), bias=True)
        merged.weight.copy_(weight)
        merged.bias.copy_(bias)
        self.merged = merged.to(self.conv_k.weight.device)
        del self.conv_k, self.bn_k, self.conv_1, self.bn_1, self.bn_id
        self.bn_id = None
