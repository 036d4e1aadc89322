"""Planner presets: the network family and the GPU memory calibration that goes with it.

``default`` is nnU-Net's plain-conv U-Net planned for 8 GB; ``resenc_m``, ``resenc_l`` and
``resenc_xl`` are nnU-Net's residual-encoder presets for about 8, 24 and 40 GB. The
reference values are the activation counts (see `segkit.planning.memory`) that nnU-Net
found to fill that much GPU memory at the reference batch size.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from segkit.planning.architecture import Block
from segkit.planning.errors import PlansError


@dataclass(frozen=True)
class Preset:
    """How a planner family builds networks and maps GPU memory to activation counts."""

    name: str
    block: Block
    blocks_per_stage: tuple[int, ...]
    blocks_per_stage_decoder: tuple[int, ...]
    reference_3d: float
    reference_2d: float
    reference_gb: float
    max_dataset_covered: float
    scale_by_reference_batch: bool
    reference_batch_3d: int = 2
    reference_batch_2d: int = 12
    base_features: int = 32
    max_features_3d: int = 320
    max_features_2d: int = 512
    min_batch_size: int = 2

    def reference(self, dims: int, gpu_memory_gb: float) -> float:
        """Activation count that fits ``gpu_memory_gb`` at the reference batch size."""
        value = self.reference_3d if dims == 3 else self.reference_2d
        return value * gpu_memory_gb / self.reference_gb

    def reference_batch(self, dims: int) -> int:
        """Batch size the reference count corresponds to."""
        return self.reference_batch_3d if dims == 3 else self.reference_batch_2d


_ENCODER_RESENC = (1, 3, 4, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6)
_DEFAULT = Preset("default", Block.PLAIN, (2,) * 14, (2,) * 13, 560e6, 85e6, 8, 0.05, True)
_RESENC = dict(
    block=Block.RESIDUAL,
    blocks_per_stage=_ENCODER_RESENC,
    blocks_per_stage_decoder=(1,) * 12,
    max_dataset_covered=1.0,
    scale_by_reference_batch=False,
)


class PresetName(str, enum.Enum):
    """Names of the planner presets (CLI ``--preset``)."""

    DEFAULT = "default"
    RESENC_M = "resenc_m"
    RESENC_L = "resenc_l"
    RESENC_XL = "resenc_xl"


PRESETS: dict[PresetName, tuple[Preset, float]] = {
    PresetName.DEFAULT: (_DEFAULT, 8.0),
    PresetName.RESENC_M: (Preset("resenc_m", reference_3d=680e6, reference_2d=135e6, reference_gb=8, **_RESENC), 8.0),
    PresetName.RESENC_L: (
        Preset("resenc_l", reference_3d=2100e6, reference_2d=380e6, reference_gb=24, **_RESENC),
        24.0,
    ),
    PresetName.RESENC_XL: (
        Preset("resenc_xl", reference_3d=3600e6, reference_2d=560e6, reference_gb=40, **_RESENC),
        40.0,
    ),
}
"""Each preset with its default GPU memory budget (GB)."""


def get_preset(name: str) -> tuple[Preset, float]:
    """Return a preset and its default GPU memory (GB); unknown names list the valid ones."""
    try:
        return PRESETS[PresetName(name)]
    except ValueError as err:
        valid = ", ".join(p.value for p in PresetName)
        raise PlansError(f"unknown planner preset {name!r}; valid: {valid}") from err
