"""Load a model folder (segkit's, or an nnU-Net v2 result folder) into networks plus a `ModelSetup`."""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path

from torch import nn

from segkit.infer.errors import ModelLoadError
from segkit.infer.model_setup import ModelSetup, check_background, parse_labels, parse_regions_class_order
from segkit.io.model_folder import NNUNET_CHECKPOINT, WEIGHTS_FILE, fold_dir, is_nnunet_result_folder, read_model_info
from segkit.nets import NetsError, checkpoint_configuration, load_nnunet_checkpoint, load_weights
from segkit.planning.normalization import Scheme
from segkit.planning.plans import Plans, Resampling

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoadedModel:
    """One network per fold (eval mode, CPU, float32) and the setup they share."""

    networks: tuple[nn.Module, ...]
    folds: tuple[int | str, ...]
    setup: ModelSetup


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError as err:
        raise ModelLoadError(f"model folder lacks {path.name} ({path})") from err
    except json.JSONDecodeError as err:
        raise ModelLoadError(f"{path}: invalid JSON ({err})") from err


def available_folds(folder: Path, file_name: str) -> tuple[int | str, ...]:
    """Return the folds that have ``fold_X/file_name``, integers first, then ``all``."""
    found = []
    for path in folder.glob(f"fold_*/{file_name}"):
        name = path.parent.name.removeprefix("fold_")
        found.append(int(name) if name.isdigit() else name)
    return tuple(sorted(found, key=lambda f: (isinstance(f, str), f if isinstance(f, int) else 0)))


def choose_folds(folder: Path, folds, file_name: str) -> tuple[int | str, ...]:
    """Return the requested folds; missing ones raise `ModelLoadError`.

    None asks for every numbered fold with ``fold_K/file_name``, as nnU-Net finds them: ``fold_all`` (trained on
    all cases) only when asked for, or when the folder has no other.
    """
    have = available_folds(folder, file_name)
    if folds is None:
        if not have:
            raise ModelLoadError(f"{folder}: no fold_*/{file_name} found")
        return tuple(f for f in have if f != "all") or have
    chosen = tuple(_fold(f) for f in ((folds,) if isinstance(folds, int | str) else folds))
    if not chosen:
        raise ModelLoadError("no folds given: name at least one, or none at all for every fold the folder has")
    repeated = sorted({str(f) for f in chosen if chosen.count(f) > 1})
    if repeated:
        raise ModelLoadError(f"fold(s) {', '.join(repeated)} given more than once")
    missing = [f for f in chosen if f not in have]
    if missing and not have:
        present = sorted({p.name for p in folder.glob(f"fold_*/*{Path(file_name).suffix}")})
        raise ModelLoadError(f"{folder}: no fold folder holds {file_name}"
                             + (f" (they hold {', '.join(present[:5])})" if present else ""))
    if missing:
        raise ModelLoadError(f"{folder}: fold(s) {missing} not found (no fold_K/{file_name}); available: {list(have)}")
    return chosen


def _fold(fold) -> int | str:
    """A fold number or ``"all"``, from an int or its text."""
    if fold == "all":
        return fold
    try:
        return int(fold)
    except (TypeError, ValueError):
        raise ModelLoadError(f"fold must be a number or 'all', got {fold!r}") from None


def _nnunet_resampling(config: dict) -> Resampling:
    data = config.get("resampling_fn_data_kwargs") or {}
    probs = config.get("resampling_fn_probabilities_kwargs") or {}
    seg = config.get("resampling_fn_seg_kwargs") or {}
    return Resampling(order_data=int(data.get("order", 3)), order_seg=int(seg.get("order", 1)),
                      order_probabilities=int(probs.get("order", 1)), order_z=int(data.get("order_z", 0)),
                      force_separate_z=data.get("force_separate_z"))


def nnunet_configuration(folder: Path, checkpoint: Path) -> str:
    """The configuration an nnU-Net result folder was trained as: the one its ``checkpoint`` names (as nnU-Net
    reads it, so a renamed or copied folder loads), else the last part of the folder's name
    (``TRAINER__PLANS__CONFIGURATION``)."""
    return checkpoint_configuration(checkpoint) or folder.name.rsplit("__", 1)[-1]


def nnunet_setup(folder: Path, configuration: str,
                 checkpoint_info_axes: tuple[int, ...] = ()) -> tuple[ModelSetup, dict, int]:
    """Return the setup of ``configuration`` of an nnU-Net v2 result folder, its architecture section and the class
    count."""
    plans = _read_json(folder / "plans.json")
    dataset = _read_json(folder / "dataset.json")
    configs = plans.get("configurations", {})
    if configuration not in configs:
        raise ModelLoadError(f"{folder}: configuration {configuration!r} (named by its checkpoint, or else by the "
                             f"folder's name) is not in plans.json (there: {', '.join(configs)})")
    config = dict(configs[configuration])
    while "inherits_from" in config:
        parent = config.pop("inherits_from")
        config = {**configs[parent], **config}
    labels = parse_labels(dataset.get("labels", {}))
    check_background(labels, f"{folder / 'dataset.json'}: 'labels'")
    tf = list(plans.get("transpose_forward", [0, 1, 2]))
    perm = tuple(2 - tf[2 - m] for m in range(3))
    channels = dataset.get("channel_names", dataset.get("modality", {}))
    setup = ModelSetup(
        configuration=configuration,
        patch_size=tuple(int(v) for v in config["patch_size"][::-1]),
        spacing=tuple(float(v) for v in config["spacing"][::-1]),
        normalization=tuple(Scheme.parse(s) for s in config["normalization_schemes"]),
        use_mask_for_norm=tuple(bool(v) for v in config["use_mask_for_norm"]),
        intensity_stats={int(k): {kk: float(vv) for kk, vv in v.items()}
                         for k, v in plans.get("foreground_intensity_properties_per_channel", {}).items()},
        labels=labels,
        in_channels=len(channels),
        mirror_axes=checkpoint_info_axes,
        axis_permutation=perm,
        file_ending=dataset.get("file_ending", ".nii.gz"),
        previous_stage=config.get("previous_stage"),
        resampling=_nnunet_resampling(config),
        slice_axis=2 if len(config["patch_size"]) == 2 else None,  # nnU-Net slices its first (transposed) axis
        regions_class_order=parse_regions_class_order(dataset.get("regions_class_order")),
    )
    return setup, config["architecture"], setup.num_classes


def _load_nnunet(folder: Path, folds, checkpoint: str) -> LoadedModel:
    chosen = choose_folds(folder, folds, checkpoint)
    configuration = nnunet_configuration(folder, fold_dir(folder, chosen[0]) / checkpoint)
    base, architecture, num_classes = nnunet_setup(folder, configuration)
    channels = base.in_channels + (num_classes - 1 if base.previous_stage else 0)
    networks, axes = [], None
    for fold in chosen:
        net, _, info = load_nnunet_checkpoint(fold_dir(folder, fold) / checkpoint, architecture,
                                              in_channels=channels, num_classes=num_classes)
        networks.append(net)
        axes = info.mirroring_axes if axes is None else tuple(a for a in axes if a in info.mirroring_axes)
    setup, _, _ = nnunet_setup(folder, configuration, tuple(axes or ()))
    return LoadedModel(networks=tuple(networks), folds=chosen, setup=setup)


def _load_segkit(folder: Path, folds) -> LoadedModel:
    info = read_model_info(folder)
    chosen = choose_folds(folder, folds if folds is not None else info.folds, WEIGHTS_FILE)
    plans = Plans.load(folder / "plans.json")
    config = plans.configuration(info.configuration)
    dataset = _read_json(folder / "dataset.json")
    stored = [load_weights(fold_dir(folder, fold) / WEIGHTS_FILE) for fold in chosen]
    labels = parse_labels(info.labels)
    setup = ModelSetup(
        configuration=info.configuration, patch_size=tuple(config.patch_size), spacing=tuple(config.spacing),
        normalization=tuple(config.normalization_schemes), use_mask_for_norm=tuple(config.use_mask_for_norm),
        intensity_stats=dict(plans.foreground_intensity_properties_per_channel), labels=labels,
        in_channels=stored[0].in_channels - (len(labels) - 1 if config.previous_stage else 0),
        mirror_axes=tuple(info.mirroring_axes),
        file_ending=dataset.get("file_ending", ".nii.gz"), previous_stage=config.previous_stage,
        resampling=config.resampling, slice_axis=config.slice_axis,
        regions_class_order=parse_regions_class_order(dataset.get("regions_class_order")),
    )
    return LoadedModel(networks=tuple(s.build() for s in stored), folds=chosen, setup=setup)


def load_model_folder(folder: str | Path, *, folds=None, checkpoint: str = NNUNET_CHECKPOINT) -> LoadedModel:
    """Load the networks of the chosen folds and the model's setup.

    Args:
        folder: a segkit model folder (``model.json``) or an nnU-Net v2 result folder.
        folds: folds to load (ints or ``"all"``); None for those of `choose_folds` (segkit: those in model.json).
        checkpoint: nnU-Net checkpoint file name in each fold folder (``checkpoint_final.pth``).

    Raises:
        ModelLoadError: not a model folder, missing folds or files, unsupported configuration, or weights that
            do not load (unreadable, or not the architecture the plans describe).
    """
    folder = Path(folder)
    if Path(checkpoint).name != checkpoint:
        raise ModelLoadError(f"checkpoint names a file in each fold_K folder (checkpoint_final.pth, "
                             f"checkpoint_best.pth), not a path: got {checkpoint}")
    kind = check_model_folder(folder, checkpoint=checkpoint)
    try:
        return _load_segkit(folder, folds) if kind == "segkit" else _load_nnunet(folder, folds, checkpoint)
    except NetsError as err:  # the message names the file, or else the folder is put in front
        raise ModelLoadError(str(err) if str(folder) in str(err) else f"{folder}: {err}") from err


ModelFolders = str | os.PathLike | Sequence[str | os.PathLike]  #: one model folder, or several to ensemble


def folder_list(given: ModelFolders) -> list[Path]:
    """``given`` as a list of folders."""
    return [Path(given)] if isinstance(given, str | os.PathLike) else [Path(f) for f in given]


def load_model_folders(folders: ModelFolders, *, folds=None, checkpoint: str = NNUNET_CHECKPOINT) -> LoadedModel:
    """Load the chosen folds of one model folder (`load_model_folder`) or of several as one model whose networks
    are all averaged, as folds are: seeds or trainers of one recipe, which must prepare a scan the same way (plans,
    labels, patch). Test-time mirroring keeps the axes that every folder allows.

    Raises:
        ModelLoadError: as `load_model_folder`, or folders whose setups differ.
    """
    folders = folder_list(folders)
    if not folders:
        raise ModelLoadError("no model folder given")
    models = [load_model_folder(folder, folds=folds, checkpoint=checkpoint) for folder in folders]
    first = models[0]
    for folder, model in zip(folders[1:], models[1:], strict=True):
        differ = _setup_differences(first.setup, model.setup)
        if differ:
            raise ModelLoadError(f"{folder} prepares scans other than {folders[0]} does ({', '.join(differ)} "
                                 "differ): ensemble their saved probabilities with segkit-ensemble instead")
    axes = tuple(a for a in first.setup.mirror_axes if all(a in m.setup.mirror_axes for m in models))
    return LoadedModel(networks=tuple(n for m in models for n in m.networks),
                       folds=tuple(f for m in models for f in m.folds), setup=replace(first.setup, mirror_axes=axes))


def _setup_differences(a: ModelSetup, b: ModelSetup) -> list[str]:
    """The fields of two setups that prepare or tile a scan differently (not their configuration's name or mirroring
    axes; foreground statistics only of channels that CT normalization scales with them)."""
    differ = [f.name for f in fields(ModelSetup) if f.name not in ("configuration", "mirror_axes", "intensity_stats")
              and getattr(a, f.name) != getattr(b, f.name)]
    ct_channels = [c for c, scheme in enumerate(a.normalization) if scheme is Scheme.CT]
    if any(a.intensity_stats.get(c) != b.intensity_stats.get(c) for c in ct_channels):
        differ.append("intensity_stats")
    return differ


def check_model_folder(folder: str | Path, *, checkpoint: str = NNUNET_CHECKPOINT) -> str:
    """Return the kind of model folder ``folder`` is: ``"segkit"`` (model.json) or ``"nnunet"`` (a result folder).

    Raises:
        ModelLoadError: it is missing, a file, or neither kind.
    """
    folder = Path(folder)
    if not folder.is_dir():
        if folder.suffix == ".zip" and folder.is_file():
            raise ModelLoadError(f"model folder is a zip file: {folder}; install it first with "
                                 f"`segkit-import {folder} TARGET_FOLDER` and give that folder")
        found = "is a file, not a folder" if folder.exists() else "not found"
        raise ModelLoadError(f"model folder {found}: {folder}")
    if (folder / "model.json").is_file():
        return "segkit"
    if is_nnunet_result_folder(folder) or any(folder.glob(f"fold_*/{checkpoint}")):
        return "nnunet"
    raise ModelLoadError(f"{folder} is neither a segkit model folder (model.json) nor an nnU-Net result folder "
                         f"(plans.json, dataset.json, fold_K/{checkpoint}){_model_folder_hint(folder, checkpoint)}")


def _model_folder_hint(folder: Path, checkpoint: str) -> str:
    """What the user may have meant by ``folder``: one fold of a model folder, or another checkpoint's folder."""
    fold = re.fullmatch(r"fold_(\d+|all)", folder.name)
    parent = folder.parent
    if fold and ((parent / "model.json").is_file() or (parent / "plans.json").is_file()):
        return f"; it is one fold of {parent}: give that folder with -f {fold.group(1)}"
    others = sorted({p.name for p in folder.glob("fold_*/*.pth")})
    if others and (folder / "plans.json").is_file():
        return f"; its folds hold {', '.join(others)}: choose one with --checkpoint (-chk)"
    return ""
