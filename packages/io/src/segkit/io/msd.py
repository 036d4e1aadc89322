"""Convert a Medical Segmentation Decathlon task folder to the nnU-Net v2 raw layout."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import zlib
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import NamedTuple

import nibabel as nib

from segkit.io.atomic import atomic_path, is_temp_name, output_folder
from segkit.io.cpus import available_cpus
from segkit.io.dataset import DatasetInfo, channel_file_name
from segkit.io.errors import DatasetError, FileWriteError, ImageReadError, one_line
from segkit.io.nifti import channel_count
from segkit.io.reading import read_image
from segkit.io.writing import write_image

MSD_ENDING = ".nii.gz"
OUT_FOLDERS = ("imagesTr", "labelsTr", "imagesTs")


class _Job(NamedTuple):
    """One case to convert: its MSD image, its label (None for a test case) and where the outputs go."""

    image: Path
    label: Path | None
    images_out: Path
    labels_out: Path
    num_channels: int

    def outputs(self) -> list[Path]:
        identifier = self.image.name.removesuffix(MSD_ENDING)
        files = [self.images_out / channel_file_name(identifier, c, MSD_ENDING) for c in range(self.num_channels)]
        return files + ([self.labels_out / self.label.name] if self.label is not None else [])


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
    ``channel_names``, the index->name label map becomes name->index). Every image's label
    and channel count are checked before anything is written; a conversion that fails
    removes what it wrote (and ``out_dir`` if it created it), so that it can be run again.

    Raises:
        DatasetError: ``task_dir`` is not an MSD task, has no training images, an image has
            no label or another number of channels than dataset.json, or ``out_dir`` is not empty.
        FileWriteError: ``out_dir`` is a file or cannot be created or written.
        ImageReadError: an image cannot be read.
    """
    task_dir, out_dir = Path(task_dir), Path(out_dir)
    info = msd_dataset_info(task_dir)
    jobs = _conversion_jobs(task_dir, out_dir, info.num_channels)
    _check_empty(out_dir)
    folders = [out_dir / f for f in OUT_FOLDERS if f != "imagesTs" or (task_dir / "imagesTs").is_dir()]
    with output_folder(out_dir):  # a file, or a folder that cannot be made or written: said before any work
        try:
            for folder in folders:
                folder.mkdir()
            _run(jobs, workers, on_case_done)
            info = DatasetInfo(info.channel_names, info.labels, info.file_ending,
                               sum(1 for j in jobs if j.label is not None), None, info.extra)
            with atomic_path(out_dir / "dataset.json") as tmp:
                tmp.write_text(json.dumps(info.to_dict(), indent=2))
        except BaseException:
            _remove_outputs(jobs, folders)  # then output_folder removes out_dir if this run made it
            raise
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


def _conversion_jobs(task_dir: Path, out_dir: Path, num_channels: int) -> list[_Job]:
    """The cases of ``task_dir``, checked cheaply (labels present, channel counts from the headers)."""
    training = _msd_images(task_dir / "imagesTr")
    if not training:
        found = "no imagesTr folder" if not (task_dir / "imagesTr").is_dir() else f"no *{MSD_ENDING} in imagesTr"
        raise DatasetError(f"{task_dir}: no training images ({found}); an MSD task keeps them in imagesTr/")
    missing = [image.name for image in training if not (task_dir / "labelsTr" / image.name).is_file()]
    if missing:
        more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        raise DatasetError(f"{task_dir / 'labelsTr'}: label of {', '.join(missing[:3])}{more} is missing; each "
                           "image in imagesTr needs a label of the same name in labelsTr")
    jobs = [_Job(image, task_dir / "labelsTr" / image.name, out_dir / "imagesTr", out_dir / "labelsTr", num_channels)
            for image in training]
    jobs += [_Job(image, None, out_dir / "imagesTs", out_dir / "labelsTr", num_channels)
             for image in _msd_images(task_dir / "imagesTs")]
    for job in jobs:
        found = _header_channels(job.image)
        if found != num_channels:
            raise DatasetError(f"{job.image}: has {found} channels, dataset.json declares {num_channels} "
                               "('modality'); fix the image or dataset.json")
    return jobs


def _header_channels(path: Path) -> int:
    """The number of channels `read_image` will find in a NIfTI file, from its header alone."""
    try:
        shape = nib.load(str(path)).header.get_data_shape()
    except (OSError, EOFError, zlib.error, ValueError, nib.filebasedimages.ImageFileError) as err:
        raise ImageReadError(f"{path}: not a readable NIfTI file ({one_line(err)})") from err
    return channel_count(shape)


def _check_empty(out_dir: Path) -> None:
    if not out_dir.is_dir():
        return  # missing (created later), or a file that `output_folder` reports
    try:
        full = any(out_dir.iterdir())
    except OSError as err:
        raise FileWriteError(f"output folder {out_dir} cannot be read ({err.strerror or err})") from err
    if full:
        raise DatasetError(f"{out_dir}: output folder is not empty")


def _run(jobs: list[_Job], workers: int | None, on_case_done: Callable[[], None] | None) -> None:
    with ProcessPoolExecutor(max_workers=max(1, workers or available_cpus())) as pool:
        for _ in pool.map(_convert_case, jobs):  # a failure cancels the cases not started; the pool then drains
            if on_case_done is not None:
                on_case_done()


def _remove_outputs(jobs: list[_Job], folders: list[Path]) -> None:
    """Remove the files a failed conversion wrote (and temp files a killed worker left), then its folders."""
    for path in (p for job in jobs for p in job.outputs()):
        with contextlib.suppress(OSError):
            path.unlink(missing_ok=True)
    for folder in folders:
        with contextlib.suppress(OSError):
            for path in folder.iterdir():
                if is_temp_name(path.name):
                    path.unlink(missing_ok=True)
            folder.rmdir()  # only if empty: a file this run did not write stays


def _convert_case(job: _Job) -> None:
    identifier = job.image.name.removesuffix(MSD_ENDING)
    if job.label is not None and not job.label.is_file():
        raise DatasetError(f"{job.label}: label of {job.image.name} is missing")
    image = read_image(job.image)
    if image.num_channels != job.num_channels:
        raise DatasetError(f"{job.image}: has {image.num_channels} channels, dataset.json declares "
                           f"{job.num_channels}")
    if job.num_channels == 1 and nib.load(str(job.image)).ndim == 3:
        _copy_atomic(job.image, job.images_out / channel_file_name(identifier, 0, MSD_ENDING))
    else:
        for channel in range(job.num_channels):
            write_image(image.channel(channel), job.images_out / channel_file_name(identifier, channel, MSD_ENDING))
    if job.label is not None:
        _copy_atomic(job.label, job.labels_out / job.label.name)


def _copy_atomic(source: Path, target: Path) -> None:
    with atomic_path(target) as tmp:
        shutil.copyfile(source, tmp)
