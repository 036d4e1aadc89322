"""nnU-Net v2 raw dataset folders: ``dataset.json``, ``imagesTr``, ``labelsTr``, ``imagesTs``.

A case ``CASE`` with two channels is ``imagesTr/CASE_0000.nii.gz``, ``imagesTr/CASE_0001.nii.gz``
and ``labelsTr/CASE.nii.gz`` (the file ending comes from ``dataset.json``). Labels map
names to integer values, or to lists of values for region-based training.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from segkit.io.errors import DatasetError

IGNORE_LABEL_NAME = "ignore"


@dataclass(frozen=True)
class DatasetInfo:
    """The contents of ``dataset.json``.

    Args:
        channel_names: channel index -> modality name (``"CT"``, ``"MRI"``, ``"noNorm"``...).
        labels: label name -> value, or -> tuple of values for a region.
        file_ending: image file ending, e.g. ``".nii.gz"``.
        num_training: declared number of training cases.
        regions_class_order: for region-based datasets, the label painted by each region.
        extra: every other key of ``dataset.json``, kept for a lossless round trip.
    """

    channel_names: dict[int, str]
    labels: dict[str, int | tuple[int, ...]]
    file_ending: str
    num_training: int = 0
    regions_class_order: tuple[int, ...] | None = None
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.channel_names:
            raise DatasetError("dataset.json: 'channel_names' must name at least one channel")
        if sorted(self.channel_names) != list(range(len(self.channel_names))):
            raise DatasetError(
                f"dataset.json: channel indices must be 0..{len(self.channel_names) - 1}, "
                f"got {sorted(self.channel_names)}"
            )
        if self.labels.get("background") != 0:
            raise DatasetError("dataset.json: 'labels' must map 'background' to 0")
        if not self.file_ending.startswith("."):
            raise DatasetError(f"dataset.json: 'file_ending' must start with '.', got {self.file_ending!r}")
        if self.has_regions and self.regions_class_order is None:
            raise DatasetError("dataset.json: region labels (lists) need 'regions_class_order'")

    @property
    def num_channels(self) -> int:
        """Number of input channels per case."""
        return len(self.channel_names)

    @property
    def has_regions(self) -> bool:
        """Whether any label is a region (a list of values)."""
        return any(isinstance(v, tuple) for v in self.labels.values())

    @property
    def ignore_label(self) -> int | None:
        """Value of the ``ignore`` label (voxels without annotation), if declared."""
        value = self.labels.get(IGNORE_LABEL_NAME)
        return value if isinstance(value, int) else None

    @property
    def label_values(self) -> tuple[int, ...]:
        """Every voxel value a label file may hold, sorted (background and ignore included)."""
        values: set[int] = set()
        for value in self.labels.values():
            values.update(value if isinstance(value, tuple) else (value,))
        return tuple(sorted(values))

    @classmethod
    def from_dict(cls, data: dict) -> DatasetInfo:
        """Parse the JSON object of a ``dataset.json``."""
        known = {"channel_names", "modality", "labels", "file_ending", "numTraining", "regions_class_order"}
        if not isinstance(data, dict):
            raise DatasetError(f"dataset.json: expected a JSON object, found {type(data).__name__}")
        for key, example in (("channel_names", '{"0": "CT"}'), ("labels", '{"background": 0, "liver": 1}')):
            if not isinstance(data.get(key, data.get("modality") if key == "channel_names" else None), dict):
                raise DatasetError(f'dataset.json: missing or malformed "{key}" (expected an object such as {example})')
        try:
            channels = data.get("channel_names", data.get("modality"))
            labels = {name: parse_label_value(name, v) for name, v in data["labels"].items()}
            order = data.get("regions_class_order")
            return cls(
                channel_names={int(k): str(v) for k, v in channels.items()},
                labels=labels,
                file_ending=str(data["file_ending"]),
                num_training=int(data.get("numTraining", 0)),
                regions_class_order=tuple(int(v) for v in order) if order is not None else None,
                extra={k: v for k, v in data.items() if k not in known},
            )
        except (KeyError, AttributeError, TypeError, ValueError) as err:
            raise DatasetError(f"dataset.json: missing or malformed entry ({err})") from err

    def to_dict(self) -> dict:
        """Return the ``dataset.json`` object (nnU-Net v2 keys)."""
        data = {
            "channel_names": {str(k): v for k, v in self.channel_names.items()},
            "labels": {k: list(v) if isinstance(v, tuple) else v for k, v in self.labels.items()},
            "numTraining": self.num_training,
            "file_ending": self.file_ending,
        }
        if self.regions_class_order is not None:
            data["regions_class_order"] = list(self.regions_class_order)
        return {**data, **self.extra}

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> DatasetInfo:
        """Read a ``dataset.json`` file."""
        path = Path(path)
        try:
            return cls.from_dict(json.loads(path.read_text()))
        except FileNotFoundError as err:
            raise DatasetError(f"{path}: no dataset.json found") from err
        except json.JSONDecodeError as err:
            raise DatasetError(f"{path}: invalid JSON ({err})") from err


@dataclass(frozen=True)
class Case:
    """One case: its identifier, one image file per channel, and its label file if any."""

    identifier: str
    image_files: tuple[Path, ...]
    label_file: Path | None = None


@dataclass(frozen=True)
class Dataset:
    """An nnU-Net v2 raw dataset folder: its ``dataset.json`` and its cases.

    Example:
        >>> ds = Dataset.load("../shared/data/Dataset004_Hippocampus")  # doctest: +SKIP
        >>> len(ds.training), ds.info.num_channels  # doctest: +SKIP
        (220, 1)
    """

    root: Path
    info: DatasetInfo
    training: tuple[Case, ...]
    test: tuple[Case, ...] = ()

    @classmethod
    def load(cls, root: str | os.PathLike) -> Dataset:
        """Read ``dataset.json`` and list the cases of ``imagesTr`` (and ``imagesTs``).

        Raises:
            DatasetError: the folder is not an nnU-Net v2 raw dataset.
        """
        root = Path(root)
        if not root.is_dir():
            raise DatasetError(f"{root}: dataset folder does not exist")
        info = DatasetInfo.from_file(root / "dataset.json")
        if not (root / "imagesTr").is_dir():
            raise DatasetError(f"{root}: no imagesTr folder")
        training = tuple(
            Case(cid, files, root / "labelsTr" / f"{cid}{info.file_ending}")
            for cid, files in find_cases(root / "imagesTr", info).items()
        )
        test = tuple(Case(cid, files) for cid, files in find_cases(root / "imagesTs", info).items())
        return cls(root, info, training, test)


def find_cases(folder: Path, info: DatasetInfo) -> dict[str, tuple[Path, ...]]:
    """Map each case identifier in ``folder`` to its expected channel files (sorted by id).

    A case is any identifier with at least one ``ID_XXXX<file_ending>`` file; the files of
    all declared channels are listed whether or not they exist (verification reports gaps).
    """
    if not folder.is_dir():
        return {}
    pattern = re.compile(rf"^(?P<cid>.+)_(?P<channel>\d{{4}}){re.escape(info.file_ending)}$")
    identifiers = sorted({m["cid"] for p in folder.iterdir() if (m := pattern.match(p.name))})
    return {
        cid: tuple(folder / channel_file_name(cid, c, info.file_ending) for c in range(info.num_channels))
        for cid in identifiers
    }


def channel_file_name(identifier: str, channel: int, file_ending: str) -> str:
    """Name of one channel file: ``CASE_0000.nii.gz``."""
    return f"{identifier}_{channel:04d}{file_ending}"


def case_identifier(file_name: str, file_ending: str) -> str:
    """Case identifier of an image file name: its name without ``_XXXX`` and the ending.

    Example:
        >>> case_identifier("hippocampus_001_0000.nii.gz", ".nii.gz")
        'hippocampus_001'
    """
    stem = file_name[: -len(file_ending)] if file_name.endswith(file_ending) else file_name
    return re.sub(r"_\d{4}$", "", stem)


def parse_label_value(name: str, value) -> int | tuple[int, ...]:
    """A ``dataset.json`` label value: an integer, or a list of integers (a region) returned as a tuple.

    Raises:
        DatasetError: anything else.
    """
    if isinstance(value, list | tuple):
        return tuple(int(v) for v in value)
    if isinstance(value, bool) or not isinstance(value, int | float) or int(value) != value:
        raise DatasetError(f"dataset.json: label {name!r} must be an integer or a list of integers, got {value!r}")
    return int(value)
