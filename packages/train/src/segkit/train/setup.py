"""Build a run's parts from a preprocessed dataset folder: plans, store, split, network, loss, optimizer.

``PREPROCESSED_DIR`` holds ``plans.json``, ``dataset.json`` and one folder of preprocessed cases per
configuration (segkit.planning's layout); a configuration without its own folder uses the folder of the
configuration it ``inherits_from`` where that was preprocessed the same way (`segkit.train.data.provenance`).
``splits_final.json`` is read from there, or created there.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path

import torch

from segkit.io.dataset import DatasetInfo
from segkit.nets import ArchitectureSpec, build_network
from segkit.nets.weight_grad import use_fast_weight_grads
from segkit.planning.plans import Configuration, Plans
from segkit.train.augment import Augmenter
from segkit.train.config import TrainConfig
from segkit.train.data.batches import BatchPlan, PatchBatches
from segkit.train.data.provenance import check_dataset_json, configuration_cases
from segkit.train.data.splits import fold_cases, load_or_create_splits
from segkit.train.data.store import PreprocessedStore, read_json
from segkit.train.errors import TrainDataError
from segkit.train.losses import build_loss
from segkit.train.schedules import build_optimizer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DataSetup:
    """What a run reads from ``PREPROCESSED_DIR``."""

    plans: Plans
    dataset: DatasetInfo
    configuration: Configuration
    store: PreprocessedStore
    train_ids: list[str]
    val_ids: list[str]
    preprocessed: Path

    @classmethod
    def load(cls, preprocessed: Path, configuration: str, fold: int | str, config: TrainConfig, *,
             dataset_json: Path | None = None) -> DataSetup:
        """Read plans, dataset.json, the configuration's cases and the fold's split.

        ``dataset_json`` (a file, or a raw dataset folder holding one) replaces ``PREPROCESSED_DIR/dataset.json``.

        Raises:
            TrainDataError: not planned, not preprocessed (or with other plans), a dataset.json that does not fit
                the preprocessed data, or fold out of range.
        """
        preprocessed = Path(preprocessed)
        if not preprocessed.is_dir():
            raise TrainDataError(f"{preprocessed}: preprocessed folder does not exist")
        if not (preprocessed / "plans.json").is_file():
            raise TrainDataError(f"{preprocessed}: no plans.json (not planned: run `segkit-plan run DATASET_DIR -o "
                                 f"{preprocessed}` first)")
        plans = Plans.load(preprocessed / "plans.json")
        dataset_json = _dataset_json_path(preprocessed, dataset_json)
        dataset = DatasetInfo.from_dict(read_json(dataset_json, "dataset.json"))
        conf = plans.configuration(configuration)
        stored = configuration_cases(preprocessed, plans, configuration)
        check_dataset_json(dataset, dataset_json, conf, plans=plans, stored=stored)
        store = PreprocessedStore(stored.folder, stored.case_ids)  # the cases whose hash was checked
        splits = load_or_create_splits(preprocessed, store.case_ids, num_folds=config.num_folds, seed=config.split_seed)
        train_ids, val_ids = fold_cases(splits, fold, store.case_ids)
        missing = sorted(set(train_ids + val_ids) - set(store.case_ids))
        if missing:
            raise TrainDataError(f"split names {len(missing)} cases that are not preprocessed (first: {missing[0]})")
        return cls(plans, dataset, conf, store, train_ids, val_ids, preprocessed)

    @property
    def regions(self) -> tuple[tuple[int, ...], ...] | None:
        """Region label values per output channel, for region-based datasets (background excluded)."""
        if not self.dataset.has_regions:
            return None
        return tuple(v if isinstance(v, tuple) else (v,) for k, v in self.dataset.labels.items()
                     if k not in ("background", "ignore"))

    @property
    def num_outputs(self) -> int:
        """Network output channels: one per region, or one per label value (ignore excluded)."""
        if self.regions is not None:
            return len(self.regions)
        values = [v for k, v in self.dataset.labels.items() if k != "ignore"]
        return max(values) + 1

    def network_spec(self, config: TrainConfig) -> ArchitectureSpec:
        """The nets spec from the plans, with the trainer's overrides (norm, deep supervision)."""
        spec = ArchitectureSpec.from_dict(self.configuration.architecture.to_dict())
        changes = {"deep_supervision": config.deep_supervision}
        if config.norm is not None:
            changes["norm"] = config.norm
        return dataclasses.replace(spec, **changes)


def _dataset_json_path(preprocessed: Path, dataset_json: Path | None) -> Path:
    """``--dataset-json`` (a file, or a raw dataset folder holding one), else ``PREPROCESSED_DIR/dataset.json``."""
    if dataset_json is None:
        return preprocessed / "dataset.json"
    dataset_json = Path(dataset_json)
    return dataset_json / "dataset.json" if dataset_json.is_dir() else dataset_json


def as_3d(size: tuple[int, ...], slice_axis: int | None) -> tuple[int, ...]:
    """A 2D in-plane size as the 3D box to read (1 voxel thick along `slice_axis`); 3D sizes unchanged."""
    if slice_axis is None:
        return tuple(size)
    in_plane = iter(size)
    return tuple(1 if a == slice_axis else next(in_plane) for a in range(3))


def build_batches(data: DataSetup, config: TrainConfig, *, rank: int = 0, world: int = 1,
                  augment_on_device: bool = False) -> tuple[PatchBatches, PatchBatches | None, Augmenter]:
    """Training and validation batch sources for this rank, and the augmenter."""
    conf = data.configuration
    augmenter = Augmenter.build(config.augmentation, conf.patch_size, conf.spacing)
    common = {"oversample_foreground": config.oversample_foreground, "ignore_label": data.dataset.ignore_label}
    plan = BatchPlan.for_rank(conf.batch_size, rank, world, seed=config.seed, **common)
    train = PatchBatches(data.store, data.train_ids, plan, read_size=as_3d(augmenter.input_size, conf.slice_axis),
                         augmenter=None if augment_on_device else augmenter, slice_axis=conf.slice_axis)
    val = None
    if data.val_ids:
        val_plan = BatchPlan.for_rank(conf.batch_size, rank, world, seed=config.seed + 1, **common)
        val = PatchBatches(data.store, data.val_ids, val_plan, read_size=as_3d(conf.patch_size, conf.slice_axis),
                           augmenter=None, slice_axis=conf.slice_axis)
    return train, val, augmenter


def build_model_and_optimizer(data: DataSetup, config: TrainConfig, device: torch.device):
    """Network (from the plans spec), loss and optimizer, seeded by ``config.seed``."""
    spec = data.network_spec(config)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        model = build_network(spec, data.dataset.num_channels, data.num_outputs).to(device)
    if device.type == "cpu" and config.fast_weight_grads:
        use_fast_weight_grads(model)
    loss = build_loss(config, regions=data.regions, ignore_label=data.dataset.ignore_label,
                      batch_dice=data.configuration.batch_dice)
    return spec, model, loss, build_optimizer(config, model.parameters())
