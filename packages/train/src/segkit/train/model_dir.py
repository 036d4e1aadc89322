"""The model folder a run writes: checked before any work, then prepared, then recorded fold by fold.

A run writes nothing until every input has been checked (`check_model_folder` and the run's own checks), so a
run that fails on bad input leaves neither a new folder nor changed files behind. `prepare_fold` creates the
folders and removes the temporary files a killed run (``kill -9`` during an atomic write) left there.
"""

from __future__ import annotations

import json
import logging
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from segkit.io import atomic_path
from segkit.io.atomic import is_temp_name
from segkit.io.errors import FileWriteError
from segkit.io.model_folder import ModelFolderError, ModelInfo, fold_dir, read_model_info, write_model_info
from segkit.planning.errors import PlansError
from segkit.planning.plans import Plans
from segkit.train.config import TrainConfig
from segkit.train.errors import TrainDataError

log = logging.getLogger(__name__)


def check_model_folder(output: Path, data, config: TrainConfig) -> None:
    """Refuse a model folder whose other folds were trained with another trainer, configuration or plans.

    Args:
        output: the model folder (it may not exist yet).
        data: the run's `segkit.train.setup.DataSetup`.
        config: the run's trainer config.

    Raises:
        TrainDataError: the folder holds a model of another trainer/configuration, or its plans give the
            configuration other values (mixing them would make the folds disagree).
    """
    output = Path(output)
    if output.exists() and not output.is_dir():
        raise TrainDataError(f"{output}: exists and is not a folder; choose another model folder (-o)")
    try:
        info = read_model_info(output)
    except (ModelFolderError, OSError, ValueError, TypeError, KeyError):
        info = None
    name = data.configuration.name
    if info is not None and (info.trainer, info.configuration) != (config.name, name):
        raise TrainDataError(f"{output} holds folds {list(info.folds)} of trainer {info.trainer!r}, configuration "
                             f"{info.configuration!r}; this run is {config.name!r}, {name!r}: choose another -o")
    if not (output / "plans.json").is_file():
        return
    try:
        previous = Plans.load(output / "plans.json")
        same = (previous.configuration(name).to_dict() == data.configuration.to_dict()
                and previous.foreground_intensity_properties_per_channel
                == data.plans.foreground_intensity_properties_per_channel)
    except PlansError:
        same = False
    if not same:
        raise TrainDataError(f"{output}/plans.json gives configuration {name!r} other values than "
                             f"{data.preprocessed}/plans.json; its folds were trained with other plans: "
                             f"choose another -o")


def prepare_fold(output: Path, fold: int | str, data, *, fresh: bool) -> Path:
    """Create the model and fold folders, write plans/dataset/splits, remove stale temporary files.

    Args:
        fresh: the run starts at epoch 0, so the fold's old ``progress.jsonl`` is emptied.

    Raises:
        FileWriteError: the folder cannot be created or written (read-only, a file in the way).
    """
    folder = fold_dir(output, fold)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise FileWriteError(f"cannot create model folder {folder}: {err.strerror or err}") from err
    for name, payload in (("plans.json", data.plans.to_dict()), ("dataset.json", data.dataset.to_dict())):
        with atomic_path(Path(output) / name) as tmp:
            tmp.write_text(json.dumps(payload, indent=2))
    splits = data.preprocessed / "splits_final.json"
    if splits.is_file():
        with atomic_path(Path(output) / "splits_final.json") as tmp:
            tmp.write_text(splits.read_text())
    for where in (folder, folder / "validation"):
        remove_stale_temps(where)
    if fresh and (folder / "progress.jsonl").exists():
        (folder / "progress.jsonl").unlink()
    return folder


def remove_stale_temps(folder: Path) -> list[str]:
    """Delete the temporary files an interrupted atomic write left in `folder`; return their names."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed = []
    for path in folder.iterdir():
        if is_temp_name(path.name) and path.is_file():
            path.unlink(missing_ok=True)
            removed.append(path.name)
    if removed:
        log.info("removed %d temporary file(s) of an interrupted run from %s", len(removed), folder)
    return removed


def _versions() -> dict[str, str]:
    out = {}
    for dist_name in ("segkit-train", "segkit-nets", "segkit-planning", "segkit-io"):
        try:
            out[dist_name] = version(dist_name)
        except PackageNotFoundError:
            continue
    return out


def record_fold(output: Path, data, config: TrainConfig, fold: int | str) -> None:
    """Write the fold's train_config.json and add the fold to model.json."""
    with atomic_path(fold_dir(output, fold) / "train_config.json") as tmp:
        tmp.write_text(json.dumps(config.to_dict(), indent=2))
    folds: tuple = (fold,)
    try:
        previous = read_model_info(output)
        if previous.trainer == config.name and previous.configuration == data.configuration.name:
            folds = tuple(sorted(set(previous.folds) | {fold}, key=str))
    except ModelFolderError:
        pass
    conf = data.configuration
    axes = tuple(a for a in config.augmentation.mirror_axes if a < conf.dims)
    if conf.slice_axis is not None:  # 2D mirror axes are in-plane indices: name them in (i, j, k)
        in_plane = [a for a in range(3) if a != conf.slice_axis]
        axes = tuple(in_plane[a] for a in axes)
    labels = {k: v for k, v in data.dataset.labels.items()}
    info = ModelInfo(trainer=config.name, configuration=data.configuration.name, folds=folds, labels=labels,
                     mirroring_axes=axes, versions=_versions())
    write_model_info(info, output)
