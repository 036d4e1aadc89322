"""Faster convolution weight gradients on CPU: computed as one forward convolution.

On an AVX2 CPU (AMD EPYC, 2 threads), oneDNN's backward-weights kernel for the hippocampus U-Net's 3D
convolutions took 1.7x the time of the layer's forward pass at batch 1 (32 channels at 40x56x40), and 5-6x when
another process shared the cores, as the augmentation worker does while training. The gradient
``dW[o, i, k] = sum_n sum_p dY[n, o, p] * X_pad[n, i, stride * p + k]`` is itself a convolution: of the input
with channels and batch swapped (channels become the batch, samples the channels) by the output gradient as a
kernel as large as the image, dilated by the stride. Cutting the first spatial axis into slabs (more kernel
channels, a smaller kernel) makes that forward convolution faster still. It computes the same sums in another
order.

`FastWeightGradConv` stands in for an ``nn.Conv2d``/``nn.Conv3d``, with the same parameters and state-dict keys;
its backward pass picks, per input shape, the fastest of PyTorch's own kernel and the slab convolutions (timed
once per process, like cuDNN's benchmark mode; PyTorch's kernel is kept unless another is 10% faster). It
applies on CPU, in float32, without autocast; elsewhere it is the plain convolution.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from segkit.nets.fastpath import eager_cpu_float32

_CHOICES: dict[tuple, int | None] = {}
"""(input shape, weight shape, stride, padding) -> slab count of the fastest weight gradient (None: PyTorch's)."""


def weight_grad_as_conv(x: torch.Tensor, grad: torch.Tensor, kernel: Sequence[int], stride: Sequence[int],
                        padding: Sequence[int], slabs: int = 1) -> torch.Tensor:
    """Return the weight gradient ``(out, in, *kernel)`` of a convolution (groups 1, no dilation).

    Args:
        x: the convolution's input ``(n, in, *spatial)``.
        grad: the gradient of its output ``(n, out, *out_spatial)``.
        kernel: kernel size per spatial axis.
        stride: stride per spatial axis.
        padding: zero padding per spatial axis.
        slabs: pieces the first output axis is cut into (must divide its length).
    """
    n, c_in = x.shape[:2]
    c_out, length = grad.shape[1], grad.shape[2]
    rest = tuple(grad.shape[3:])
    if length % slabs:
        raise ValueError(f"{slabs} slabs do not divide an output length of {length}")
    padded = F.pad(x, [p for pad in reversed(padding) for p in (pad, pad)])
    step = length // slabs
    span = stride[0] * (step - 1) + kernel[0]
    pieces = padded.unfold(2, span, stride[0] * step)[:, :, :slabs]  # (n, in, slabs, *other axes, span)
    pieces = pieces.movedim(-1, 3).transpose(0, 1).reshape(c_in, n * slabs, span, *padded.shape[3:])
    kernels = grad.reshape(n, c_out, slabs, step, *rest).transpose(0, 1).reshape(c_out, n * slabs, step, *rest)
    out = _conv(x)(pieces, kernels, dilation=tuple(stride)).transpose(0, 1)
    return out[(slice(None), slice(None), *(slice(0, k) for k in kernel))]


def _conv(x: torch.Tensor) -> Callable[..., torch.Tensor]:
    return F.conv3d if x.ndim == 5 else F.conv2d


def _torch_grad(x, grad, weight, stride, padding, *, of_input: bool) -> torch.Tensor:
    """PyTorch's gradient of a convolution (groups 1, no dilation) with respect to its input or its weight."""
    dims = x.ndim - 2
    mask = [of_input, not of_input, False]
    grads = torch.ops.aten.convolution_backward(grad, x, weight, None, list(stride), list(padding), [1] * dims, False,
                                                [0] * dims, 1, mask)
    return grads[0 if of_input else 1]


def _seconds(fn: Callable[[], torch.Tensor], repeats: int = 2) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        fn()
        times.append(time.perf_counter() - began)
    return min(times)


def _fastest_slabs(key: tuple, x, grad, weight, stride, padding) -> int | None:
    if key not in _CHOICES:
        kernel = weight.shape[2:]
        seconds = {None: _seconds(lambda: _torch_grad(x, grad, weight, stride, padding, of_input=False))}
        for slabs in (1, 2):
            if grad.shape[2] % slabs == 0:
                seconds[slabs] = _seconds(lambda s=slabs: weight_grad_as_conv(x, grad, kernel, stride, padding, s))
        best = min(seconds, key=seconds.get)
        _CHOICES[key] = best if seconds[best] < 0.9 * seconds[None] else None
    return _CHOICES[key]


class _ConvFastWeightGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, stride, padding):
        ctx.save_for_backward(x, weight)
        ctx.stride, ctx.padding, ctx.has_bias = stride, padding, bias is not None
        return _conv(x)(x, weight, bias, stride, padding)

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        stride, padding = ctx.stride, ctx.padding
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_x = _torch_grad(x, grad, weight, stride, padding, of_input=True)
        if ctx.needs_input_grad[1]:
            grad = grad.contiguous()
            key = (tuple(x.shape), tuple(weight.shape), stride, padding)
            slabs = _fastest_slabs(key, x, grad, weight, stride, padding)
            grad_w = (_torch_grad(x, grad, weight, stride, padding, of_input=False) if slabs is None
                      else weight_grad_as_conv(x, grad, weight.shape[2:], stride, padding, slabs))
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_b = grad.sum(dim=(0, *range(2, grad.ndim)))
        return grad_x, grad_w, grad_b, None, None


def applies(conv: nn.Module) -> bool:
    """Whether `FastWeightGradConv` can stand in for ``conv``: a 2D/3D conv, groups 1, no dilation, zero padding."""
    return (isinstance(conv, (nn.Conv2d, nn.Conv3d)) and conv.groups == 1 and set(conv.dilation) == {1}
            and conv.padding_mode == "zeros" and not isinstance(conv.padding, str))


class FastWeightGradConv(nn.Module):
    """A convolution whose weight gradient on CPU float32 is the fastest of PyTorch's and `weight_grad_as_conv`.

    It owns the wrapped conv's ``weight`` and ``bias`` parameters themselves (same names, same tensors), so
    state dicts and optimizers see no difference.
    """

    def __init__(self, conv: nn.Conv2d | nn.Conv3d):
        super().__init__()
        if not applies(conv):
            raise ValueError(f"{conv} has groups, dilation or non-zero padding")
        self.weight, self.bias = conv.weight, conv.bias
        self.stride, self.padding = tuple(conv.stride), tuple(conv.padding)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled() and eager_cpu_float32(x):
            return _ConvFastWeightGrad.apply(x, self.weight, self.bias, self.stride, self.padding)
        return _conv(x)(x, self.weight, self.bias, self.stride, self.padding)


def use_fast_weight_grads(model: nn.Module) -> int:
    """Replace every eligible conv of ``model`` by a `FastWeightGradConv` (same parameters); return how many."""
    count = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if type(child) in (nn.Conv2d, nn.Conv3d) and applies(child):
                setattr(parent, name, FastWeightGradConv(child))
                count += 1
    return count
