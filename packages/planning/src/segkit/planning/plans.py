"""Plans: one human-editable JSON per dataset with named configurations.

A configuration may hold only some keys plus ``inherits_from`` (another configuration's
name); `Plans.configuration` resolves the chain into a complete, typed `Configuration`.
So a user adds ``"3d_fullres_bs4": {"inherits_from": "3d_fullres", "batch_size": 4}``.
Per-axis values (``patch_size``, ``spacing``) are in segkit's ``(i, j, k)`` order; a 2D
configuration lists the two in-plane axes, and ``slice_axis`` says which axis it slices.
"""

from __future__ import annotations

import copy
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from segkit.io import atomic_path
from segkit.planning.architecture import ArchitectureSpec
from segkit.planning.errors import PlansError
from segkit.planning.normalization import Scheme

PLANS_FORMAT = "segkit-plans/1"


def dumps_readable(value, indent: int = 0) -> str:
    """Return JSON with objects (and long lists of text) indented, lists of numbers on one line.

    Example:
        >>> print(dumps_readable({"patch_size": [40, 56, 40], "strides": [[1, 1], [2, 2]]}))
        {
          "patch_size": [40, 56, 40],
          "strides": [[1, 1], [2, 2]]
        }
    """
    pad = "  " * (indent + 1)
    if isinstance(value, dict) and value:
        items = [f"{pad}{json.dumps(str(k))}: {dumps_readable(v, indent + 1)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + "  " * indent + "}"
    compact = json.dumps(value, separators=(", ", ": "))
    long_text = isinstance(value, list) and len(compact) > 100 and any(isinstance(v, str) for v in value)
    if isinstance(value, list) and (long_text or any(isinstance(v, dict) for v in value)):
        items = [pad + dumps_readable(v, indent + 1) for v in value]
        return "[\n" + ",\n".join(items) + "\n" + "  " * indent + "]"
    return compact


@dataclass(frozen=True)
class Resampling:
    """Interpolation orders: images, segmentations, probabilities; ``order_z`` along a coarse axis."""

    order_data: int = 3
    order_seg: int = 1
    order_probabilities: int = 1
    order_z: int = 0
    force_separate_z: bool | None = None

    def to_dict(self) -> dict:
        """Return the JSON object."""
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, data: dict) -> Resampling:
        """Parse the JSON object."""
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


@dataclass(frozen=True)
class Configuration:
    """One resolved configuration (see the module docstring for the axis conventions)."""

    name: str
    data_identifier: str
    batch_size: int
    patch_size: tuple[int, ...]
    spacing: tuple[float, ...]
    median_image_size_in_voxels: tuple[float, ...]
    normalization_schemes: tuple[Scheme, ...]
    use_mask_for_norm: tuple[bool, ...]
    architecture: ArchitectureSpec
    resampling: Resampling = field(default_factory=Resampling)
    batch_dice: bool = False
    slice_axis: int | None = None
    previous_stage: str | None = None
    next_stage: str | None = None

    def __post_init__(self) -> None:
        dims = self.architecture.dims
        if len(self.patch_size) != dims or len(self.spacing) != dims:
            raise PlansError(
                f"configuration {self.name!r}: patch_size and spacing need {dims} entries, "
                f"got {list(self.patch_size)} and {list(self.spacing)}"
            )
        if self.batch_size < 1:
            raise PlansError(f"configuration {self.name!r}: batch_size must be >= 1, got {self.batch_size}")
        if (dims == 2) != (self.slice_axis is not None):
            raise PlansError(f"configuration {self.name!r}: a 2D configuration needs slice_axis (and only it)")
        if len(self.use_mask_for_norm) != len(self.normalization_schemes):
            raise PlansError(f"configuration {self.name!r}: one use_mask_for_norm entry per channel is needed")

    @property
    def dims(self) -> int:
        """2 or 3."""
        return self.architecture.dims

    def to_dict(self) -> dict:
        """Return the configuration's JSON object (without its name)."""
        data = {
            "data_identifier": self.data_identifier,
            "batch_size": self.batch_size,
            "patch_size": list(self.patch_size),
            "spacing": list(self.spacing),
            "median_image_size_in_voxels": list(self.median_image_size_in_voxels),
            "normalization_schemes": [s.value for s in self.normalization_schemes],
            "use_mask_for_norm": list(self.use_mask_for_norm),
            "architecture": self.architecture.to_dict(),
            "resampling": self.resampling.to_dict(),
            "batch_dice": self.batch_dice,
        }
        optional = {"slice_axis": self.slice_axis, "previous_stage": self.previous_stage, "next_stage": self.next_stage}
        data.update({k: v for k, v in optional.items() if v is not None})
        return data

    @classmethod
    def from_dict(cls, name: str, data: dict) -> Configuration:
        """Parse a complete configuration object."""
        try:
            return cls(
                name=name,
                data_identifier=str(data.get("data_identifier", name)),
                batch_size=int(data["batch_size"]),
                patch_size=tuple(int(v) for v in data["patch_size"]),
                spacing=tuple(float(v) for v in data["spacing"]),
                median_image_size_in_voxels=tuple(float(v) for v in data.get("median_image_size_in_voxels", ())),
                normalization_schemes=tuple(Scheme.parse(s) for s in data["normalization_schemes"]),
                use_mask_for_norm=tuple(bool(v) for v in data["use_mask_for_norm"]),
                architecture=ArchitectureSpec.from_dict(data["architecture"]),
                resampling=Resampling.from_dict(data.get("resampling", {})),
                batch_dice=bool(data.get("batch_dice", False)),
                slice_axis=data.get("slice_axis"),
                previous_stage=data.get("previous_stage"),
                next_stage=data.get("next_stage"),
            )
        except KeyError as err:
            raise PlansError(f"configuration {name!r}: missing key {err.args[0]!r}") from err
        except (TypeError, ValueError) as err:
            raise PlansError(f"configuration {name!r}: malformed entry ({err})") from err


@dataclass(frozen=True)
class Plans:
    """A dataset's plans: shared facts plus named (possibly partial) configurations.

    ``configurations`` keeps each configuration's JSON object as written, so loading and
    saving is lossless and hand edits survive; read them through `configuration`.
    """

    dataset_name: str
    configurations: dict[str, dict]
    foreground_intensity_properties_per_channel: dict[int, dict[str, float]]
    original_median_spacing: tuple[float, ...]
    original_median_shape: tuple[float, ...]
    plans_name: str = "segkitPlans"
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.configurations:
            raise PlansError(f"plans of {self.dataset_name!r} hold no configuration")
        for name in self.configurations:
            self.configuration(name)

    @property
    def configuration_names(self) -> tuple[str, ...]:
        """Names of all configurations, in file order."""
        return tuple(self.configurations)

    def configuration(self, name: str) -> Configuration:
        """Return configuration ``name`` with its ``inherits_from`` chain resolved.

        Raises:
            PlansError: unknown name (the message lists the valid ones) or an inheritance cycle.
        """
        merged: dict = {}
        chain: list[str] = []
        current: str | None = name
        while current is not None:
            if current not in self.configurations:
                valid = ", ".join(self.configurations)
                raise PlansError(f"no configuration {current!r} in plans of {self.dataset_name!r}; valid: {valid}")
            if current in chain:
                raise PlansError(f"configuration {name!r}: inherits_from cycle {' -> '.join([*chain, current])}")
            chain.append(current)
            entry = self.configurations[current]
            merged = {**entry, **merged}
            current = entry.get("inherits_from")
        merged.pop("inherits_from", None)
        return Configuration.from_dict(name, merged)

    def to_dict(self) -> dict:
        """Return the plans JSON object."""
        return {
            "format": PLANS_FORMAT,
            "dataset_name": self.dataset_name,
            "plans_name": self.plans_name,
            "axis_order": "ijk",
            "original_median_spacing": list(self.original_median_spacing),
            "original_median_shape": list(self.original_median_shape),
            "configurations": copy.deepcopy(self.configurations),
            "foreground_intensity_properties_per_channel": {
                str(c): dict(p) for c, p in self.foreground_intensity_properties_per_channel.items()
            },
            **copy.deepcopy(self.extra),
        }

    @classmethod
    def from_dict(cls, data: dict) -> Plans:
        """Parse a plans JSON object."""
        known = {
            "format",
            "dataset_name",
            "plans_name",
            "axis_order",
            "original_median_spacing",
            "original_median_shape",
            "configurations",
            "foreground_intensity_properties_per_channel",
        }
        if not isinstance(data, dict):
            raise PlansError(f"plans: expected a JSON object, found {type(data).__name__}")
        if "transpose_forward" in data or "original_median_spacing_after_transp" in data:
            raise PlansError(
                "this is an nnU-Net v2 plans file, not segkit plans (axes (i, j, k), architecture spec): run "
                "`segkit-plan DATASET_DIR -o OUT_DIR` on the raw dataset; a trained nnU-Net model folder converts "
                "with `segkit-import`"
            )
        if data.get("format", PLANS_FORMAT) != PLANS_FORMAT:
            raise PlansError(f"plans format {data.get('format')!r} is not supported (expected {PLANS_FORMAT!r})")
        if data.get("axis_order", "ijk") != "ijk":
            raise PlansError(f"plans axis_order must be 'ijk', got {data.get('axis_order')!r}")
        try:
            return cls(
                dataset_name=str(data["dataset_name"]),
                plans_name=str(data.get("plans_name", "segkitPlans")),
                original_median_spacing=tuple(float(v) for v in data["original_median_spacing"]),
                original_median_shape=tuple(float(v) for v in data["original_median_shape"]),
                configurations={str(k): copy.deepcopy(dict(v)) for k, v in data["configurations"].items()},
                foreground_intensity_properties_per_channel={
                    int(c): {k: float(v) for k, v in p.items()}
                    for c, p in data["foreground_intensity_properties_per_channel"].items()
                },
                extra={k: v for k, v in data.items() if k not in known},
            )
        except KeyError as err:
            raise PlansError(f"plans: missing key {err.args[0]!r}") from err
        except (TypeError, ValueError, AttributeError) as err:
            raise PlansError(f"plans: malformed entry ({err})") from err

    def save(self, path: str | os.PathLike) -> None:
        """Write the plans as indented JSON (atomically)."""
        with atomic_path(path) as tmp:
            tmp.write_text(dumps_readable(self.to_dict()) + "\n")

    @classmethod
    def load(cls, path: str | os.PathLike) -> Plans:
        """Read a plans JSON file."""
        try:
            data = json.loads(Path(path).read_text())
        except OSError as err:
            raise PlansError(f"{path}: cannot read plans ({err.strerror})") from err
        except json.JSONDecodeError as err:
            raise PlansError(f"{path}: invalid JSON ({err})") from err
        try:
            return cls.from_dict(data)
        except PlansError as err:
            raise PlansError(f"{path}: {err}") from err
