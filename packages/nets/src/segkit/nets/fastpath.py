"""Faster exact replacements for layers that PyTorch runs poorly on CPU.

- `PointwiseConv`: a 1x1(x1) conv (the segmentation heads) as one GEMM per sample, W (out, in) @ x (in, voxels).
- `ShuffleUpsample`: a transposed conv whose kernel equals its stride (the decoder's upsamplers) as one
  GEMM per sample, W^T (out * prod(stride), in) @ x (in, voxels), then a pixel shuffle that places each
  voxel's (s0, s1, s2) block, with the bias added in the same pass.
- `OneDnnConv`: a kxk conv that always runs oneDNN's kernel on CPU float32. At batch 1 PyTorch sends
  convolutions with few channels x rows (the input conv, the lowest stages) to its native kernel instead,
  which was 1.5-2.2x slower for the hippocampus U-Net's (AMD EPYC, 2 threads; 2-6% of a forward).
- `InstanceNormInPlace`: an affine instance norm that normalizes inference inputs in place. PyTorch's writes a
  new tensor beside its input (a second 147 MB map at the full resolution of a CT tile), and copies
  channels-last maps to and from its own layout.

`ShuffleUpsample` and `InstanceNormInPlace` keep channels-last inputs channels-last, so a network converted to that
layout (CPU inference, where oneDNN's convolutions want it) runs without layout copies between its convolutions;
`PointwiseConv`, the heads, reads channels-last features and gives logits in the usual layout.

All compute the same sums as the layers they replace (only the summation order differs) and follow CPU
autocast: under ``torch.autocast("cpu", dtype=torch.bfloat16)`` they compute in bfloat16 as the conv would.
"""

from __future__ import annotations

import math

import torch
from torch import nn

#: voxels per block when channels-last statistics are summed (32 float32 channels: 4 MB)
MOMENT_BLOCK_ROWS = 2**15
#: values per slab of `ShuffleUpsample.write_into`'s matrix product (16 MB in float32)
UPSAMPLE_SLAB_VALUES = 2**22


def compute_dtype(x: torch.Tensor) -> torch.dtype:
    """The dtype a layer computes ``x`` in: CPU autocast's dtype where it is on, else ``x``'s own."""
    if x.device.type == "cpu" and torch.is_autocast_enabled("cpu"):
        return torch.get_autocast_dtype("cpu")
    return x.dtype


class PointwiseConv(nn.Module):
    """A 1x1(x1) conv with bias, computed as a matrix product per sample."""

    def __init__(self, conv: nn.Module):
        super().__init__()
        self.weight = nn.Parameter(conv.weight.detach().reshape(conv.out_channels, conv.in_channels).clone(),
                                   requires_grad=False)
        bias = conv.bias.detach() if conv.bias is not None else torch.zeros(conv.out_channels)
        self.bias = nn.Parameter(bias.clone().reshape(-1, 1), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return pointwise(x, self.weight, self.bias)


def channel_rows(x: torch.Tensor) -> torch.Tensor | None:
    """The ``(n, voxels, channels)`` view of ``x`` when its channels are its innermost axis (channels-last),
    else None."""
    moved = x.movedim(1, -1)
    return moved.view(x.shape[0], -1, x.shape[1]) if moved.is_contiguous() else None


def pointwise(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """A 1x1(x1) conv as one matrix product per sample: ``weight`` (out, in), ``bias`` (out, 1).

    The result is in the usual layout whatever the layout of ``x``: a channels-last ``x`` is read as the transpose
    of its rows, without a layout copy. The heads end the network, and putting their many classes back in the
    usual layout afterwards was slow (0.35 s for 32 channels of a 128x112x80 CT tile).
    """
    dtype = compute_dtype(x)
    n, c, *spatial = x.shape
    weight, bias = weight.to(dtype), bias.to(dtype)
    rows = channel_rows(x)
    columns = rows.to(dtype).transpose(1, 2) if rows is not None else x.to(dtype).reshape(n, c, -1)
    out = torch.empty((n, weight.shape[0], columns.shape[2]), dtype=dtype, device=x.device)
    for i in range(n):
        torch.addmm(bias, weight, columns[i], out=out[i])
    return out.reshape(n, weight.shape[0], *spatial)


class ShuffleUpsample(nn.Module):
    """A transposed conv with kernel == stride and no padding, as a matrix product and a pixel shuffle."""

    def __init__(self, conv_t: nn.Module):
        super().__init__()
        self.stride = tuple(conv_t.stride)
        self.out_channels = conv_t.out_channels
        in_ch = conv_t.in_channels
        # (in, out, *k) -> (out * prod(k), in): row index = out-channel major, then kernel offsets
        w = conv_t.weight.detach().reshape(in_ch, -1).t().contiguous()
        self.weight = nn.Parameter(w, requires_grad=False)
        bias = conv_t.bias.detach() if conv_t.bias is not None else torch.zeros(self.out_channels)
        dims = len(self.stride)
        self.bias = nn.Parameter(bias.clone().reshape(1, -1, *([1] * (2 * dims))), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dtype = compute_dtype(x)
        n, _, *spatial = x.shape
        rows = channel_rows(x)
        upsampled = [v * s for v, s in zip(spatial, self.stride, strict=True)]
        y = _add_contiguous(self._blocks(x, rows, dtype, 0, spatial[0]), self._bias(dtype, rows is not None))
        if rows is not None:  # channels-last in, channels-last out
            return y.view(n, *upsampled, self.out_channels).movedim(-1, 1)
        return y.view(n, self.out_channels, *upsampled)

    def write_into(self, x: torch.Tensor, out: torch.Tensor) -> None:
        """Write ``forward(x)`` into ``out``, which may be a view (the first channels of a concatenation) in either
        layout; the matrix product runs a slab of ``x``'s first spatial axis at a time, so it stays small."""
        dtype = compute_dtype(x)
        n, _, *spatial = x.shape
        o, stride = self.out_channels, self.stride
        rows = channel_rows(x)
        bias = self._bias(dtype, rows is not None)
        step = max(1, UPSAMPLE_SLAB_VALUES // (math.prod(spatial[1:]) * self.weight.shape[0]))
        for first in range(0, spatial[0], step):
            count = min(step, spatial[0] - first)
            target = out[:, :, first * stride[0]:(first + count) * stride[0]]
            blocks = [v for size, s in zip((count, *spatial[1:]), stride, strict=True) for v in (size, s)]
            target = target.movedim(1, -1).view(n, *blocks, o) if rows is not None else target.view(n, o, *blocks)
            torch.add(self._blocks(x, rows, dtype, first, count), bias, out=target)

    def _blocks(self, x: torch.Tensor, rows: torch.Tensor | None, dtype: torch.dtype, first: int,
                count: int) -> torch.Tensor:
        """The upsampled values of ``count`` slices of ``x``'s first spatial axis from ``first``, without the bias,
        each voxel's block in place: (n, x0, s0, x1, s1, ..., o) from channels-last ``rows``, else (n, o, x0, s0,
        ...)."""
        n, c, *spatial = x.shape
        part, plane = (count, *spatial[1:]), math.prod(spatial[1:])
        voxels = slice(first * plane, (first + count) * plane)
        weight = self.weight.to(dtype)
        if rows is not None:
            y = torch.matmul(rows[:, voxels].to(dtype), weight.t()).view(n, *part, self.out_channels, *self.stride)
        else:
            y = torch.matmul(weight, x.reshape(n, c, -1)[:, :, voxels].to(dtype)).view(
                n, self.out_channels, *self.stride, *part)
        return y.permute(_shuffle_order(len(spatial), rows is not None))

    def _bias(self, dtype: torch.dtype, channels_last: bool) -> torch.Tensor:
        """The bias, shaped to add to `_blocks`' values."""
        bias = self.bias.to(dtype)
        return bias.view(-1) if channels_last else bias


def _shuffle_order(dims: int, channels_last: bool) -> list[int]:
    """The permutation that puts each voxel's block of upsampled values in place: (n, x0..xd, o, s0..sd) ->
    (n, x0, s0, x1, s1, ..., o) for channels-last rows, (n, o, s0..sd, x0..xd) -> (n, o, x0, s0, x1, s1, ...)
    otherwise."""
    if channels_last:
        return [0] + [a for d in range(dims) for a in (1 + d, 2 + dims + d)] + [1 + dims]
    return [0, 1] + [a for d in range(dims) for a in (2 + dims + d, 2 + d)]


def _add_contiguous(values: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """``values + bias`` written in one pass into a new tensor contiguous in ``values``' logical order (a plain add
    would keep the strides of a permuted ``values``, and the reshape after it would copy again)."""
    if torch.compiler.is_compiling():  # inductor plans the layout itself (and mis-tracks ``out=`` strides)
        return torch.add(values, bias).contiguous()
    out = torch.empty(values.shape, dtype=values.dtype, device=values.device)
    return torch.add(values, bias, out=out)


def eager_cpu_float32(x: torch.Tensor) -> bool:
    """Tell whether ``x`` is computed on as plain CPU float32: no autocast, not traced by torch.compile (which
    picks its own kernels)."""
    return (x.device.type == "cpu" and x.dtype == torch.float32 and not torch.is_autocast_enabled("cpu")
            and not torch.compiler.is_compiling())


class OneDnnConv(nn.Module):
    """Wraps a conv; where `eager_cpu_float32` holds, it calls oneDNN's convolution directly."""

    def __init__(self, conv: nn.Module):
        super().__init__()
        self.conv = conv

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        conv = self.conv
        if not eager_cpu_float32(x):
            return conv(x)
        return torch.ops.aten.mkldnn_convolution(x, conv.weight, conv.bias, conv.padding, conv.stride, conv.dilation,
                                                 conv.groups)


class InstanceNormInPlace(nn.Module):
    """Wraps an affine instance norm; at inference it overwrites its input with the normalized values.

    Float32 maps: two sums for the statistics and one fused multiply-add (3x faster than PyTorch's norm on a
    32 x 128x112x80 map); channels-last ones take their statistics from the channel columns, a block of rows at a
    time. One channels-last bf16 sample (bf16 inference on AMX CPUs) goes to the wrapped norm, which for segkit's
    `layers.InstanceNorm3d` is batch norm's kernel (the same statistics, float32 arithmetic, one rounding; not in
    place). That made the hippocampus U-Net's bf16 forward about 10% faster and closer to float32 than normalizing
    in place in bf16. Several channels-last bf16 samples get float32 column statistics, then scale and shift in
    place in bf16. Other inputs (bf16 in the usual layout), inputs that autograd tracks, and torch.compile go
    through the wrapped norm.
    """

    def __init__(self, norm: nn.Module):
        super().__init__()
        self.norm = norm

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        norm = self.norm
        if (x.requires_grad and torch.is_grad_enabled()) or torch.compiler.is_compiling():
            return norm(x)
        rows = channel_rows(x)
        if rows is not None and x.shape[0] == 1 and x.dtype != torch.float32:
            return norm(x)  # segkit's instance norm: batch norm's kernel, layout kept, one rounding
        if rows is not None:  # channels-last, any dtype: statistics of the channel columns in float32
            mean, var = (v.view(x.shape[0], -1, *(1,) * (x.ndim - 2)) for v in _column_moments(rows))
        elif x.dtype == torch.float32:
            mean, var = _moments(x, tuple(range(2, x.ndim)))
        else:
            return norm(x)
        channels = (1, -1) + (1,) * (x.ndim - 2)
        scale = torch.rsqrt(var.add_(norm.eps)).mul_(norm.weight.view(channels))
        shift = norm.bias.view(channels) - mean * scale
        return torch.addcmul(shift.to(x.dtype), x, scale.to(x.dtype), out=x)


def _moments(values: torch.Tensor, dims: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and (biased) variance of float32 ``values`` over ``dims`` (kept), from the sums of values and squares.

    PyTorch's one-pass ``var_mean`` took 100 ms on a 32 x 128x112x80 map, these two sums 13 ms.
    """
    count = math.prod(values.shape[d] for d in dims)
    mean = values.mean(dims, keepdim=True)
    squares = torch.linalg.vector_norm(values, dim=dims, keepdim=True).square_().div_(count)
    return mean, squares.sub_(mean * mean).clamp_min_(0.0)


def _column_moments(rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and (biased) variance of each column of ``rows`` (n, voxels, channels), in float32.

    Sums over the outer axis, a block of rows at a time: the block's float32 squares stay small (a copy of the whole
    map would add a map's size to the peak memory), and ``var_mean`` and ``vector_norm`` reduce over a
    non-innermost axis several times slower.
    """
    n, voxels, channels = rows.shape
    sums = torch.zeros((n, channels), dtype=torch.float32, device=rows.device)
    squares = torch.zeros_like(sums)
    for i in range(n):
        for start in range(0, voxels, MOMENT_BLOCK_ROWS):
            block = rows[i, start:start + MOMENT_BLOCK_ROWS].to(torch.float32)
            sums[i] += block.sum(0)
            squares[i] += block.square().sum(0)
    mean = sums.div_(voxels)
    return mean, squares.div_(voxels).sub_(mean * mean).clamp_min_(0.0)


def is_affine_instance_norm(norm: nn.Module) -> bool:
    """Tell whether `InstanceNormInPlace` can take a norm: an instance norm with weight and bias, no running stats."""
    return (isinstance(norm, nn.modules.instancenorm._InstanceNorm) and norm.affine
            and not norm.track_running_stats)


def runs_on_onednn(conv: nn.Module) -> bool:
    """Tell whether `OneDnnConv` can take a conv: a plain 2D/3D conv with zero padding given as numbers."""
    return (type(conv) in (nn.Conv2d, nn.Conv3d) and conv.padding_mode == "zeros"
            and not isinstance(conv.padding, str) and torch.backends.mkldnn.is_available())


def is_pointwise(conv: nn.Module) -> bool:
    """Tell whether a conv is 1x1(x1), stride 1, ungrouped, undilated, unpadded."""
    return (math.prod(conv.kernel_size) == 1 and all(s == 1 for s in conv.stride) and conv.groups == 1
            and all(p == 0 for p in conv.padding))


def is_shuffle_upsample(conv_t: nn.Module) -> bool:
    """Tell whether a transposed conv has kernel == stride, no padding, no groups, no dilation."""
    return (tuple(conv_t.kernel_size) == tuple(conv_t.stride) and all(p == 0 for p in conv_t.padding)
            and all(p == 0 for p in conv_t.output_padding) and conv_t.groups == 1
            and all(d == 1 for d in conv_t.dilation))
