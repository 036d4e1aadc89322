"""What the predictor needs to know about a model besides its weights (a frozen, checked contract)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from segkit.infer.errors import InferError, ModelLoadError
from segkit.io.dataset import IGNORE_LABEL_NAME, parse_label_value
from segkit.planning.normalization import Scheme
from segkit.planning.plans import Resampling


@dataclass(frozen=True)
class ModelSetup:
    """Geometry, normalization and labels of a loaded model.

    All per-axis values are in the *network* axis order: the image's ``(i, j, k)`` axes permuted by
    ``axis_permutation`` (identity for segkit models and for nnU-Net models whose ``transpose_forward``
    is the identity). A 2D model (``slice_axis`` set) predicts a volume slice by slice; its ``patch_size``,
    ``spacing`` and ``mirror_axes`` then describe the two in-plane axes, in order.

    Args:
        configuration: configuration name (e.g. ``3d_fullres``).
        patch_size: network tile size.
        spacing: voxel spacing (mm) the network works at (a 2D model keeps the image's own along its slice axis).
        normalization: one scheme per input channel.
        use_mask_for_norm: per channel, normalize only inside the nonzero mask.
        intensity_stats: channel index -> foreground statistics (CT normalization).
        labels: label name -> value, background 0; the network's output k is the k-th value in order. A
            region-based model maps each name but background to the tuple of label values its region covers.
        in_channels: number of image channels (a cascade stage's network gets one more per foreground label).
        mirror_axes: axes of the network's input that test-time mirroring may flip.
        axis_permutation: ``network_axis -> image axis``.
        file_ending: file ending of the training data (``.nii.gz``).
        previous_stage: configuration whose prediction a cascade stage consumes, or None.
        resampling: interpolation orders for images and probabilities.
        slice_axis: for a 2D model, the (network order) axis of the volume that it slices; None for 3D.
        regions_class_order: for a region-based model (one sigmoid output per region), the label painted where
            each region's probability exceeds 0.5, later regions over earlier ones; None for softmax models.
    """

    configuration: str
    patch_size: tuple[int, ...]
    spacing: tuple[float, ...]
    normalization: tuple[Scheme, ...]
    use_mask_for_norm: tuple[bool, ...]
    intensity_stats: dict[int, dict[str, float]]
    labels: dict[str, int | tuple[int, ...]]
    in_channels: int
    mirror_axes: tuple[int, ...] = ()
    axis_permutation: tuple[int, ...] = (0, 1, 2)
    file_ending: str = ".nii.gz"
    previous_stage: str | None = None
    resampling: Resampling = field(default_factory=Resampling)
    extra: dict = field(default_factory=dict)
    slice_axis: int | None = None
    regions_class_order: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        dims = len(self.patch_size)
        if dims != (3 if self.slice_axis is None else 2) or self.slice_axis not in (None, 0, 1, 2):
            raise ModelLoadError(f"configuration {self.configuration!r}: a {dims}D patch with slice axis "
                                 f"{self.slice_axis}; expected a 3D patch, or a 2D patch and a slice axis 0-2")
        if len(self.spacing) != dims or sorted(self.axis_permutation) != [0, 1, 2]:
            raise ModelLoadError(f"configuration {self.configuration!r}: spacing {self.spacing} / axis permutation "
                                 f"{self.axis_permutation} do not fit a {dims}D patch")
        if len(self.normalization) != self.in_channels or len(self.use_mask_for_norm) != self.in_channels:
            raise ModelLoadError(f"configuration {self.configuration!r}: {len(self.normalization)} normalization "
                                 f"schemes for {self.in_channels} input channels")
        check_background(self.labels, "model labels")
        regions = [v for k, v in self.labels.items() if k != "background" and isinstance(v, tuple)]
        if self.regions_class_order is None and regions:
            raise ModelLoadError("region labels (lists of label values) need 'regions_class_order'")
        order = self.regions_class_order
        if order is not None and not len(regions) == len(self.labels) - 1 == len(order):
            raise ModelLoadError(f"labels {self.labels} and regions_class_order {list(order)} do not match: "
                                 f"every label but background must be a region, one per entry of the order")
        bad = [a for a in self.mirror_axes if not 0 <= a < dims]
        if bad:
            raise ModelLoadError(f"mirror axes {bad} outside 0..{dims - 1}")

    @property
    def in_plane_axes(self) -> tuple[int, ...]:
        """The volume axes (network order) that the network's spatial axes are: all three for a 3D model."""
        return tuple(a for a in range(3) if a != self.slice_axis)

    @property
    def tile_size(self) -> tuple[int, ...]:
        """The 3D sliding-window tile: the patch, one voxel thick along a 2D model's slice axis."""
        size = dict(zip(self.in_plane_axes, self.patch_size, strict=True))
        return tuple(size.get(a, 1) for a in range(3))

    @property
    def tile_mirror_axes(self) -> tuple[int, ...]:
        """`mirror_axes` as axes of the 3D tile."""
        return tuple(self.in_plane_axes[a] for a in self.mirror_axes)

    def network_spacing(self, image_spacing: tuple[float, ...]) -> tuple[float, ...]:
        """The 3D spacing the network works at, for an image of ``image_spacing`` (network order)."""
        spacing = dict(zip(self.in_plane_axes, self.spacing, strict=True))
        return tuple(float(spacing.get(a, image_spacing[a])) for a in range(3))

    @property
    def num_classes(self) -> int:
        """Number of network outputs (one per label; one per region, without background, for region models)."""
        return len(self.labels) - (self.regions_class_order is not None)

    @property
    def label_values(self) -> tuple[int, ...]:
        """The label value of each class index of a label map: of each output, or (0, *regions_class_order)."""
        return label_values_of(self.labels, self.regions_class_order)

    def to_dict(self) -> dict:
        """Return a JSON-friendly dict."""
        return {
            "configuration": self.configuration, "patch_size": list(self.patch_size), "spacing": list(self.spacing),
            "normalization": [s.value for s in self.normalization], "use_mask_for_norm": list(self.use_mask_for_norm),
            "intensity_stats": {str(k): dict(v) for k, v in self.intensity_stats.items()},
            "labels": {k: list(v) if isinstance(v, tuple) else v for k, v in self.labels.items()},
            "in_channels": self.in_channels, "mirror_axes": list(self.mirror_axes),
            "axis_permutation": list(self.axis_permutation), "file_ending": self.file_ending,
            "previous_stage": self.previous_stage, "resampling": self.resampling.to_dict(), "extra": dict(self.extra),
            "slice_axis": self.slice_axis,
            "regions_class_order": None if self.regions_class_order is None else list(self.regions_class_order),
        }

    @classmethod
    def from_dict(cls, data: dict) -> ModelSetup:
        """Parse `to_dict`'s output."""
        return cls(
            configuration=data["configuration"], patch_size=tuple(data["patch_size"]), spacing=tuple(data["spacing"]),
            normalization=tuple(Scheme.parse(s) for s in data["normalization"]),
            use_mask_for_norm=tuple(bool(v) for v in data["use_mask_for_norm"]),
            intensity_stats={int(k): dict(v) for k, v in data["intensity_stats"].items()},
            labels=parse_labels(data["labels"]), in_channels=int(data["in_channels"]),
            mirror_axes=tuple(data["mirror_axes"]), axis_permutation=tuple(data["axis_permutation"]),
            file_ending=data.get("file_ending", ".nii.gz"), previous_stage=data.get("previous_stage"),
            resampling=Resampling.from_dict(data.get("resampling", {})), extra=dict(data.get("extra", {})),
            slice_axis=data.get("slice_axis"),
            regions_class_order=parse_regions_class_order(data.get("regions_class_order")),
        )


def check_background(labels: dict, source: str) -> None:
    """Raise `ModelLoadError` unless ``labels`` maps ``background`` to 0; ``source`` says where they come from."""
    if labels.get("background") != 0:
        raise ModelLoadError(f"{source} must map 'background' to 0, got {labels or 'no labels'}")


def parse_labels(labels: dict) -> dict[str, int | tuple[int, ...]]:
    """``dataset.json``-style labels without ``ignore``: ints stay ints, region lists become tuples."""
    return {k: parse_label_value(k, v) for k, v in labels.items() if k != IGNORE_LABEL_NAME}


def label_values_of(labels: dict[str, int | tuple[int, ...]],
                    regions_class_order: tuple[int, ...] | None) -> tuple[int, ...]:
    """The label value of each class index: the sorted label values, or ``(0, *regions_class_order)``."""
    if regions_class_order is not None:
        return (0, *regions_class_order)
    return tuple(sorted(labels.values()))


def parse_regions_class_order(values) -> tuple[int, ...] | None:
    """``regions_class_order`` of a dataset.json as a tuple (None stays None)."""
    return None if values is None else tuple(int(v) for v in values)


def read_dataset_labels(path: str | os.PathLike) -> tuple[dict[str, int | tuple[int, ...]], tuple[int, ...] | None,
                                                          int | None]:
    """The labels (`parse_labels`), ``regions_class_order`` and ignore label of a ``dataset.json``.

    Raises:
        InferError: the file cannot be read or its labels are malformed.
    """
    try:
        data = json.loads(Path(path).read_text())
        ignore = data["labels"].get("ignore")
        return (parse_labels(data["labels"]), parse_regions_class_order(data.get("regions_class_order")),
                None if ignore is None else int(ignore))
    except (OSError, json.JSONDecodeError, KeyError, AttributeError, TypeError, ValueError) as err:
        raise InferError(f"{path}: cannot read its labels ({err})") from err
