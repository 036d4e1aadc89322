"""Plan a dataset: the 2d, 3d_fullres, 3d_lowres and 3d_cascade_fullres configurations.

Per-axis values are in segkit's ``(i, j, k)`` order. Where nnU-Net breaks ties by axis
position, the tie goes the same way as in nnU-Net's reversed ``(z, y, x)`` order, so the
plans equal nnU-Net's with every per-axis list reversed.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from segkit.io.dataset import DatasetInfo
from segkit.planning.configuration_planner import Budget, PlannedNetwork, plan_network
from segkit.planning.errors import PlansError
from segkit.planning.fingerprint import Fingerprint
from segkit.planning.normalization import Scheme, scheme_for_channel
from segkit.planning.plans import Plans, Resampling
from segkit.planning.presets import get_preset
from segkit.planning.spacing import compute_new_shape, target_spacing

log = logging.getLogger(__name__)

PLANNED_CONFIGURATIONS = ("2d", "3d_fullres", "3d_lowres", "3d_cascade_fullres")
"""Every configuration the planner can make (3d_lowres and 3d_cascade_fullres only for large images)."""
LOWRES_THRESHOLD = 0.25
"""3d_lowres is made when a fullres patch covers less than this share of the median image."""
LOWRES_SPACING_STEP = 1.03
MASK_FOR_NORM_BELOW = 0.75
"""Z-score is masked to the nonzero region when cropping keeps less than this share of the voxels."""


@dataclass(frozen=True)
class PlanOptions:
    """Options of `plan_dataset`.

    Args:
        preset: planner preset name (``default``, ``resenc_m``, ``resenc_l``, ``resenc_xl``).
        gpu_memory_gb: GPU memory to plan for (default: the preset's, 8 GB for ``default``).
        plans_name: name stored in the plans and used in data identifiers.
        target_spacing: override the 3d_fullres spacing (mm, ``(i, j, k)``).
    """

    preset: str = "default"
    gpu_memory_gb: float | None = None
    plans_name: str = "segkitPlans"
    target_spacing: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        get_preset(self.preset)
        if self.gpu_memory_gb is not None and not self.gpu_memory_gb > 0:
            raise PlansError(f"--gpu-memory must be positive, got {self.gpu_memory_gb}")


def slice_axis(spacing: Sequence[float], median_shape: Sequence[float]) -> int:
    """Return the axis a 2D configuration slices: a flat axis (1 voxel) if any, else the coarsest (ties: the last)."""
    flat = [a for a, s in enumerate(median_shape) if s <= 1]
    if flat:
        return flat[0]
    values = np.asarray(spacing)
    return int(len(values) - 1 - np.argmax(values[::-1]))


def _nnunet_tie_order(axes: Sequence[int], first: int | None) -> list[int]:
    # nnU-Net's axis order: (z, y, x) = our axes reversed, with the coarse axis moved first.
    order = [a for a in reversed(axes) if a != first]
    return ([first] if first is not None else []) + order


def plan_dataset(
    fingerprint: Fingerprint,
    info: DatasetInfo,
    options: PlanOptions | None = None,
    *,
    dataset_name: str = "dataset",
) -> Plans:
    """Plan every configuration for a dataset from its fingerprint.

    Args:
        fingerprint: the dataset fingerprint.
        info: the dataset's ``dataset.json``.
        options: planner options.
        dataset_name: stored in the plans (usually the dataset folder's name).

    Returns:
        The plans; ``extra["decisions"]`` says in words what was decided and why.
    """
    options = options or PlanOptions()
    preset, default_gb = get_preset(options.preset)
    gpu_gb = options.gpu_memory_gb or default_gb
    budget = Budget(preset, gpu_gb, info.num_channels, len(info.labels))
    decisions: list[str] = []
    spacing = options.target_spacing or target_spacing(fingerprint.spacings, fingerprint.shapes_after_crop)
    median_spacing = fingerprint.median_spacing
    if any(abs(t - m) > 1e-6 for t, m in zip(spacing, median_spacing, strict=True)):
        decisions.append(
            f"target spacing {_fmt(spacing)} differs from the median {_fmt(median_spacing)} (anisotropy rule)"
        )
    new_shapes = [
        compute_new_shape(sh, sp, spacing)
        for sh, sp in zip(fingerprint.shapes_after_crop, fingerprint.spacings, strict=True)
    ]
    median_shape = tuple(float(v) for v in np.median(np.array(new_shapes, dtype=np.float64), axis=0))
    num_cases = len(fingerprint.identifiers)
    dataset_voxels = float(np.prod(median_shape, dtype=np.float64) * num_cases)
    axis2d = slice_axis(spacing, median_shape)
    tie3d = _nnunet_tie_order(range(3), axis2d)
    common = _common_entries(fingerprint, info, options.plans_name, decisions)
    configurations: dict[str, dict] = {}
    if median_shape[axis2d] > 1:
        fullres = plan_network(spacing, median_shape, budget=budget, dataset_voxels=dataset_voxels, tie_order=tie3d)
        configurations["3d_fullres"] = _entry("3d_fullres", fullres, spacing, median_shape, common)
        lowres = _plan_lowres(spacing, median_shape, fullres, budget=budget, num_cases=num_cases, tie_order=tie3d)
        if lowres is not None:
            low_spacing, low_shape, low_net = lowres
            configurations["3d_lowres"] = {
                **_entry("3d_lowres", low_net, low_spacing, low_shape, common),
                "next_stage": "3d_cascade_fullres",
            }
            configurations["3d_fullres"]["batch_dice"] = True
            configurations["3d_cascade_fullres"] = {"inherits_from": "3d_fullres", "previous_stage": "3d_lowres"}
            decisions.append(
                f"3d_lowres at spacing {_fmt(low_spacing)}: a fullres patch covers less than "
                f"{LOWRES_THRESHOLD:.0%} of the median image"
            )
        else:
            decisions.append("no 3d_lowres: fullres patches cover enough of the median image")
    else:
        decisions.append(f"2D dataset (axis {axis2d} is one voxel thick): only the 2d configuration")
    in_plane = [a for a in range(3) if a != axis2d]
    net2d = plan_network(
        [spacing[a] for a in in_plane],
        [median_shape[a] for a in in_plane],
        budget=budget,
        dataset_voxels=dataset_voxels,
        tie_order=_nnunet_tie_order(in_plane, None),
    )
    entry2d = _entry("2d", net2d, [spacing[a] for a in in_plane], [median_shape[a] for a in in_plane], common)
    configurations = {"2d": {**entry2d, "batch_dice": True, "slice_axis": axis2d}, **configurations}
    for name, entry in configurations.items():
        if "patch_size" in entry:
            decisions.append(
                f"{name}: patch {_fmt(entry['patch_size'])}, batch {entry['batch_size']}, "
                f"{len(entry['architecture']['features_per_stage'])} stages"
            )
    for line in decisions:
        log.info("%s", line)
    return Plans(
        dataset_name=dataset_name,
        plans_name=options.plans_name,
        configurations=configurations,
        foreground_intensity_properties_per_channel=fingerprint.intensity_properties,
        original_median_spacing=median_spacing,
        original_median_shape=fingerprint.median_shape_after_crop,
        extra={
            "planner": preset.name,
            "gpu_memory_gb": gpu_gb,
            "label_values": list(info.label_values),
            "decisions": decisions,
        },
    )


def _common_entries(fingerprint: Fingerprint, info: DatasetInfo, plans_name: str, decisions: list[str]) -> dict:
    schemes = [scheme_for_channel(info.channel_names[c]) for c in sorted(info.channel_names)]
    for channel, scheme in enumerate(schemes):
        stats = fingerprint.intensity_properties.get(channel, {})
        if scheme is Scheme.CT and not np.isfinite(stats.get("mean", float("nan"))):
            raise PlansError(
                f"channel {channel} uses CT normalization, which needs foreground intensities, but no training "
                "case has a foreground voxel; add labels or name the channel differently in dataset.json"
            )
    masked = fingerprint.median_relative_size_after_cropping < MASK_FOR_NORM_BELOW
    use_mask = [masked and s.zero_stays_zero_when_masked for s in schemes]
    decisions.append(
        "normalization: "
        + ", ".join(
            f"channel {c} ({info.channel_names[c]}) -> {s.value}{' masked' if m else ''}"
            for c, (s, m) in enumerate(zip(schemes, use_mask, strict=True))
        )
    )
    missing = [v for v in info.label_values if v != 0 and fingerprint.class_voxel_counts.get(v, 0) == 0]
    if missing:
        decisions.append(f"labels {missing} occur in no training case (planned anyway)")
    return {
        "plans_name": plans_name,
        "normalization_schemes": [s.value for s in schemes],
        "use_mask_for_norm": use_mask,
    }


def _entry(name: str, net: PlannedNetwork, spacing, median_shape, common: dict) -> dict:
    return {
        "data_identifier": f"{common['plans_name']}_{name}",
        "batch_size": net.batch_size,
        "patch_size": [int(v) for v in net.patch_size],
        "spacing": [float(v) for v in spacing],
        "median_image_size_in_voxels": [float(v) for v in median_shape],
        "normalization_schemes": list(common["normalization_schemes"]),
        "use_mask_for_norm": list(common["use_mask_for_norm"]),
        "architecture": net.architecture.to_dict(),
        "resampling": Resampling().to_dict(),
        "batch_dice": False,
    }


def _plan_lowres(spacing, median_shape, fullres: PlannedNetwork, *, budget: Budget, num_cases: int, tie_order):
    fullres_spacing = np.asarray(spacing, dtype=np.float64)
    median = np.asarray(median_shape, dtype=np.float64)
    median_voxels = float(np.prod(median))
    patch_voxels = float(np.prod(fullres.patch_size, dtype=np.float64))
    low_spacing = fullres_spacing.copy()
    result = None
    while patch_voxels / median_voxels < LOWRES_THRESHOLD:
        coarse = low_spacing.max() / low_spacing > 2
        if coarse.any():
            low_spacing[coarse] *= LOWRES_SPACING_STEP
        else:
            low_spacing *= LOWRES_SPACING_STEP
        low_shape = fullres_spacing / low_spacing * median
        median_voxels = float(np.prod(low_shape))
        rounded = tuple(float(round(v)) for v in low_shape)
        net = plan_network(
            tuple(low_spacing), rounded, budget=budget, dataset_voxels=median_voxels * num_cases, tie_order=tie_order
        )
        patch_voxels = float(np.prod(net.patch_size, dtype=np.float64))
        result = (tuple(float(v) for v in low_spacing), rounded, net)
    if result is not None and np.prod(median) / median_voxels < 2:
        return None
    return result


def _fmt(values) -> str:
    return "x".join(f"{v:.4g}" for v in values)
