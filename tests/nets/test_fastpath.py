"""GEMM replacements of 1x1 convs and kernel == stride transposed convs, and oneDNN-run convs, compute the same
function as the layers they replace."""

from __future__ import annotations

import pytest
import torch

from segkit.nets import ArchitectureSpec, build_network, fastpath, fuse
from segkit.nets.fastpath import (
    InstanceNormInPlace,
    OneDnnConv,
    PointwiseConv,
    ShuffleUpsample,
    is_pointwise,
    is_shuffle_upsample,
    runs_on_onednn,
)
from segkit.nets.layers import InstanceNorm2d, InstanceNorm3d


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


@pytest.mark.parametrize(("conv_t", "shape"), [
    (torch.nn.ConvTranspose3d(6, 4, 2, 2), (2, 6, 5, 4, 3)),
    (torch.nn.ConvTranspose3d(6, 4, (2, 1, 3), (2, 1, 3)), (1, 6, 7, 4, 2)),
    (torch.nn.ConvTranspose2d(6, 4, (1, 2), (1, 2), bias=False), (2, 6, 5, 3)),
])
@pytest.mark.parametrize("layout", ["usual", "channels_last"])
def test_upsampler_writes_into_a_concatenation_in_slabs(conv_t, shape, layout, monkeypatch) -> None:
    """The decoder's upsample-and-concatenate at inference equals ``torch.cat((up(x), skip), 1)``, slab by slab."""
    from segkit.nets.unet import _upsample_and_concat

    monkeypatch.setattr(fastpath, "UPSAMPLE_SLAB_VALUES", 40)  # a slab of one or two planes of the first axis
    torch.manual_seed(0)
    fast = ShuffleUpsample(conv_t)
    x = torch.randn(*shape)
    skip = torch.randn(shape[0], 3, *(v * s for v, s in zip(shape[2:], conv_t.stride, strict=True)))
    if layout == "channels_last":
        memory_format = torch.channels_last_3d if x.ndim == 5 else torch.channels_last
        x, skip = x.contiguous(memory_format=memory_format), skip.contiguous(memory_format=memory_format)
    with torch.no_grad():
        joined = _upsample_and_concat(fast, x, skip)
        expected = torch.cat((conv_t(x), skip), 1)
    assert joined.is_contiguous(memory_format=memory_format) if layout == "channels_last" else joined.is_contiguous()
    torch.testing.assert_close(joined, expected, rtol=1e-5, atol=1e-5)
    assert torch.equal(joined[:, 4:], skip)


@pytest.mark.parametrize("layer", [torch.nn.Conv3d(6, 5, 1), torch.nn.ConvTranspose3d(6, 4, (2, 1, 2), (2, 1, 2))])
def test_fast_layers_read_channels_last(layer: torch.nn.Module) -> None:
    """The upsampler keeps the layout; the head (pointwise) gives its logits in the usual one."""
    torch.manual_seed(0)
    head = isinstance(layer, torch.nn.Conv3d)
    fast = PointwiseConv(layer) if head else ShuffleUpsample(layer)
    x = torch.randn(2, 6, 3, 4, 5).contiguous(memory_format=torch.channels_last_3d)
    with torch.no_grad():
        out, ref = fast(x), layer(x.contiguous())
    assert out.is_contiguous(memory_format=torch.contiguous_format if head else torch.channels_last_3d)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)


def test_other_layers_are_not_replaced() -> None:
    assert not is_pointwise(torch.nn.Conv3d(2, 2, 3, padding=1))
    assert not is_pointwise(torch.nn.Conv3d(2, 2, 1, stride=2))
    assert not is_shuffle_upsample(torch.nn.ConvTranspose3d(2, 2, 3, 2))


@pytest.mark.parametrize(("conv", "shape"), [
    (torch.nn.Conv3d(16, 16, 3, padding=1), (1, 16, 6, 7, 5)),  # batch 1, few channels x rows: PyTorch's native kernel
    (torch.nn.Conv3d(1, 8, 3, stride=(2, 1, 2), padding=(1, 1, 0)), (1, 1, 9, 8, 7)),
    (torch.nn.Conv2d(4, 6, (3, 1), padding=(1, 0), bias=False), (2, 4, 12, 5)),
])
def test_onednn_conv(conv: torch.nn.Module, shape: tuple[int, ...]) -> None:
    torch.manual_seed(0)
    assert runs_on_onednn(conv)
    fast = OneDnnConv(conv)
    x = torch.randn(*shape)
    with torch.no_grad():
        torch.testing.assert_close(fast(x), conv(x), rtol=1e-5, atol=1e-5)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out, ref = fast(x), conv(x)
    assert out.dtype == ref.dtype == torch.bfloat16


def test_fused_unet_runs_its_kxk_convs_on_onednn() -> None:
    spec = ArchitectureSpec(network="unet", dims=3, features_per_stage=(4, 8), kernel_sizes=((3, 3, 3),) * 2,
                            strides=((1, 1, 1), (2, 2, 2)), blocks_per_stage=(1, 1), blocks_per_stage_decoder=(1,),
                            deep_supervision=False)
    torch.manual_seed(0)
    net = build_network(spec, 1, 3).eval()
    fused = fuse(net)
    wrapped = [m for m in fused.modules() if isinstance(m, OneDnnConv)]
    kxk = [m for m in net.modules() if isinstance(m, torch.nn.Conv3d) and m.kernel_size == (3, 3, 3)]
    assert len(wrapped) == len(kxk) == 3  # one conv per encoder stage and in the decoder block
    x = torch.randn(1, 1, 8, 12, 8)
    with torch.no_grad():
        torch.testing.assert_close(fused(x), net(x), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("norm", [InstanceNorm3d(5, affine=True), InstanceNorm2d(5, affine=True)])
def test_instance_norm_in_place(norm: torch.nn.Module) -> None:
    torch.manual_seed(0)
    with torch.no_grad():
        norm.weight.uniform_(0.5, 1.5)
        norm.bias.uniform_(-1.0, 1.0)
    dims = 3 if isinstance(norm, torch.nn.InstanceNorm3d) else 2
    x = torch.randn(2, 5, *(6,) * dims) * 4 + 3
    fast = InstanceNormInPlace(norm)
    with torch.inference_mode():
        ref = norm(x)
        y = x.clone()
        out = fast(y)
        assert out.data_ptr() == y.data_ptr()  # no second map
        torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
        z = x.bfloat16()
        assert fast(z).data_ptr() != z.data_ptr()  # bf16 in the usual layout: the wrapped norm
        if dims == 3:  # channels-last (the layout of CPU inference)
            layout = torch.channels_last_3d
            for z in (x.bfloat16().contiguous(memory_format=layout), x.contiguous(memory_format=layout)):
                y = z.clone()
                out = fast(y)  # several samples: in place, statistics in float32
                assert out.data_ptr() == y.data_ptr() and out.is_contiguous(memory_format=layout)
                tolerance = 0.03 if z.dtype == torch.bfloat16 else 1e-5  # bf16 rounding
                torch.testing.assert_close(out.float(), ref, rtol=tolerance, atol=tolerance)
                y = z[:1].clone()
                one = fast(y)  # one sample: float32 in place; bf16 through batch norm's kernel (one rounding)
                assert one.is_contiguous(memory_format=layout)
                assert (one.data_ptr() == y.data_ptr()) == (z.dtype == torch.float32)
                torch.testing.assert_close(one.float(), ref[:1], rtol=tolerance, atol=tolerance)
    tracked = x.clone().requires_grad_()
    fast(tracked).sum().backward()  # autograd's inputs are left alone
    assert tracked.grad is not None and torch.equal(tracked.detach(), x)


def test_fused_unet_normalizes_in_place_and_frees_skips() -> None:
    spec = ArchitectureSpec(network="unet", dims=3, features_per_stage=(4, 8, 8), kernel_sizes=((3, 3, 3),) * 3,
                            strides=((1, 1, 1), (2, 2, 2), (2, 2, 2)), blocks_per_stage=(1, 1, 1),
                            blocks_per_stage_decoder=(1, 1), deep_supervision=False)
    torch.manual_seed(0)
    net = build_network(spec, 1, 3).eval()
    fused = fuse(net)
    assert len([m for m in fused.modules() if isinstance(m, InstanceNormInPlace)]) == 5
    x = torch.randn(1, 1, 8, 12, 8)
    with torch.inference_mode():
        skips = fused.encoder(x)
        out = fused.decoder(skips)
        assert skips == []  # the decoder consumed them
        torch.testing.assert_close(out, net(x), rtol=1e-4, atol=1e-4)


def test_channels_last_statistics_are_summed_in_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Blocks of rows, the last one short, give the statistics of the whole map."""
    monkeypatch.setattr(fastpath, "MOMENT_BLOCK_ROWS", 7)
    torch.manual_seed(1)
    x = (torch.randn(2, 3, 5, 4, 3) * 2 + 1).contiguous(memory_format=torch.channels_last_3d)  # 60 rows
    mean, var = fastpath._column_moments(fastpath.channel_rows(x))
    torch.testing.assert_close(mean, x.mean((2, 3, 4)))
    torch.testing.assert_close(var, x.var((2, 3, 4), unbiased=False))
