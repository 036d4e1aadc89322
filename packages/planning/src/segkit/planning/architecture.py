"""The architecture spec stored in plans: what segkit.nets builds (planning never imports nets).

Keys of the ``architecture`` dict: ``network`` ("unet"), ``dims`` (2 or 3),
``features_per_stage``, ``kernel_sizes`` and ``strides`` (per stage, per axis in segkit's
``(i, j, k)`` order; the first stride is all 1), ``blocks_per_stage`` (convs per encoder
stage for plain blocks, residual blocks per stage otherwise), ``blocks_per_stage_decoder``
(one fewer than the stages), ``block``, ``norm`` and ``deep_supervision``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from segkit.planning.errors import PlansError


class Block(str, enum.Enum):
    """Building block of the encoder stages."""

    PLAIN = "plain"
    RESIDUAL = "residual"
    REP = "rep"


class Norm(str, enum.Enum):
    """Normalization layer."""

    INSTANCE = "instance"
    BATCH = "batch"
    GROUP = "group"


def _parse(enum_type: type[enum.Enum], value: str, what: str):
    try:
        return enum_type(value)
    except ValueError as err:
        valid = ", ".join(v.value for v in enum_type)
        raise PlansError(f"unknown {what} {value!r}; valid: {valid}") from err


@dataclass(frozen=True)
class ArchitectureSpec:
    """A U-Net described by per-stage lists.

    Example:
        >>> spec = ArchitectureSpec.plain_unet(features_per_stage=(32, 64),
        ...     kernel_sizes=((3, 3), (3, 3)), strides=((1, 1), (2, 2)))
        >>> ArchitectureSpec.from_dict(spec.to_dict()) == spec
        True
    """

    features_per_stage: tuple[int, ...]
    kernel_sizes: tuple[tuple[int, ...], ...]
    strides: tuple[tuple[int, ...], ...]
    blocks_per_stage: tuple[int, ...]
    blocks_per_stage_decoder: tuple[int, ...]
    block: Block = Block.PLAIN
    norm: Norm = Norm.INSTANCE
    deep_supervision: bool = True
    network: str = "unet"

    def __post_init__(self) -> None:
        n = len(self.features_per_stage)
        if n < 1:
            raise PlansError("architecture: at least one stage is needed")
        for name in ("kernel_sizes", "strides", "blocks_per_stage"):
            if len(getattr(self, name)) != n:
                raise PlansError(
                    f"architecture: {name} needs {n} entries (one per stage), got {len(getattr(self, name))}"
                )
        if len(self.blocks_per_stage_decoder) != n - 1:
            raise PlansError(
                f"architecture: blocks_per_stage_decoder needs {n - 1} entries, "
                f"got {len(self.blocks_per_stage_decoder)}"
            )
        if self.dims not in (2, 3) or any(len(k) != self.dims for k in (*self.kernel_sizes, *self.strides)):
            raise PlansError("architecture: every kernel size and stride needs 2 or 3 axes, consistently")
        if any(s != 1 for s in self.strides[0]):
            raise PlansError(f"architecture: the first stage's stride must be all 1, got {list(self.strides[0])}")
        if self.network != "unet":
            raise PlansError(f"architecture: unknown network {self.network!r}; valid: unet")
        object.__setattr__(self, "block", _parse(Block, self.block, "block"))
        object.__setattr__(self, "norm", _parse(Norm, self.norm, "norm"))

    @classmethod
    def plain_unet(
        cls,
        *,
        features_per_stage: tuple[int, ...],
        kernel_sizes: tuple[tuple[int, ...], ...],
        strides: tuple[tuple[int, ...], ...],
    ) -> ArchitectureSpec:
        """Return nnU-Net's default U-Net: two plain convs per stage, instance norm."""
        n = len(features_per_stage)
        return cls(features_per_stage, kernel_sizes, strides, (2,) * n, (2,) * (n - 1))

    @property
    def dims(self) -> int:
        """Spatial dimensions (2 or 3)."""
        return len(self.kernel_sizes[0])

    @property
    def num_stages(self) -> int:
        """Number of encoder stages."""
        return len(self.features_per_stage)

    def to_dict(self) -> dict:
        """Return the ``architecture`` dict stored in plans."""
        return {
            "network": self.network,
            "dims": self.dims,
            "features_per_stage": list(self.features_per_stage),
            "kernel_sizes": [list(k) for k in self.kernel_sizes],
            "strides": [list(s) for s in self.strides],
            "blocks_per_stage": list(self.blocks_per_stage),
            "blocks_per_stage_decoder": list(self.blocks_per_stage_decoder),
            "block": self.block.value,
            "norm": self.norm.value,
            "deep_supervision": self.deep_supervision,
        }

    @classmethod
    def from_dict(cls, data: dict) -> ArchitectureSpec:
        """Parse an ``architecture`` dict (``dims`` is checked against the kernel sizes)."""
        try:
            spec = cls(
                features_per_stage=tuple(int(f) for f in data["features_per_stage"]),
                kernel_sizes=tuple(tuple(int(v) for v in k) for k in data["kernel_sizes"]),
                strides=tuple(tuple(int(v) for v in s) for s in data["strides"]),
                blocks_per_stage=tuple(int(b) for b in data["blocks_per_stage"]),
                blocks_per_stage_decoder=tuple(int(b) for b in data["blocks_per_stage_decoder"]),
                block=data.get("block", "plain"),
                norm=data.get("norm", "instance"),
                deep_supervision=bool(data.get("deep_supervision", True)),
                network=data.get("network", "unet"),
            )
        except (KeyError, TypeError, ValueError) as err:
            raise PlansError(f"architecture: missing or malformed entry ({err!r})") from err
        if "dims" in data and int(data["dims"]) != spec.dims:
            raise PlansError(f"architecture: dims is {data['dims']} but kernel sizes have {spec.dims} axes")
        return spec
