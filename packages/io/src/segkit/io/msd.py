"""Convert a Medical Segmentation Decathlon task folder to the nnU-Net v2 raw layout."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import nibabel as nib

from segkit.io.atomic import atomic_path
from segkit.io.cpus import available_cpus
from segkit.io.dataset import DatasetInfo, channel_file_name
from segkit.io.errors import DatasetError
from segkit.io.reading import read_image
from segkit.io.writing import write_image

MSD_ENDING = ".nii.gz"


def convert_msd(
    task_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    workers: int | None = None,
    on_case_done: Callable[[], None] | None = None,
) -> DatasetInfo:
    """Convert an MSD task (``TaskXX_Name``) into an nnU-Net v2 raw dataset in ``out_dir``.

    4D multi-modal images are split into one ``CASE_XXXX.nii.gz`` file per channel,
    labels are copied, and ``dataset.json`` is rewritten (``modality`` becomes
    ``channel_names``, the index->name label map becomes name->index).

    Raises:
        DatasetError: ``task_dir`` is not an MSD task, or ``out_dir`` is not empty.
    """
    task_dir, out_dir = Path(task_dir), Path(out_dir)
    info = msd_dataset_info(task_dir)
    if out_dir.exists() and any(out_dir.iterdir()):
        raise DatasetError(f"{out_dir}: output folder is not empty")
    jobs = []
    for split, target in (("imagesTr", "imagesTr"), ("imagesTs", "imagesTs")):
        for image in _msd_images(task_dir / split):
            label = task_dir / "labelsTr" / image.name if split == "imagesTr" else None
            jobs.append((image, label, out_dir / target, out_dir / "labelsTr", info.num_channels))
    for folder in ("imagesTr", "labelsTr") + (("imagesTs",) if (task_dir / "imagesTs").is_dir() else ()):
        (out_dir / folder).mkdir(parents=True, exist_ok=True)
    with ProcessPoolExecutor(max_workers=max(1, workers or available_cpus())) as pool:
        for _ in pool.map(_convert_case, jobs):
            if on_case_done is not None:
                on_case_done()
    info = DatasetInfo(info.channel_names, info.labels, info.file_ending,
                       sum(1 for j in jobs if j[1] is not None), None, info.extra)
    with atomic_path(out_dir / "dataset.json") as tmp:
        tmp.write_text(json.dumps(info.to_dict(), indent=2))
    return info


def msd_dataset_info(task_dir: Path) -> DatasetInfo:
    """Read an MSD ``dataset.json`` and express it as nnU-Net v2 `DatasetInfo`."""
    path = task_dir / "dataset.json"
    try:
        msd = json.loads(path.read_text())
        modality = msd["modality"]
        labels = {str(name): int(value) for value, name in msd["labels"].items()}
    except FileNotFoundError as err:
        raise DatasetError(f"{task_dir}: not an MSD task (no dataset.json)") from err
    except (json.JSONDecodeError, KeyError, ValueError, AttributeError) as err:
        raise DatasetError(f"{path}: not an MSD dataset.json (needs 'modality' and index->name 'labels')") from err
    labels = {("background" if value == 0 else name): value for name, value in labels.items()}
    extra = {k: msd[k] for k in ("name", "description", "reference", "licence", "release") if k in msd}
    return DatasetInfo({int(k): str(v) for k, v in modality.items()}, labels, MSD_ENDING, 0, None, extra)


def _msd_images(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.name.endswith(MSD_ENDING) and not p.name.startswith("."))


def _convert_case(job: tuple[Path, Path | None, Path, Path, int]) -> None:
    image_path, label_path, images_out, labels_out, num_channels = job
    identifier = image_path.name.removesuffix(MSD_ENDING)
    image = read_image(image_path)
    if image.num_channels != num_channels:
        raise DatasetError(f"{image_path}: has {image.num_channels} channels, dataset.json declares {num_channels}")
    if num_channels == 1 and nib.load(str(image_path)).ndim == 3:
        _copy_atomic(image_path, images_out / channel_file_name(identifier, 0, MSD_ENDING))
    else:
        for channel in range(num_channels):
            write_image(image.channel(channel), images_out / channel_file_name(identifier, channel, MSD_ENDING))
    if label_path is not None:
        if not label_path.is_file():
            raise DatasetError(f"{label_path}: label of {image_path.name} is missing")
        _copy_atomic(label_path, labels_out / label_path.name)


def _copy_atomic(source: Path, target: Path) -> None:
    with atomic_path(target) as tmp:
        shutil.copyfile(source, tmp)
