"""Plan one configuration: topology, features, patch and batch size from a GPU memory budget."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from segkit.planning.architecture import ArchitectureSpec
from segkit.planning.errors import PlansError
from segkit.planning.memory import feature_map_size
from segkit.planning.presets import Preset
from segkit.planning.topology import Topology, plan_topology

INITIAL_EDGE_3D = 256
INITIAL_EDGE_2D = 2048


@dataclass(frozen=True)
class Budget:
    """What every configuration of one dataset is planned against.

    Args:
        preset: network family and memory calibration.
        gpu_memory_gb: GPU memory to plan for.
        num_channels: input channels.
        num_classes: output channels (labels including background).
    """

    preset: Preset
    gpu_memory_gb: float
    num_channels: int
    num_classes: int


@dataclass(frozen=True)
class PlannedNetwork:
    """The result of planning one configuration."""

    architecture: ArchitectureSpec
    patch_size: tuple[int, ...]
    batch_size: int
    estimate: int


def build_spec(topology: Topology, preset: Preset) -> ArchitectureSpec:
    """Return the preset's U-Net spec for a topology (features 32, doubling, capped)."""
    dims = len(topology.patch_size)
    cap = preset.max_features_3d if dims == 3 else preset.max_features_2d
    n = topology.num_stages
    return ArchitectureSpec(
        features_per_stage=tuple(min(cap, preset.base_features * 2**s) for s in range(n)),
        kernel_sizes=topology.kernel_sizes,
        strides=topology.strides,
        blocks_per_stage=preset.blocks_per_stage[:n],
        blocks_per_stage_decoder=preset.blocks_per_stage_decoder[: n - 1],
        block=preset.block,
    )


def initial_patch_size(spacing: Sequence[float], median_shape: Sequence[float]) -> tuple[float, ...]:
    """Return a patch with the spacing's aspect and the volume of 256**3 (2048**2 in 2D), clipped to the median."""
    inverse = 1 / np.asarray(spacing, dtype=np.float64)
    edge = INITIAL_EDGE_3D if len(spacing) == 3 else INITIAL_EDGE_2D
    scale = (edge ** len(spacing) / np.prod(inverse)) ** (1 / len(spacing))
    return tuple(min(float(round(v)), float(m)) for v, m in zip(inverse * scale, median_shape, strict=True))


def plan_network(
    spacing: Sequence[float],
    median_shape: Sequence[float],
    *,
    budget: Budget,
    dataset_voxels: float,
    tie_order: Sequence[int] | None = None,
) -> PlannedNetwork:
    """Choose the network, patch and batch size for one configuration.

    Starting from `initial_patch_size`, the patch shrinks along its most oversized axis
    (largest patch/median ratio) until the analytic activation estimate fits the budget;
    then the batch size fills the budget, at least the preset's minimum and covering at
    most ``max_dataset_covered`` of the dataset's voxels per step.

    Args:
        spacing: target spacing per axis (mm).
        median_shape: median image shape at that spacing (voxels).
        budget: memory budget and network family.
        dataset_voxels: approximate voxels of the whole dataset at that spacing.
        tie_order: axes ordered so that among equally oversized axes the last listed is
            shrunk first (nnU-Net's order; default: the given axis order reversed).
    """
    dims = len(spacing)
    preset = budget.preset
    tie_order = list(tie_order) if tie_order is not None else list(reversed(range(dims)))
    reference = preset.reference(dims, budget.gpu_memory_gb)
    reference_batch = preset.reference_batch(dims)
    topology = plan_topology(spacing, initial_patch_size(spacing, median_shape))
    spec = build_spec(topology, preset)
    estimate = feature_map_size(spec, topology.patch_size, num_classes=budget.num_classes)

    def too_big(value: int) -> bool:
        scaled = value / reference_batch * 2 if preset.scale_by_reference_batch else value
        return scaled > reference

    while too_big(estimate):
        patch = list(topology.patch_size)
        ratios = [patch[a] / median_shape[a] for a in range(dims)]
        worst = max(ratios)
        axis = [a for a in tie_order if ratios[a] == worst][-1]
        trial = list(patch)
        trial[axis] -= topology.divisor[axis]
        patch[axis] -= plan_topology(spacing, trial).divisor[axis]
        if patch[axis] < 1:
            raise PlansError(f"a {budget.gpu_memory_gb} GB GPU budget cannot fit even the smallest patch")
        topology = plan_topology(spacing, patch)
        spec = build_spec(topology, preset)
        estimate = feature_map_size(spec, topology.patch_size, num_classes=budget.num_classes)
    batch = round(reference / estimate * reference_batch)
    coverage_cap = round(dataset_voxels * preset.max_dataset_covered / np.prod(topology.patch_size, dtype=np.float64))
    batch = max(min(batch, coverage_cap), preset.min_batch_size)
    return PlannedNetwork(spec, topology.patch_size, int(batch), int(estimate))
