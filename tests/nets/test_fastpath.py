"""GEMM replacements of 1x1 convs and kernel == stride transposed convs compute the same function."""

from __future__ import annotations

import pytest
import torch

from segkit.nets.fastpath import PointwiseConv, ShuffleUpsample, is_pointwise, is_shuffle_upsample


@pytest.mark.parametrize(("conv", "shape"), [
    (torch.nn.Conv3d(6, 5, 1), (2, 6, 4, 3, 5)),
    (torch.nn.Conv2d(6, 5, 1, bias=False), (3, 6, 7, 3)),
])
def test_pointwise_conv(conv: torch.nn.Module, shape: tuple[int, ...]) -> None:
    torch.manual_seed(0)
    assert is_pointwise(conv)
    fast = PointwiseConv(conv)
    x = torch.randn(*shape)
    with torch.no_grad():
        assert (fast(x) - conv(x)).abs().max().item() < 1e-5
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out, ref = fast(x), conv(x)
    assert out.dtype == ref.dtype == torch.bfloat16
    assert (out.float() - ref.float()).abs().max().item() < 0.05


@pytest.mark.parametrize(("conv_t", "shape"), [
    (torch.nn.ConvTranspose3d(6, 4, 2, 2), (2, 6, 3, 4, 5)),
    (torch.nn.ConvTranspose3d(6, 4, (2, 1, 3), (2, 1, 3)), (1, 6, 3, 4, 2)),
    (torch.nn.ConvTranspose2d(6, 4, (1, 2), (1, 2), bias=False), (2, 6, 5, 3)),
])
def test_shuffle_upsample(conv_t: torch.nn.Module, shape: tuple[int, ...]) -> None:
    torch.manual_seed(0)
    assert is_shuffle_upsample(conv_t)
    fast = ShuffleUpsample(conv_t)
    x = torch.randn(*shape)
    with torch.no_grad():
        ref = conv_t(x)
        out = fast(x)
    assert out.shape == ref.shape and (out - ref).abs().max().item() < 1e-5


def test_other_layers_are_not_replaced() -> None:
    assert not is_pointwise(torch.nn.Conv3d(2, 2, 3, padding=1))
    assert not is_pointwise(torch.nn.Conv3d(2, 2, 1, stride=2))
    assert not is_shuffle_upsample(torch.nn.ConvTranspose3d(2, 2, 3, 2))
