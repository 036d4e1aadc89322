"""What the predictor needs to know about a model besides its weights (a frozen, checked contract)."""

from __future__ import annotations

from dataclasses import dataclass, field

from segkit.infer.errors import ModelLoadError
from segkit.planning.normalization import Scheme
from segkit.planning.plans import Resampling


@dataclass(frozen=True)
class ModelSetup:
    """Geometry, normalization and labels of a loaded model.

    All per-axis values are in the *network* axis order: the image's ``(i, j, k)`` axes permuted by
    ``axis_permutation`` (identity for segkit models and for nnU-Net models whose ``transpose_forward``
    is the identity).

    Args:
        configuration: configuration name (e.g. ``3d_fullres``).
        patch_size: network tile size.
        spacing: voxel spacing (mm) the network works at.
        normalization: one scheme per input channel.
        use_mask_for_norm: per channel, normalize only inside the nonzero mask.
        intensity_stats: channel index -> foreground statistics (CT normalization).
        labels: label name -> value, background 0; the network's output k is the k-th value in order.
        in_channels: number of image channels (a cascade stage's network gets one more per foreground label).
        mirror_axes: axes (network order) that test-time mirroring may flip.
        axis_permutation: ``network_axis -> image axis``.
        file_ending: file ending of the training data (``.nii.gz``).
        previous_stage: configuration whose prediction a cascade stage consumes, or None.
        resampling: interpolation orders for images and probabilities.
    """

    configuration: str
    patch_size: tuple[int, ...]
    spacing: tuple[float, ...]
    normalization: tuple[Scheme, ...]
    use_mask_for_norm: tuple[bool, ...]
    intensity_stats: dict[int, dict[str, float]]
    labels: dict[str, int]
    in_channels: int
    mirror_axes: tuple[int, ...] = ()
    axis_permutation: tuple[int, ...] = (0, 1, 2)
    file_ending: str = ".nii.gz"
    previous_stage: str | None = None
    resampling: Resampling = field(default_factory=Resampling)
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        dims = len(self.patch_size)
        if dims != 3:
            raise ModelLoadError(f"configuration {self.configuration!r} is {dims}D; only 3D models are supported")
        if len(self.spacing) != dims or sorted(self.axis_permutation) != list(range(dims)):
            raise ModelLoadError(f"configuration {self.configuration!r}: spacing {self.spacing} / axis permutation "
                                 f"{self.axis_permutation} do not fit a {dims}D patch")
        if len(self.normalization) != self.in_channels or len(self.use_mask_for_norm) != self.in_channels:
            raise ModelLoadError(f"configuration {self.configuration!r}: {len(self.normalization)} normalization "
                                 f"schemes for {self.in_channels} input channels")
        if self.labels.get("background") != 0:
            raise ModelLoadError("model labels must map 'background' to 0")
        bad = [a for a in self.mirror_axes if not 0 <= a < dims]
        if bad:
            raise ModelLoadError(f"mirror axes {bad} outside 0..{dims - 1}")

    @property
    def num_classes(self) -> int:
        """Number of network outputs (one per label)."""
        return len(self.labels)

    @property
    def label_values(self) -> tuple[int, ...]:
        """Label value of each network output, in output order."""
        return tuple(sorted(self.labels.values()))

    def to_dict(self) -> dict:
        """Return a JSON-friendly dict."""
        return {
            "configuration": self.configuration, "patch_size": list(self.patch_size), "spacing": list(self.spacing),
            "normalization": [s.value for s in self.normalization], "use_mask_for_norm": list(self.use_mask_for_norm),
            "intensity_stats": {str(k): dict(v) for k, v in self.intensity_stats.items()},
            "labels": dict(self.labels), "in_channels": self.in_channels, "mirror_axes": list(self.mirror_axes),
            "axis_permutation": list(self.axis_permutation), "file_ending": self.file_ending,
            "previous_stage": self.previous_stage, "resampling": self.resampling.to_dict(), "extra": dict(self.extra),
        }

    @classmethod
    def from_dict(cls, data: dict) -> ModelSetup:
        """Parse `to_dict`'s output."""
        return cls(
            configuration=data["configuration"], patch_size=tuple(data["patch_size"]), spacing=tuple(data["spacing"]),
            normalization=tuple(Scheme.parse(s) for s in data["normalization"]),
            use_mask_for_norm=tuple(bool(v) for v in data["use_mask_for_norm"]),
            intensity_stats={int(k): dict(v) for k, v in data["intensity_stats"].items()},
            labels={k: int(v) for k, v in data["labels"].items()}, in_channels=int(data["in_channels"]),
            mirror_axes=tuple(data["mirror_axes"]), axis_permutation=tuple(data["axis_permutation"]),
            file_ending=data.get("file_ending", ".nii.gz"), previous_stage=data.get("previous_stage"),
            resampling=Resampling.from_dict(data.get("resampling", {})), extra=dict(data.get("extra", {})),
        )
