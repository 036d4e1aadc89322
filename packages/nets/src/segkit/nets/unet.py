"""The U-Net built from an `ArchitectureSpec`: encoder of stages, decoder derived from the encoder.

State-dict layout (what `save_weights` stores and the nnU-Net importer maps onto):
``encoder.stem.*`` (residual only), ``encoder.stages.{s}.{b}.*``, ``decoder.upsamplers.{s}.*``,
``decoder.stages.{s}.{b}.*``, ``decoder.heads.{s}.*``; decoder index 0 is the deepest decoder stage.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator

import torch
from torch import nn

from segkit.nets import layers
from segkit.nets.blocks import ConvNormAct, RepBlock, ResidualBlock, strided_size
from segkit.nets.errors import NetsError
from segkit.nets.fastpath import ShuffleUpsample, channel_rows, compute_dtype, pointwise
from segkit.nets.layers import LayerOptions
from segkit.nets.spec import ArchitectureSpec, Block


def _conv_stack(block: Block, channels: tuple[int, int], opts: LayerOptions, *, kernel: tuple[int, ...],
                stride: tuple[int, ...], count: int) -> nn.Sequential:
    """Return `count` blocks, the first mapping channels[0] -> channels[1] with `stride`, the rest 1."""
    cls = {Block.PLAIN: ConvNormAct, Block.REP: RepBlock, Block.RESIDUAL: ResidualBlock}[block]
    in_ch, out_ch = channels
    mods = [cls(in_ch if b == 0 else out_ch, out_ch, opts, kernel=kernel, stride=stride if b == 0 else 1)
            for b in range(count)]
    return nn.Sequential(*mods)


def _stack_size(stack: nn.Sequential, input_size: tuple[int, ...]) -> int:
    total = 0
    for mod in stack:
        total += mod.feature_map_size(input_size)
        input_size = strided_size(input_size, mod.stride)
    return total


class Encoder(nn.Module):
    """Encoder stages; returns every stage's output (the skips), deepest last."""

    def __init__(self, spec: ArchitectureSpec, in_channels: int, opts: LayerOptions):
        super().__init__()
        self.strides = spec.strides
        self.stem: nn.Module = nn.Identity()
        width = in_channels
        if spec.block is Block.RESIDUAL:
            width = spec.stem_channels or spec.features_per_stage[0]
            self.stem = ConvNormAct(in_channels, width, opts, kernel=spec.kernel_sizes[0])
        stages = []
        for s, features in enumerate(spec.features_per_stage):
            stages.append(_conv_stack(spec.block, (width, features), opts, kernel=spec.kernel_sizes[s],
                                      stride=spec.strides[s], count=spec.blocks_per_stage[s]))
            width = features
        self.stages = nn.ModuleList(stages)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.stem(x)
        skips = []
        for stage in self.stages:
            x = stage(x)
            skips.append(x)
        return skips

    def feature_map_size(self, input_size: tuple[int, ...]) -> int:
        """Return channels x voxels written by the stem and every stage for spatial input `input_size`."""
        total = self.stem.feature_map_size(input_size) if isinstance(self.stem, ConvNormAct) else 0
        for stage, stride in zip(self.stages, self.strides, strict=True):
            total += _stack_size(stage, input_size)
            input_size = strided_size(input_size, stride)
        return total


class Decoder(nn.Module):
    """Upsample (transposed conv), concatenate the skip, convolve; one 1x1 head per decoder stage."""

    def __init__(self, spec: ArchitectureSpec, num_classes: int, opts: LayerOptions):
        super().__init__()
        feats, n = spec.features_per_stage, spec.num_stages
        block = Block.REP if spec.block is Block.REP else Block.PLAIN
        ups, stages, heads = [], [], []
        for s in range(n - 1):
            below, skip = feats[n - 1 - s], feats[n - 2 - s]
            ups.append(layers.conv_transpose(opts, below, skip, stride=spec.strides[n - 1 - s]))
            stages.append(_conv_stack(block, (2 * skip, skip), opts, kernel=spec.kernel_sizes[n - 2 - s],
                                      stride=(1,) * spec.dims, count=spec.blocks_per_stage_decoder[s]))
            heads.append(layers.conv(opts, skip, num_classes, kernel=(1,) * spec.dims, bias=True))
        self.upsamplers = nn.ModuleList(ups)
        self.stages = nn.ModuleList(stages)
        self.heads = nn.ModuleList(heads)
        self.strides = spec.strides
        self.num_classes = num_classes
        self.deep_supervision = spec.deep_supervision

    def forward(self, skips: list[torch.Tensor]) -> torch.Tensor | list[torch.Tensor]:
        """Decode the encoder's ``skips`` (deepest last). The list is consumed: each skip leaves it once used, so
        at inference its memory is freed before the full-resolution stage runs."""
        if not self.deep_supervision:
            return self.heads[-1](self.features(skips))
        return [self.heads[s](x) for s, x in self._stage_outputs(skips)][::-1]

    def features(self, skips: list[torch.Tensor]) -> torch.Tensor:
        """The last stage's output: the full-resolution features the final head maps to logits."""
        (_, last), = deque(self._stage_outputs(skips), maxlen=1)  # earlier stage outputs are freed on the way
        return last

    def _stage_outputs(self, skips: list[torch.Tensor]) -> Iterator[tuple[int, torch.Tensor]]:
        x = skips.pop()
        for s, (up, stage) in enumerate(zip(self.upsamplers, self.stages, strict=True)):
            x = _upsample_and_concat(up, x, skips.pop())
            for block in stage:  # not stage(x): the caller would hold the concatenation until the last block
                x = block(x)
            yield s, x

    def feature_map_size(self, input_size: tuple[int, ...]) -> int:
        """Return channels x voxels written by upsamplers, conv stacks and used heads (encoder input size)."""
        sizes = []
        for stride in self.strides[:-1]:
            input_size = strided_size(input_size, stride)
            sizes.append(input_size)
        total = 0
        last = len(self.stages) - 1
        for s, stage in enumerate(self.stages):
            size = sizes[-(s + 1)]
            total += _stack_size(stage, size)
            total += stage[0].out_channels * _prod(size)
            if self.deep_supervision or s == last:
                total += self.num_classes * _prod(size)
        return total


def _upsample_and_concat(up: nn.Module, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
    """``torch.cat((up(x), skip), 1)``. At inference a `ShuffleUpsample` writes straight into the concatenation, in
    the skip's layout: the upsampled map never exists on its own (147 MB at a CT tile's full resolution)."""
    if not isinstance(up, ShuffleUpsample) or torch.is_grad_enabled() or torch.compiler.is_compiling():
        return torch.cat((up(x), skip), 1)
    n, channels, *spatial = skip.shape
    total = up.out_channels + channels
    dtype = torch.promote_types(compute_dtype(x), skip.dtype)
    if channel_rows(skip) is not None:
        joined = torch.empty((n, *spatial, total), dtype=dtype, device=skip.device).movedim(-1, 1)
    else:
        joined = torch.empty((n, total, *spatial), dtype=dtype, device=skip.device)
    up.write_into(x, joined[:, :up.out_channels])
    joined[:, up.out_channels:].copy_(skip)
    return joined


def _prod(size: tuple[int, ...]) -> int:
    out = 1
    for v in size:
        out *= v
    return out


class UNet(nn.Module):
    """A U-Net (plain, residual-encoder or re-parameterizable) built from an `ArchitectureSpec`.

    `forward(x)` takes (batch, in_channels, *spatial) with every spatial size a multiple of the product of
    the strides; it returns (batch, num_classes, *spatial) when `deep_supervision` is off, else a list of
    such tensors, full resolution first, one per decoder stage.
    """

    def __init__(self, spec: ArchitectureSpec, in_channels: int, num_classes: int):
        super().__init__()
        opts = LayerOptions.from_spec(spec)
        self.spec = spec
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.encoder = Encoder(spec, in_channels, opts)
        self.decoder = Decoder(spec, num_classes, opts)

    @property
    def deep_supervision(self) -> bool:
        """Whether forward returns all decoder outputs (training) or only the full-resolution one."""
        return self.decoder.deep_supervision

    @deep_supervision.setter
    def deep_supervision(self, enabled: bool) -> None:
        if enabled and len(self.decoder.heads) < len(self.decoder.stages):
            raise NetsError("deep supervision cannot be turned on: fuse() dropped the low-resolution heads")
        self.decoder.deep_supervision = bool(enabled)

    def forward(self, x: torch.Tensor) -> torch.Tensor | list[torch.Tensor]:
        return self.decoder(self.encoder(x))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The full-resolution decoder features of ``x``; `head_logits` turns them into logits.

        Together they compute ``forward(x)`` (deep supervision off) in parts, so that a many-class output can be
        produced a few classes at a time instead of all at once.
        """
        return self.decoder.features(self.encoder(x))

    @property
    def feature_channels(self) -> int:
        """Channels of the `forward_features` output: the input width of the final head."""
        return int(self.spec.features_per_stage[0])

    def head_logits(self, features: torch.Tensor, classes: slice = slice(None)) -> torch.Tensor:
        """Logits of the ``classes`` (a slice of the class axis) from `forward_features` output."""
        head = self.decoder.heads[-1]
        weight = head.weight.reshape(head.weight.shape[0], -1)[classes]
        bias = head.bias.reshape(-1, 1)[classes] if head.bias is not None else weight.new_zeros(len(weight), 1)
        return pointwise(features, weight, bias)

    def feature_map_size(self, input_size: tuple[int, ...]) -> int:
        """Return channels x voxels written by all convs for one sample of spatial size `input_size`."""
        size = tuple(int(v) for v in input_size)
        return self.encoder.feature_map_size(size) + self.decoder.feature_map_size(size)
