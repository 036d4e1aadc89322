"""Dimension-agnostic layer lookups and the layer options shared by all blocks of one network."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from segkit.nets.spec import ArchitectureSpec, Nonlin, Norm

_CONV = {2: nn.Conv2d, 3: nn.Conv3d}
_CONV_TRANSPOSE = {2: nn.ConvTranspose2d, 3: nn.ConvTranspose3d}
_AVG_POOL = {2: nn.AvgPool2d, 3: nn.AvgPool3d}
_BATCH_NORM = {2: nn.BatchNorm2d, 3: nn.BatchNorm3d}


class _OneSampleAsBatchNorm:
    """Instance norm whose single-sample inputs go through batch norm's kernel (training-mode statistics).

    For one sample both norms compute the same statistics, but PyTorch's instance norm copies a channels-last
    map to its own layout and back, while batch norm keeps it. Training in bf16 on CPUs with AMX runs
    channels-last, one sample per pass (`segkit.train.precision.memory_format`).
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[0] == 1 and x.dim() == self._get_no_batch_dim() + 1 and not self.track_running_stats:
            return F.batch_norm(x, None, None, self.weight, self.bias, training=True, eps=self.eps)
        return super().forward(x)


class InstanceNorm2d(_OneSampleAsBatchNorm, nn.InstanceNorm2d):
    """`nn.InstanceNorm2d`; one sample at a time keeps a channels-last map's layout."""


class InstanceNorm3d(_OneSampleAsBatchNorm, nn.InstanceNorm3d):
    """`nn.InstanceNorm3d`; one sample at a time keeps a channels-last map's layout."""


_INSTANCE_NORM = {2: InstanceNorm2d, 3: InstanceNorm3d}


@dataclass(frozen=True)
class LayerOptions:
    """What every conv block of one network shares: dimensionality, norm, nonlinearity, conv bias."""

    dims: int
    norm: Norm
    nonlin: Nonlin
    conv_bias: bool
    negative_slope: float = 0.01
    norm_eps: float = 1e-5
    group_norm_groups: int = 8

    @classmethod
    def from_spec(cls, spec: ArchitectureSpec) -> LayerOptions:
        """Take the layer options out of an architecture spec."""
        return cls(dims=spec.dims, norm=spec.norm, nonlin=spec.nonlin, conv_bias=spec.conv_bias,
                   negative_slope=spec.negative_slope, norm_eps=spec.norm_eps,
                   group_norm_groups=spec.group_norm_groups)


def conv(opts: LayerOptions, in_channels: int, out_channels: int, *, kernel: tuple[int, ...],
         stride: tuple[int, ...] | int = 1, bias: bool | None = None) -> nn.Module:
    """Return a 'same'-padded conv (padding (k - 1) // 2 per axis), bias from `opts` unless given."""
    padding = tuple((k - 1) // 2 for k in kernel)
    use_bias = opts.conv_bias if bias is None else bias
    return _CONV[opts.dims](in_channels, out_channels, tuple(kernel), stride, padding=padding, bias=use_bias)


def conv_transpose(opts: LayerOptions, in_channels: int, out_channels: int, *, stride: tuple[int, ...]) -> nn.Module:
    """Return a transposed conv with kernel = stride (upsampling by `stride`)."""
    return _CONV_TRANSPOSE[opts.dims](in_channels, out_channels, tuple(stride), tuple(stride), bias=opts.conv_bias)


def avg_pool(opts: LayerOptions, stride: tuple[int, ...]) -> nn.Module:
    """Return an average pooling with kernel = stride."""
    return _AVG_POOL[opts.dims](tuple(stride), tuple(stride))


def norm(opts: LayerOptions, channels: int) -> nn.Module:
    """Return the affine norm layer chosen in `opts` for `channels` channels."""
    if opts.norm is Norm.BATCH:
        return _BATCH_NORM[opts.dims](channels, eps=opts.norm_eps)
    if opts.norm is Norm.GROUP:
        return nn.GroupNorm(opts.group_norm_groups, channels, eps=opts.norm_eps)
    return _INSTANCE_NORM[opts.dims](channels, eps=opts.norm_eps, affine=True)


def batch_norm(opts: LayerOptions, channels: int) -> nn.Module:
    """Return a batch norm (used by the re-parameterizable block whatever `opts.norm` says)."""
    return _BATCH_NORM[opts.dims](channels, eps=opts.norm_eps)


def nonlin(opts: LayerOptions) -> nn.Module:
    """Return the in-place nonlinearity chosen in `opts`."""
    if opts.nonlin is Nonlin.RELU:
        return nn.ReLU(inplace=True)
    return nn.LeakyReLU(opts.negative_slope, inplace=True)


def is_conv(module: nn.Module) -> bool:
    """Tell whether `module` is a (non-transposed) 2D or 3D conv."""
    return isinstance(module, (nn.Conv2d, nn.Conv3d))
