"""The architecture spec: a plain, JSON-friendly description from which `build_network` builds a U-Net.

`segkit.planning` writes it into plans.json as a plain dict (`ArchitectureSpec.to_dict()`); training and
inference rebuild it with `ArchitectureSpec.from_dict`. Every per-axis list is in segkit's axis order
(i, j, k) = NIfTI array order, the reverse of nnU-Net's (z, y, x).

Keys (all JSON scalars or lists):

- ``network`` (str, default ``"unet"``): registry name of the network class (`segkit.nets.registry`).
- ``dims`` (int, 2 or 3): spatial dimensionality.
- ``features_per_stage`` (list[int]): output channels of each encoder stage, shallowest first.
- ``kernel_sizes`` (list[list[int]]): per stage, one odd kernel size per axis.
- ``strides`` (list[list[int]]): per stage, the downsampling stride per axis applied on entering the
  stage (the first is usually all 1). The decoder upsamples with transposed convolutions of kernel = stride.
- ``blocks_per_stage`` (list[int]): encoder convs per stage for ``plain``/``rep`` blocks, residual
  blocks per stage for ``residual``.
- ``blocks_per_stage_decoder`` (list[int], len = stages - 1): convs per decoder stage, deepest first.
- ``block`` (``"plain"`` | ``"residual"`` | ``"rep"``): ``plain`` = nnU-Net's conv-norm-nonlin;
  ``residual`` = nnU-Net's ResEnc (stem conv + ResNet-D basic blocks in the encoder, plain decoder);
  ``rep`` = RepVGG-style blocks (kxk + 1x1 + identity branches, each with batch norm) in encoder and
  decoder, merged into one conv by `fuse`. ``rep`` requires ``norm == "batch"``.
- ``norm`` (``"instance"`` | ``"batch"`` | ``"group"``): normalization after every conv (affine).
- ``deep_supervision`` (bool, default true): forward returns one output per decoder resolution except the
  lowest, full resolution first; false returns only the full-resolution tensor.
- ``conv_bias`` (bool, default true): bias on the convs and transposed convs (nnU-Net's default plans
  use true; the 1x1 residual projections never have one, as in nnU-Net).
- ``nonlin`` (``"leaky_relu"`` | ``"relu"``, default ``"leaky_relu"``) and ``negative_slope``
  (float, default 0.01).
- ``norm_eps`` (float, default 1e-5): epsilon of every norm layer.
- ``group_norm_groups`` (int, default 8): groups for ``norm == "group"``; must divide every width.
- ``stem_channels`` (int or null, default null = ``features_per_stage[0]``): width of the residual stem.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from segkit.nets.errors import ArchitectureSpecError


class Block(str, Enum):
    """Building block of the encoder (and of the decoder for ``rep``)."""

    PLAIN = "plain"
    RESIDUAL = "residual"
    REP = "rep"


class Norm(str, Enum):
    """Normalization layer after each conv."""

    INSTANCE = "instance"
    BATCH = "batch"
    GROUP = "group"


class Nonlin(str, Enum):
    """Nonlinearity after each normalization."""

    LEAKY_RELU = "leaky_relu"
    RELU = "relu"


def _enum(cls: type[Enum], value: Any, key: str) -> Enum:
    try:
        return cls(value.value if isinstance(value, Enum) else value)
    except ValueError as err:
        valid = ", ".join(repr(m.value) for m in cls)
        raise ArchitectureSpecError(f"spec key {key!r}: unknown value {value!r}; valid: {valid}") from err


def _ints(values: Any, key: str) -> tuple[int, ...]:
    if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        raise ArchitectureSpecError(f"spec key {key!r}: expected a list of integers, found {values!r}")
    out = tuple(values)
    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in out):
        raise ArchitectureSpecError(f"spec key {key!r}: expected positive integers, found {list(out)!r}")
    return out


def _per_axis(values: Any, key: str, dims: int) -> tuple[tuple[int, ...], ...]:
    rows = tuple(_ints(row, f"{key}[{s}]") for s, row in enumerate(_iter(values, key)))
    for s, row in enumerate(rows):
        if len(row) != dims:
            raise ArchitectureSpecError(
                f"spec key {key!r}[{s}]: expected {dims} entries (one per axis), found {len(row)}"
            )
    return rows


def _iter(values: Any, key: str) -> tuple:
    if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        raise ArchitectureSpecError(f"spec key {key!r}: expected a list, found {values!r}")
    return tuple(values)


@dataclass(frozen=True)
class ArchitectureSpec:
    """A U-Net topology: stages, widths, kernels, strides, block and norm (see the module docstring).

    Example:
        >>> spec = ArchitectureSpec(dims=2, features_per_stage=[8, 16], kernel_sizes=[[3, 3], [3, 3]],
        ...     strides=[[1, 1], [2, 2]], blocks_per_stage=[2, 2], blocks_per_stage_decoder=[2])
        >>> ArchitectureSpec.from_dict(spec.to_dict()) == spec
        True
    """

    dims: int
    features_per_stage: tuple[int, ...]
    kernel_sizes: tuple[tuple[int, ...], ...]
    strides: tuple[tuple[int, ...], ...]
    blocks_per_stage: tuple[int, ...]
    blocks_per_stage_decoder: tuple[int, ...]
    network: str = "unet"
    block: Block = Block.PLAIN
    norm: Norm = Norm.INSTANCE
    deep_supervision: bool = True
    conv_bias: bool = True
    nonlin: Nonlin = Nonlin.LEAKY_RELU
    negative_slope: float = 0.01
    norm_eps: float = 1e-5
    group_norm_groups: int = 8
    stem_channels: int | None = field(default=None)

    def __post_init__(self) -> None:
        if self.dims not in (2, 3) or isinstance(self.dims, bool):
            raise ArchitectureSpecError(f"spec key 'dims': expected 2 or 3, found {self.dims!r}")
        set_ = object.__setattr__
        set_(self, "features_per_stage", _ints(self.features_per_stage, "features_per_stage"))
        n = len(self.features_per_stage)
        if n < 1:
            raise ArchitectureSpecError("spec key 'features_per_stage': expected at least 1 stage, found 0")
        set_(self, "kernel_sizes", _per_axis(self.kernel_sizes, "kernel_sizes", self.dims))
        set_(self, "strides", _per_axis(self.strides, "strides", self.dims))
        set_(self, "blocks_per_stage", _ints(self.blocks_per_stage, "blocks_per_stage"))
        set_(self, "blocks_per_stage_decoder", _ints(self.blocks_per_stage_decoder, "blocks_per_stage_decoder"))
        for key, expected in (("kernel_sizes", n), ("strides", n), ("blocks_per_stage", n),
                              ("blocks_per_stage_decoder", n - 1)):
            found = len(getattr(self, key))
            if found != expected:
                raise ArchitectureSpecError(
                    f"spec key {key!r}: expected {expected} entries for {n} stages, found {found}"
                )
        for s, row in enumerate(self.kernel_sizes):
            if any(k % 2 == 0 for k in row):
                raise ArchitectureSpecError(f"spec key 'kernel_sizes'[{s}]: expected odd sizes, found {list(row)}")
        set_(self, "block", _enum(Block, self.block, "block"))
        set_(self, "norm", _enum(Norm, self.norm, "norm"))
        set_(self, "nonlin", _enum(Nonlin, self.nonlin, "nonlin"))
        self._check_scalars()

    def _check_scalars(self) -> None:
        if not isinstance(self.network, str) or not self.network:
            raise ArchitectureSpecError(f"spec key 'network': expected a registry name, found {self.network!r}")
        for key in ("deep_supervision", "conv_bias"):
            if not isinstance(getattr(self, key), bool):
                raise ArchitectureSpecError(f"spec key {key!r}: expected true or false, found {getattr(self, key)!r}")
        if self.block is Block.REP and self.norm is not Norm.BATCH:
            raise ArchitectureSpecError(
                f"spec key 'norm': block 'rep' needs 'batch' (its branches merge through batch norm), "
                f"found {self.norm.value!r}"
            )
        if not self.norm_eps > 0 or self.negative_slope < 0:
            raise ArchitectureSpecError(
                f"spec keys 'norm_eps'/'negative_slope': expected > 0 / >= 0, "
                f"found {self.norm_eps}/{self.negative_slope}"
            )
        if self.norm is Norm.GROUP:
            bad = [f for f in self.features_per_stage if f % self.group_norm_groups]
            if bad:
                raise ArchitectureSpecError(
                    f"spec key 'group_norm_groups': {self.group_norm_groups} must divide every width, found {bad}"
                )
        if self.stem_channels is not None and (not isinstance(self.stem_channels, int) or self.stem_channels < 1):
            raise ArchitectureSpecError(f"spec key 'stem_channels': expected a positive int or null, "
                                        f"found {self.stem_channels!r}")

    @property
    def num_stages(self) -> int:
        """Number of encoder stages (resolutions)."""
        return len(self.features_per_stage)

    def with_changes(self, **changes: Any) -> ArchitectureSpec:
        """Return a copy with some keys replaced (checked again)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict (lists, strings, numbers); `from_dict` inverts it exactly."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, Enum):
                value = value.value
            elif f.name in ("kernel_sizes", "strides"):
                value = [list(row) for row in value]
            elif isinstance(value, tuple):
                value = list(value)
            out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ArchitectureSpec:
        """Build a spec from a dict as written by `to_dict` (unknown keys are an error)."""
        if not isinstance(data, dict):
            raise ArchitectureSpecError(f"architecture spec: expected a dict, found {type(data).__name__}")
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(data) - set(names))
        if unknown:
            raise ArchitectureSpecError(f"architecture spec: unknown key {unknown[0]!r}; valid: {', '.join(names)}")
        required = [f.name for f in dataclasses.fields(cls)
                    if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
        missing = [k for k in required if k not in data]
        if missing:
            raise ArchitectureSpecError(f"architecture spec: missing key {missing[0]!r}")
        return cls(**data)
