import gc
import logging
import weakref

import numpy as np
import pytest
import torch

from segkit.infer import sliding_window
from segkit.infer.errors import InferError
from segkit.infer.sliding_window import WindowOptions, predict_sliding_window
from segkit.infer.tiling import shift_offsets

# blended logits are kept and returned in half precision (11-bit significand)
HALF = {"rtol": 2e-3, "atol": 2e-3}


class Pointwise(torch.nn.Module):
    """A 1x1x1 conv: its sliding-window result must equal the plain forward pass on the whole image."""

    def __init__(self, fail_above: int | None = None) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv3d(2, 3, 1)
        self.fail_above = fail_above
        self.batches: list[int] = []

    def forward(self, x):
        self.batches.append(x.shape[0])
        if self.fail_above is not None and x.shape[0] > self.fail_above:
            raise torch.cuda.OutOfMemoryError("simulated")
        return self.conv(x)


def _data(shape=(2, 37, 61, 45)):
    return torch.from_numpy(np.random.default_rng(1).normal(size=shape).astype(np.float32))


@pytest.mark.parametrize("mirror", [(), (0, 1, 2)])
def test_blending_reproduces_a_pointwise_network(mirror):
    net, data = Pointwise(), _data()
    out = predict_sliding_window(net, data, WindowOptions((16, 24, 20), mirror_axes=mirror, batch_size=8),
                                 num_classes=3)
    expected = net.conv(data[None])[0]
    assert out.shape == expected.shape
    torch.testing.assert_close(out.float(), expected.detach(), **HALF)


def test_image_smaller_than_tile_is_padded_and_cropped_back():
    net, data = Pointwise(), _data((2, 10, 12, 9))
    out = predict_sliding_window(net, data, WindowOptions((16, 16, 16)), num_classes=3)
    torch.testing.assert_close(out.float(), net.conv(data[None])[0].detach(), **HALF)


@pytest.mark.parametrize("shape", [(2, 37, 61, 45), (2, 10, 12, 9)])
def test_translation_tta_blends_every_shifted_pass_back_in_place(shape):
    """A pointwise network gives the same value wherever a voxel lies in a tile: shifted passes blended in the
    wrong place would not reproduce it."""
    net, data = Pointwise(), _data(shape)
    plain, shifted = WindowOptions((16, 24, 20)), WindowOptions((16, 24, 20), shift=3)
    ticks = []
    out = predict_sliding_window(net, data, shifted, num_classes=3, progress=lambda *tick: ticks.append(tick))
    torch.testing.assert_close(out.float(), net.conv(data[None])[0].detach(), **HALF)
    tiles = sum(net.batches)
    net.batches.clear()
    predict_sliding_window(net, data, plain, num_classes=3)
    assert tiles >= 7 * sum(net.batches)  # each of the 6 shifted passes needs at least the plain pass's tiles
    assert ticks[-1] == (tiles, tiles) and {total for _, total in ticks} == {tiles}


def test_translation_tta_weighs_every_placement_the_same(monkeypatch):
    """The result is the plain mean of the 7 placements' own blends, not one Gaussian blend of all their tiles (a
    voxel near a shifted tile's centre would then count more)."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv3d(2, 3, 2, stride=2), torch.nn.Upsample(scale_factor=2))
    data = _data((2, 20, 12, 30))  # larger than the tile along two axes, smaller along one
    options = WindowOptions((16, 16, 16), shift=3)
    together = predict_sliding_window(net, data, options, num_classes=3).float()
    alone = []
    for offset in shift_offsets(3, options.tile_size):
        monkeypatch.setattr(sliding_window, "shift_offsets", lambda shift, tile, offset=offset: [offset])
        alone.append(predict_sliding_window(net, data, options, num_classes=3).float())
    assert (alone[1] - alone[0]).abs().max() > 0.1  # the placements differ: the weighting matters
    torch.testing.assert_close(together, torch.stack(alone).mean(0), **HALF)


def test_translation_tta_changes_a_strided_network():
    """A strided convolution sees the image on a grid of 2x2x2 blocks: shifted by an odd number of voxels, the
    blocks fall elsewhere (as in a U-Net's downsampling, where translation TTA gets its variety)."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv3d(2, 3, 2, stride=2), torch.nn.Upsample(scale_factor=2))
    data = _data((2, 10, 12, 9))
    plain = predict_sliding_window(net, data, WindowOptions((16, 16, 16)), num_classes=3)
    shifted = predict_sliding_window(net, data, WindowOptions((16, 16, 16), shift=3), num_classes=3)
    even = predict_sliding_window(net, data, WindowOptions((16, 16, 16), shift=2), num_classes=3)
    assert shifted.shape == plain.shape == (3, 10, 12, 9)
    assert (shifted.float() - plain.float()).abs().mean() > 0.05
    # a shift of 2 moves the image by one voxel within the tile (it grows by 2 and is centred): blocks move too
    assert not torch.equal(even, plain)


class Forgetful(Pointwise):
    """Records, at every forward pass, whether an output it returned before is still alive anywhere."""

    def __init__(self) -> None:
        super().__init__()
        self.returned: list[weakref.ref] = []
        self.alive_at_call: list[int] = []

    def forward(self, x):
        gc.collect()
        self.alive_at_call.append(sum(ref() is not None for ref in self.returned))
        out = super().forward(x)
        self.returned.append(weakref.ref(out))
        return out


@pytest.mark.parametrize("mirror", [(), (0,)])
def test_a_tile_forward_runs_after_the_previous_tiles_outputs_are_freed(mirror):
    """At 128x112x80 a CT tile's output holds 147 MB of features: keeping it through the next forward raised the
    peak memory of a two-tile scan by that much."""
    net, data = Forgetful(), _data((2, 24, 36, 30))
    predict_sliding_window(net, data, WindowOptions((16, 24, 20), mirror_axes=mirror), num_classes=3)
    assert len(net.alive_at_call) >= 4 and net.alive_at_call == [0] * len(net.alive_at_call)


def test_forward_out_of_memory_halves_the_batch(caplog):
    net, data = Pointwise(fail_above=2), _data()
    with caplog.at_level(logging.WARNING):
        out = predict_sliding_window(net, data, WindowOptions((16, 24, 20), mirror_axes=(0,), batch_size=8),
                                     num_classes=3)
    torch.testing.assert_close(out.float(), net.conv(data[None])[0].detach(), **HALF)
    assert "batch size now 2" in caplog.text
    assert max(net.batches[-3:]) <= 2


def test_accumulation_out_of_memory_falls_back_to_cpu(monkeypatch, caplog):
    calls = []
    real = sliding_window.accumulators

    def failing_once(channels, shape, device, **kwargs):
        calls.append(device)
        if len(calls) == 1:
            raise torch.cuda.OutOfMemoryError("simulated")
        return real(channels, shape, device, **kwargs)

    monkeypatch.setattr(sliding_window, "accumulators", failing_once)
    net, data = Pointwise(), _data()
    with caplog.at_level(logging.WARNING):
        out = predict_sliding_window(net, data, WindowOptions((16, 24, 20)), num_classes=3)
    assert len(calls) == 2 and calls[1] == torch.device("cpu")
    assert "accumulating on the CPU" in caplog.text
    torch.testing.assert_close(out.float(), net.conv(data[None])[0].detach(), **HALF)


def test_options_are_checked():
    with pytest.raises(InferError, match="step"):
        WindowOptions((16, 16, 16), step=1.5)
    with pytest.raises(InferError, match="mirror axes"):
        WindowOptions((16, 16, 16), mirror_axes=(3,))
    with pytest.raises(InferError, match="shift"):
        WindowOptions((16, 16, 16), shift=-1)
    with pytest.raises(InferError, match="whole number of voxels"):
        WindowOptions((16, 16, 16), shift=2.5)
    with pytest.raises(InferError, match="by a whole patch"):
        WindowOptions((16, 24, 1), shift=16)
    assert WindowOptions((16, 24, 1), shift=15).shift == 15


@pytest.mark.parametrize("scale", [1e-3, 1e3])
def test_half_precision_blending_keeps_relative_precision_everywhere(scale):
    # image corners are covered only by a tile's corner (Gaussian weight ~1e-11): a half-precision weighted *sum*
    # would underflow there, the running weighted mean does not
    net, data = Pointwise(), _data()
    with torch.no_grad():
        net.conv.weight.mul_(scale)
        net.conv.bias.mul_(scale)
    out = predict_sliding_window(net, data, WindowOptions((16, 24, 20)), num_classes=3)
    expected = net.conv(data[None])[0].detach()
    assert out.dtype == torch.float16  # as nnU-Net keeps them
    torch.testing.assert_close(out.float(), expected, rtol=2e-3, atol=2e-3 * scale)
    torch.testing.assert_close(out[:, 0, 0, 0].float(), expected[:, 0, 0, 0], rtol=2e-3, atol=2e-3 * scale)


def test_logits_beyond_half_precision_range_are_reported():
    net, data = Pointwise(), _data()
    with torch.no_grad():
        net.conv.bias.fill_(1e6)
    with pytest.raises(InferError, match="non-finite"):
        predict_sliding_window(net, data, WindowOptions((16, 24, 20)), num_classes=3)


@pytest.mark.parametrize(("channels_last", "shift"), [(False, 0), (True, 0), (True, 3)])
def test_many_class_network_blends_features_and_runs_its_head_once_per_voxel(channels_last, shift):
    from segkit.nets import build_network, fuse
    from segkit.nets.spec import ArchitectureSpec

    torch.manual_seed(0)
    spec = ArchitectureSpec.from_dict({
        "dims": 3, "features_per_stage": [8, 16], "kernel_sizes": [[3, 3, 3]] * 2, "strides": [[1, 1, 1], [2, 2, 2]],
        "blocks_per_stage": [1, 1], "blocks_per_stage_decoder": [1]})
    num_classes = 21  # more classes than the 8 features the head maps from
    net = fuse(build_network(spec, 2, num_classes))
    if channels_last:  # as the predictor runs it on the CPU: features and their blend stay channels-last
        net = net.to(memory_format=torch.channels_last_3d)
    with torch.no_grad():
        assert net.feature_channels == 8 == net.forward_features(torch.zeros(1, 2, 16, 16, 12)).shape[1]
    head_inputs = []
    head_logits = net.head_logits
    net.head_logits = lambda features, classes=slice(None): head_inputs.append(features.shape) or head_logits(
        features, classes)
    data = _data()
    options = WindowOptions((16, 16, 12), mirror_axes=(0,), shift=shift, channels_last=channels_last)
    with torch.no_grad():
        blended = predict_sliding_window(net, data, options, num_classes=num_classes)
        per_tile = predict_sliding_window(lambda x: net(x), data, options, num_classes=num_classes)
    assert blended.is_contiguous()
    # the head ran over the blended image in slabs (not over each tile), and its logits equal the blended logits
    assert sum(shape[2] for shape in head_inputs) == data.shape[1]
    assert all(shape[1] == 8 and shape[3:] == data.shape[2:] for shape in head_inputs)
    assert blended.dtype == per_tile.dtype == torch.float16
    torch.testing.assert_close(blended, per_tile, **HALF)
