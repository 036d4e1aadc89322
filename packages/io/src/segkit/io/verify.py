"""Check every case of an nnU-Net v2 raw dataset and report all problems found."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from segkit.io.cpus import available_cpus
from segkit.io.dataset import Case, Dataset, DatasetInfo
from segkit.io.errors import DatasetError, SegkitError
from segkit.io.image import Image
from segkit.io.reading import read_image

GEOMETRY_TOLERANCE = 1e-4


@dataclass(frozen=True)
class Problem:
    """One problem with one case (or the dataset as a whole when ``case`` is ``"*"``)."""

    case: str
    file: str
    message: str


def verify_dataset(
    root: str | os.PathLike,
    *,
    workers: int | None = None,
    on_case_done: Callable[[], None] | None = None,
) -> list[Problem]:
    """Check every case of the dataset in ``root``; return every problem found (empty if none).

    Checks: all channel files present and readable, channels and label on one grid (shape
    and affine within 1e-4 mm), label values declared in ``dataset.json``, no NaN/Inf,
    and the declared ``numTraining``.

    Args:
        root: dataset folder (``dataset.json``, ``imagesTr``, ``labelsTr``, optional ``imagesTs``).
        workers: processes to use (default: the CPUs available).
        on_case_done: called once per case checked (for progress bars).

    Raises:
        DatasetError: the folder itself is not a dataset (no dataset.json, no imagesTr).
    """
    dataset = Dataset.load(root)
    problems = list(_dataset_level_problems(dataset))
    cases = [(case, dataset.info) for case in dataset.training + dataset.test]
    workers = max(1, min(workers or available_cpus(), len(cases) or 1))
    for case_problems in _map_cases(cases, workers):
        problems.extend(case_problems)
        if on_case_done is not None:
            on_case_done()
    return problems


def verify_case(case: Case, info: DatasetInfo) -> list[Problem]:
    """Check one case (channels, label, grid, values); return its problems."""
    problems: list[Problem] = []
    images: list[tuple[Path, Image]] = []
    for path in case.image_files:
        image = _read(path, case, problems)
        if image is None:
            continue
        images.append((path, image))
        if image.num_channels != 1:
            problems.append(Problem(case.identifier, path.name, f"holds {image.num_channels} channels, expected 1"))
        if np.issubdtype(image.array.dtype, np.floating) and not np.all(np.isfinite(image.array)):
            problems.append(Problem(case.identifier, path.name, "contains NaN or Inf values"))
    if case.label_file is not None:
        label = _read(case.label_file, case, problems)
        if label is not None:
            images.append((case.label_file, label))
            problems.extend(_label_value_problems(case, label, info))
    problems.extend(_grid_problems(case, images))
    return problems


def _read(path: Path, case: Case, problems: list[Problem]) -> Image | None:
    if not path.exists():
        problems.append(Problem(case.identifier, path.name, "file is missing"))
        return None
    try:
        return read_image(path)
    except SegkitError as err:
        problems.append(Problem(case.identifier, path.name, str(err).removeprefix(f"{path}: ")))
        return None


def _label_value_problems(case: Case, label: Image, info: DatasetInfo) -> list[Problem]:
    array = label.array
    if np.issubdtype(array.dtype, np.floating):
        if not np.all(np.isfinite(array)):
            return [Problem(case.identifier, case.label_file.name, "label contains NaN or Inf values")]
        if not np.array_equal(array, np.round(array)):
            return [Problem(case.identifier, case.label_file.name, "label contains non-integer values")]
    found = set(np.unique(array).astype(np.int64).tolist())
    undeclared = sorted(found - set(info.label_values))
    if undeclared:
        declared = list(info.label_values)
        return [Problem(case.identifier, case.label_file.name,
                        f"label values {undeclared} are not declared in dataset.json (declared: {declared})")]
    return []


def _grid_problems(case: Case, images: list[tuple[Path, Image]]) -> list[Problem]:
    if len(images) < 2:
        return []
    (ref_path, ref), problems = images[0], []
    for path, image in images[1:]:
        if image.spatial_shape != ref.spatial_shape:
            problems.append(Problem(case.identifier, path.name,
                                    f"shape {image.spatial_shape} differs from {ref_path.name} {ref.spatial_shape}"))
        elif not image.same_grid(ref, tolerance=GEOMETRY_TOLERANCE):
            diff = float(np.abs(image.affine - ref.affine).max())
            problems.append(Problem(case.identifier, path.name,
                                    f"affine differs from {ref_path.name} by up to {diff:.3g} mm "
                                    f"(spacing {_fmt(image.spacing)} vs {_fmt(ref.spacing)})"))
    return problems


def _dataset_level_problems(dataset: Dataset) -> Iterator[Problem]:
    if not dataset.training:
        yield Problem("*", "imagesTr", f"no training images named CASE_0000{dataset.info.file_ending}")
    elif dataset.info.num_training and dataset.info.num_training != len(dataset.training):
        yield Problem("*", "dataset.json",
                      f"numTraining is {dataset.info.num_training} but imagesTr holds {len(dataset.training)} cases")
    for case in dataset.training + dataset.test:
        folder = case.image_files[0].parent
        for path in sorted(folder.glob(f"{case.identifier}_[0-9][0-9][0-9][0-9]{dataset.info.file_ending}")):
            if path not in case.image_files:
                yield Problem(case.identifier, path.name,
                              f"channel file not declared in dataset.json (it declares {dataset.info.num_channels})")
    ending = dataset.info.file_ending
    for images_dir in (dataset.root / "imagesTr", dataset.root / "imagesTs"):
        for path in sorted(images_dir.glob(f"*{ending}")):
            if not re.search(rf"_\d{{4}}{re.escape(ending)}$", path.name):
                yield Problem(path.name.removesuffix(ending), f"{images_dir.name}/{path.name}",
                              f"image without a channel suffix: name it CASE_0000{ending}")
    labels_dir = dataset.root / "labelsTr"
    known = {case.label_file.name for case in dataset.training}
    if labels_dir.is_dir():
        for path in sorted(labels_dir.iterdir()):
            if path.name.endswith(ending) and path.name not in known:
                yield Problem(path.name.removesuffix(ending), f"labelsTr/{path.name}",
                              f"label has no image (imagesTr/{path.name.removesuffix(ending)}_0000{ending})")


def _map_cases(cases: list[tuple[Case, DatasetInfo]], workers: int) -> Iterator[list[Problem]]:
    if workers == 1:
        yield from (verify_case(case, info) for case, info in cases)
        return
    with ProcessPoolExecutor(max_workers=workers) as pool:
        try:
            yield from pool.map(_verify_packed, cases, chunksize=max(1, len(cases) // (8 * workers)))
        except BrokenProcessPool as err:
            raise DatasetError("a verification worker died (out of memory?); rerun with --workers 1") from err


def _verify_packed(item: tuple[Case, DatasetInfo]) -> list[Problem]:
    return verify_case(*item)


def _fmt(values) -> str:
    return "x".join(f"{v:.4g}" for v in values)
