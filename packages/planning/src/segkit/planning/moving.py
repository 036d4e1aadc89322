"""Reuse one dataset's plans for another (pretrain on A, fine-tune on B with A's network)."""

from __future__ import annotations

import copy

from segkit.io.dataset import DatasetInfo
from segkit.planning.errors import PlansError
from segkit.planning.plans import Plans


def move_plans(plans: Plans, target: DatasetInfo, *, dataset_name: str, plans_name: str | None = None) -> Plans:
    """Return ``plans`` made for dataset ``dataset_name``: same configurations, new data identifiers.

    Patch sizes, spacings, architectures and the source's intensity statistics are kept,
    so the target is preprocessed exactly as the network was trained.

    Raises:
        PlansError: the target's channel count differs from the plans'.
    """
    name = plans_name or plans.plans_name
    configurations = copy.deepcopy(plans.configurations)
    for config_name, entry in configurations.items():
        resolved = plans.configuration(config_name)
        if len(resolved.normalization_schemes) != target.num_channels:
            raise PlansError(
                f"plans of {plans.dataset_name!r} expect {len(resolved.normalization_schemes)} channel(s), "
                f"{dataset_name!r} has {target.num_channels}"
            )
        if "data_identifier" in entry:
            entry["data_identifier"] = f"{name}_{config_name}"
    extra = {**copy.deepcopy(plans.extra), "moved_from": plans.dataset_name, "label_values": list(target.label_values)}
    return Plans(
        dataset_name=dataset_name,
        plans_name=name,
        configurations=configurations,
        foreground_intensity_properties_per_channel=copy.deepcopy(plans.foreground_intensity_properties_per_channel),
        original_median_spacing=plans.original_median_spacing,
        original_median_shape=plans.original_median_shape,
        extra=extra,
    )
