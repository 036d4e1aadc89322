"""Preprocess every training case of a dataset for one configuration, resumably and in parallel."""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from segkit.io import read_channels, read_image
from segkit.io.dataset import Case, Dataset
from segkit.planning.case_checks import check_case_arrays
from segkit.planning.parallel import map_cases
from segkit.planning.plans import Configuration, Plans
from segkit.planning.preprocessing import class_locations, preprocess_arrays
from segkit.planning.storage import CaseProperties, PreprocessedCase, remove_other_cases

log = logging.getLogger(__name__)


def configuration_hash(plans: Plans, name: str) -> str:
    """Hash of everything that changes a configuration's preprocessed data."""
    config = plans.configuration(name).to_dict()
    relevant = {
        k: config[k]
        for k in ("spacing", "normalization_schemes", "use_mask_for_norm", "resampling", "patch_size", "slice_axis")
        if k in config
    }
    relevant["intensity"] = plans.foreground_intensity_properties_per_channel
    return hashlib.sha256(json.dumps(relevant, sort_keys=True).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class _Job:
    case: Case
    configuration: Configuration
    intensity_properties: dict
    foreground_labels: tuple[int, ...]
    folder: Path
    config_hash: str
    device: str = "cpu"
    label_values: tuple[int, ...] | None = None


def preprocess_case(job: _Job) -> str:
    """Read, preprocess and store one case; return its identifier."""
    case = job.case
    image = read_channels(case.image_files)
    data = image.array if image.array.ndim == 4 else image.array[None]
    seg = np.asarray(read_image(case.label_file).array) if case.label_file is not None else None
    if seg is not None and np.issubdtype(seg.dtype, np.floating):
        seg = np.rint(seg)
    check_case_arrays(case.identifier, data, seg, label_values=job.label_values)
    result = preprocess_arrays(
        data,
        seg,
        spacing=image.spacing,
        configuration=job.configuration,
        intensity_properties=job.intensity_properties,
        device=job.device,
    )
    properties = CaseProperties(
        identifier=case.identifier,
        original_spacing=tuple(float(s) for s in image.spacing),
        original_shape=tuple(int(s) for s in data.shape[1:]),
        affine=tuple(tuple(float(v) for v in row) for row in image.affine),
        crop_box=result.crop_box,
        shape_after_crop=result.shape_after_crop,
        spacing=result.spacing,
        shape=tuple(int(s) for s in result.data.shape[1:]),
        class_locations=class_locations(result.seg, job.foreground_labels),
        configuration_hash=job.config_hash,
    )
    PreprocessedCase.write(
        job.folder, data=result.data, seg=result.seg, properties=properties, patch_size=_patch_3d(job.configuration)
    )
    return case.identifier


def _patch_3d(configuration: Configuration) -> tuple[int, ...]:
    if configuration.slice_axis is None:
        return configuration.patch_size
    in_plane = iter(configuration.patch_size)
    return tuple(1 if a == configuration.slice_axis else next(in_plane) for a in range(3))


def preprocess_dataset(
    dataset: Dataset,
    plans: Plans,
    *,
    configuration: str,
    output: str | os.PathLike,
    workers: int = 1,
    device: str = "cpu",
    on_case_done: Callable[[], None] | None = None,
) -> Path:
    """Preprocess all training cases into ``output/<configuration>/``; skip cases already done, remove other cases.

    A case is done when its arrays and properties exist and were made with the same
    configuration (its hash); anything else (missing, partial, stale) is redone. Cases of the folder that the
    dataset no longer holds are removed first (as nnU-Net empties the folder), so it holds exactly the dataset's.

    Args:
        dataset: the raw dataset.
        plans: its plans.
        configuration: configuration name (``inherits_from`` resolved).
        output: the output folder (the one holding ``plans.json``).
        workers: processes to use (a GPU ``device`` runs in this process: CUDA does not survive fork).
        device: where resampling runs (``cpu``, ``cuda``, ``cuda:1``...).
        on_case_done: called once per case, skipped ones included (for progress bars).

    Returns:
        The folder holding the preprocessed cases.
    """
    config = plans.configuration(configuration)
    folder = Path(output) / configuration
    folder.mkdir(parents=True, exist_ok=True)
    stale = remove_other_cases(folder, {case.identifier for case in dataset.training})
    if stale:
        log.warning("%s: removed %d preprocessed case(s) that are not in the dataset (%s)", configuration, len(stale),
                    ", ".join(stale[:5]) + (", ..." if len(stale) > 5 else ""))
    config_hash = configuration_hash(plans, configuration)
    ignore = dataset.info.ignore_label
    labels = tuple(v for v in plans.extra.get("label_values", dataset.info.label_values) if v > 0 and v != ignore)
    todo = []
    for case in dataset.training:
        if PreprocessedCase.is_complete(folder, case.identifier, config_hash):
            if on_case_done is not None:
                on_case_done()
        else:
            todo.append(
                _Job(
                    case,
                    config,
                    plans.foreground_intensity_properties_per_channel,
                    labels,
                    folder,
                    config_hash,
                    device,
                    dataset.info.label_values,
                )
            )
    if len(todo) < len(dataset.training):
        log.info(
            "%s: %d of %d cases already preprocessed",
            configuration,
            len(dataset.training) - len(todo),
            len(dataset.training),
        )
    names = [job.case.identifier for job in todo]
    if device != "cpu":
        workers = 1
    for _ in map_cases(preprocess_case, todo, workers=workers, names=names):
        if on_case_done is not None:
            on_case_done()
    return folder
