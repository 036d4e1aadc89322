"""Conv weight gradients computed as a forward convolution (segkit.nets.weight_grad)."""

import pytest
import torch
from torch import nn

from segkit.nets import ArchitectureSpec, build_network
from segkit.nets.weight_grad import FastWeightGradConv, use_fast_weight_grads, weight_grad_as_conv

CASES = [  # (spatial shape, kernel, stride, padding, slabs)
    ((8, 10, 12), (3, 3, 3), (1, 1, 1), (1, 1, 1), 1),
    ((8, 10, 12), (3, 3, 3), (1, 1, 1), (1, 1, 1), 2),
    ((8, 10, 12), (3, 3, 3), (1, 1, 1), (1, 1, 1), 4),
    ((9, 11, 13), (3, 3, 3), (2, 2, 2), (1, 1, 1), 1),
    ((8, 10, 12), (3, 3, 3), (2, 2, 2), (1, 1, 1), 2),
    ((8, 10, 12), (3, 3, 3), (1, 2, 2), (1, 1, 1), 2),
    ((6, 10, 12), (1, 3, 3), (1, 1, 1), (0, 1, 1), 3),
    ((10, 12), (3, 3), (1, 1), (1, 1), 2),
    ((11, 12), (3, 3), (2, 2), (1, 1), 1),
]


@pytest.mark.parametrize(("shape", "kernel", "stride", "padding", "slabs"), CASES)
def test_weight_gradient_as_a_convolution_equals_autograd(shape, kernel, stride, padding, slabs):
    torch.manual_seed(0)
    conv = nn.Conv3d(5, 7, kernel, stride, padding) if len(shape) == 3 else nn.Conv2d(5, 7, kernel, stride, padding)
    x = torch.randn(2, 5, *shape)
    out = conv(x)
    grad = torch.randn_like(out)
    out.backward(grad)
    got = weight_grad_as_conv(x, grad, kernel, stride, padding, slabs)
    torch.testing.assert_close(got, conv.weight.grad, rtol=1e-4, atol=1e-4)


def test_slabs_must_divide_the_output():
    with pytest.raises(ValueError, match="slabs"):
        weight_grad_as_conv(torch.zeros(1, 1, 5, 4, 4), torch.zeros(1, 1, 5, 4, 4), (3, 3, 3), (1, 1, 1), (1, 1, 1), 2)


def test_unet_gradients_keys_and_parameters_are_unchanged():
    spec = ArchitectureSpec.from_dict({
        "network": "unet", "dims": 3, "features_per_stage": [8, 16, 32], "kernel_sizes": [[3, 3, 3]] * 3,
        "strides": [[1, 1, 1], [2, 2, 2], [2, 2, 2]], "blocks_per_stage": [2, 2, 2],
        "blocks_per_stage_decoder": [1, 1], "block": "plain", "norm": "instance", "deep_supervision": True})
    torch.manual_seed(0)
    plain = build_network(spec, 1, 3)
    torch.manual_seed(0)
    fast = build_network(spec, 1, 3)
    params = {name: id(p) for name, p in fast.named_parameters()}
    assert use_fast_weight_grads(fast) == sum(isinstance(m, FastWeightGradConv) for m in fast.modules()) >= 10
    assert {name: id(p) for name, p in fast.named_parameters()} == params  # optimizers keep working
    assert list(fast.state_dict()) == list(plain.state_dict())
    x = torch.randn(2, 1, 16, 24, 16)
    for model in (plain, fast):
        sum(o.square().mean() for o in model(x)).backward()
    scale = max(p.grad.abs().max() for p in plain.parameters())
    for (name, p), q in zip(plain.named_parameters(), fast.parameters(), strict=True):
        torch.testing.assert_close(q.grad, p.grad, rtol=0, atol=1e-5 * float(scale), msg=name)


def test_plain_convolution_without_gradients_or_under_autocast():
    torch.manual_seed(0)
    conv = nn.Conv3d(3, 4, 3, padding=1)
    fast = FastWeightGradConv(conv)
    x = torch.randn(1, 3, 6, 6, 6)
    with torch.no_grad():
        torch.testing.assert_close(fast(x), conv(x))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = fast(x)
        assert y.dtype == torch.bfloat16
        torch.testing.assert_close(y, conv(x))
    with pytest.raises(ValueError, match="dilation"):
        FastWeightGradConv(nn.Conv3d(3, 4, 3, dilation=2))
