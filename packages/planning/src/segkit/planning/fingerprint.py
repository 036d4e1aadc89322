"""Dataset fingerprint: per-case geometry and dataset-wide intensity and class statistics.

All per-axis values are in segkit's ``(i, j, k)`` order (the reverse of nnU-Net's).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from segkit.io import atomic_path, read_channels, read_image
from segkit.io.dataset import Case, Dataset
from segkit.planning.case_checks import check_case_arrays
from segkit.planning.cropping import crop_to_nonzero
from segkit.planning.errors import FingerprintError
from segkit.planning.intensity import Moments, intensity_properties, sample_values
from segkit.planning.parallel import map_cases

log = logging.getLogger(__name__)

DEFAULT_SAMPLE_BUDGET = 10_000_000
"""Foreground intensity samples kept over the whole dataset (per channel)."""


@dataclass(frozen=True)
class CaseFingerprint:
    """What planning needs to know about one case."""

    identifier: str
    spacing: tuple[float, ...]
    shape: tuple[int, ...]
    shape_after_crop: tuple[int, ...]
    class_voxel_counts: dict[int, int]
    moments: tuple[Moments, ...] = field(repr=False)
    samples: tuple[np.ndarray, ...] = field(repr=False)

    @property
    def relative_size_after_crop(self) -> float:
        """Voxels after cropping to the nonzero region over voxels before."""
        return float(np.prod(self.shape_after_crop, dtype=np.float64) / np.prod(self.shape, dtype=np.float64))


def fingerprint_case(case: Case, *, sample_limit: int = DEFAULT_SAMPLE_BUDGET,
                     label_values: tuple[int, ...] | None = None) -> CaseFingerprint:
    """Read one training case and compute its fingerprint.

    Args:
        case: the case (its channel files and label file).
        sample_limit: foreground intensity samples kept per channel.
        label_values: the label values dataset.json declares (None: not checked).

    Raises:
        FingerprintError: the case has no label file.
        PreprocessingError: labels of another shape, NaN/Inf voxels or undeclared label values.
    """
    if case.label_file is None:
        raise FingerprintError(f"{case.identifier}: a training case needs a label file")
    image = read_channels(case.image_files)
    data = image.array if image.array.ndim == 4 else image.array[None]
    seg = np.asarray(read_image(case.label_file).array)
    labels = np.rint(seg).astype(np.int32) if np.issubdtype(seg.dtype, np.floating) else seg
    check_case_arrays(case.identifier, data, labels, label_values=label_values)
    values, counts = np.unique(labels, return_counts=True)
    cropped, cropped_seg, _ = crop_to_nonzero(data, labels)
    foreground = cropped_seg > 0
    channel_values = [cropped[c][foreground] for c in range(cropped.shape[0])]
    return CaseFingerprint(
        identifier=case.identifier,
        spacing=tuple(float(s) for s in image.spacing),
        shape=tuple(int(s) for s in data.shape[1:]),
        shape_after_crop=tuple(int(s) for s in cropped.shape[1:]),
        class_voxel_counts={int(v): int(n) for v, n in zip(values, counts, strict=True)},
        moments=tuple(Moments.of(v) for v in channel_values),
        samples=tuple(sample_values(v, sample_limit).astype(np.float32) for v in channel_values),
    )


@dataclass(frozen=True)
class _Job:
    case: Case
    sample_limit: int
    label_values: tuple[int, ...] | None = None


def _run_job(job: _Job) -> CaseFingerprint:
    return fingerprint_case(job.case, sample_limit=job.sample_limit, label_values=job.label_values)


@dataclass(frozen=True)
class Fingerprint:
    """The dataset fingerprint (what ``fingerprint.json`` holds).

    Args:
        identifiers, spacings, shapes, shapes_after_crop: one entry per case, ``(i, j, k)``.
        intensity_properties: channel -> nnU-Net's foreground intensity properties.
        class_voxel_counts: label value -> voxels over the whole dataset.
        median_relative_size_after_cropping: median over cases of cropped/original voxels.
    """

    identifiers: tuple[str, ...]
    spacings: tuple[tuple[float, ...], ...]
    shapes: tuple[tuple[int, ...], ...]
    shapes_after_crop: tuple[tuple[int, ...], ...]
    intensity_properties: dict[int, dict[str, float]]
    class_voxel_counts: dict[int, int]
    median_relative_size_after_cropping: float

    def __post_init__(self) -> None:
        n = len(self.identifiers)
        if n == 0:
            raise FingerprintError("a fingerprint needs at least one case")
        if not len(self.spacings) == len(self.shapes) == len(self.shapes_after_crop) == n:
            raise FingerprintError(f"fingerprint lists differ in length (expected {n} cases each)")

    @property
    def median_spacing(self) -> tuple[float, ...]:
        """Median spacing per axis (mm)."""
        return tuple(float(v) for v in np.median(np.array(self.spacings), axis=0))

    @property
    def median_shape_after_crop(self) -> tuple[float, ...]:
        """Median shape per axis after cropping (voxels)."""
        return tuple(float(v) for v in np.median(np.array(self.shapes_after_crop), axis=0))

    @classmethod
    def from_cases(cls, cases: list[CaseFingerprint]) -> Fingerprint:
        """Combine per-case fingerprints (sorted by identifier) into the dataset fingerprint."""
        cases = sorted(cases, key=lambda c: c.identifier)
        num_channels = len(cases[0].moments)
        properties = {}
        for channel in range(num_channels):
            moments = Moments()
            for case in cases:
                moments = moments.merge(case.moments[channel])
            samples = np.concatenate([case.samples[channel] for case in cases])
            properties[channel] = intensity_properties(moments, samples)
        counts: dict[int, int] = {}
        for case in cases:
            for value, n in case.class_voxel_counts.items():
                counts[value] = counts.get(value, 0) + n
        return cls(
            identifiers=tuple(c.identifier for c in cases),
            spacings=tuple(c.spacing for c in cases),
            shapes=tuple(c.shape for c in cases),
            shapes_after_crop=tuple(c.shape_after_crop for c in cases),
            intensity_properties=properties,
            class_voxel_counts=dict(sorted(counts.items())),
            median_relative_size_after_cropping=float(np.median([c.relative_size_after_crop for c in cases])),
        )

    def to_dict(self) -> dict:
        """Return the JSON object (nnU-Net's keys where the meaning is the same)."""
        return {
            "axis_order": "ijk",
            "case_identifiers": list(self.identifiers),
            "spacings": [list(s) for s in self.spacings],
            "shapes_before_crop": [list(s) for s in self.shapes],
            "shapes_after_crop": [list(s) for s in self.shapes_after_crop],
            "foreground_intensity_properties_per_channel": {
                str(c): dict(p) for c, p in self.intensity_properties.items()
            },
            "class_voxel_counts": {str(v): n for v, n in self.class_voxel_counts.items()},
            "median_relative_size_after_cropping": self.median_relative_size_after_cropping,
            "median_spacing": list(self.median_spacing),
            "median_shape_after_crop": list(self.median_shape_after_crop),
        }

    @classmethod
    def from_dict(cls, data: dict) -> Fingerprint:
        """Parse the JSON object written by `to_dict`."""
        try:
            return cls(
                identifiers=tuple(data["case_identifiers"]),
                spacings=tuple(tuple(float(v) for v in s) for s in data["spacings"]),
                shapes=tuple(tuple(int(v) for v in s) for s in data["shapes_before_crop"]),
                shapes_after_crop=tuple(tuple(int(v) for v in s) for s in data["shapes_after_crop"]),
                intensity_properties={
                    int(c): {k: float(v) for k, v in p.items()}
                    for c, p in data["foreground_intensity_properties_per_channel"].items()
                },
                class_voxel_counts={int(v): int(n) for v, n in data["class_voxel_counts"].items()},
                median_relative_size_after_cropping=float(data["median_relative_size_after_cropping"]),
            )
        except (KeyError, TypeError, ValueError) as err:
            raise FingerprintError(f"malformed fingerprint ({err!r}); delete it and recompute") from err

    def save(self, path: str | os.PathLike) -> None:
        """Write the fingerprint as JSON (atomically)."""
        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps(self.to_dict(), indent=2))

    @classmethod
    def load(cls, path: str | os.PathLike) -> Fingerprint:
        """Read a fingerprint JSON file."""
        try:
            return cls.from_dict(json.loads(Path(path).read_text()))
        except (OSError, json.JSONDecodeError) as err:
            raise FingerprintError(f"{path}: cannot read fingerprint ({err})") from err


def extract_fingerprint(
    dataset: Dataset,
    *,
    workers: int = 1,
    sample_budget: int = DEFAULT_SAMPLE_BUDGET,
    on_case_done: Callable[[], None] | None = None,
) -> Fingerprint:
    """Fingerprint every training case of ``dataset`` in ``workers`` processes.

    Args:
        dataset: the raw dataset.
        workers: processes to use.
        sample_budget: foreground intensity samples kept per channel over all cases; when
            every foreground voxel fits, the percentiles are exact.
        on_case_done: called once per case (for progress bars).

    Raises:
        FingerprintError: the dataset has no training case.
        WorkerError: a worker died.
    """
    if not dataset.training:
        raise FingerprintError(f"{dataset.root}: no training cases in imagesTr")
    limit = max(1, sample_budget // len(dataset.training))
    jobs = [_Job(case, limit, dataset.info.label_values) for case in dataset.training]
    names = [case.identifier for case in dataset.training]
    results = []
    for _, result in map_cases(_run_job, jobs, workers=workers, names=names):
        results.append(result)
        if on_case_done is not None:
            on_case_done()
    return Fingerprint.from_cases(results)
