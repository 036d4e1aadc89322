"""What the preprocessed cases were made with, checked against the plans and ``dataset.json`` before a run writes.

Each case's JSON carries the hash of the configuration it was preprocessed with
(`segkit.planning.pipeline.configuration_hash`) and one class-location list per foreground label it holds. A
configuration trains on its own folder, or on the folder of a configuration it ``inherits_from`` where the hash
says the preprocessing is the same (the patch size aside: it only sets how the arrays are chunked on disk).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

from segkit.io.dataset import DatasetInfo
from segkit.planning.errors import PlansError
from segkit.planning.pipeline import configuration_hash
from segkit.planning.plans import Configuration, Plans
from segkit.train.data.store import complete_case_ids
from segkit.train.errors import TrainDataError


@dataclass(frozen=True)
class StoredCases:
    """The complete cases of one preprocessed folder: their ids, configuration hashes and foreground label values."""

    folder: Path
    case_ids: tuple[str, ...]
    hashes: frozenset[str]
    label_values: frozenset[int]

    @classmethod
    def read(cls, folder: Path) -> StoredCases:
        """Read the JSON of every case of `folder` whose arrays are there too (none: empty sets)."""
        folder = Path(folder)
        case_ids = complete_case_ids(folder)
        hashes, labels = set(), set()
        for path in (folder / f"{case_id}.json" for case_id in case_ids):
            try:
                header = json.loads(path.read_text())
                hashes.add(str(header["configuration_hash"]))
                labels.update(int(k) for k in header.get("class_locations", {}))
            except (OSError, ValueError, TypeError, KeyError, AttributeError) as err:
                raise TrainDataError(f"{path}: unreadable preprocessed case ({err}); preprocess again") from err
        return cls(folder, tuple(case_ids), frozenset(hashes), frozenset(labels))


def expected_hash(plans: Plans, configuration: str, owner: str) -> str:
    """The hash `configuration`'s cases carry when preprocessed as `owner`'s folder holds them ("" if they cannot).

    Args:
        owner: `configuration` itself or a configuration it inherits from (whose folder is looked at).
    """
    if owner == configuration:
        return configuration_hash(plans, configuration)
    entries = dict(plans.configurations)
    entries[configuration] = {**entries[configuration], "patch_size": list(plans.configuration(owner).patch_size)}
    try:
        return configuration_hash(dataclasses.replace(plans, configurations=entries), configuration)
    except PlansError:  # e.g. a 2D variant of a 3D configuration
        return ""


def configuration_cases(preprocessed: Path, plans: Plans, configuration: str) -> StoredCases:
    """Return the cases `configuration` trains on: its own folder's, else the nearest ``inherits_from`` one's,
    whichever was preprocessed with what the plans now give `configuration`.

    Raises:
        TrainDataError: no such folder (not preprocessed, or preprocessed with other plans).
    """
    found = []
    for owner in _inheritance_chain(plans, configuration):
        stored = StoredCases.read(preprocessed / owner)
        if not stored.hashes:
            continue
        if stored.hashes == {expected_hash(plans, configuration, owner)}:
            return stored
        found.append(f"{owner}/ holds cases preprocessed with other plans" if owner == configuration
                     else f"{owner}/, which it inherits from, holds cases preprocessed otherwise")
    detail = "; ".join(found) or f"no cases in {configuration}/"
    raise TrainDataError(f"{preprocessed}: {configuration} was not preprocessed, or preprocessed with other plans "
                         f"({detail}): run `segkit-plan preprocess DATASET_DIR -o {preprocessed} -c {configuration}`")


def _inheritance_chain(plans: Plans, configuration: str) -> list[str]:
    """`configuration` and the configurations it inherits from, nearest first (the plans rule out cycles)."""
    chain: list[str] = []
    current: str | None = configuration
    while current is not None and current in plans.configurations and current not in chain:
        chain.append(current)
        current = plans.configurations[current].get("inherits_from")
    return chain


def check_dataset_json(dataset: DatasetInfo, path: Path, configuration: Configuration, *, plans: Plans,
                       stored: StoredCases) -> None:
    """Refuse a ``dataset.json`` whose channels or labels do not fit the preprocessed data.

    Args:
        dataset: the run's ``dataset.json`` read from `path`.
        configuration: the configuration trained (its ``normalization_schemes``: one per channel).
        plans: the plans (``label_values``: what the dataset was planned with).
        stored: the cases trained on (their foreground label values).

    Raises:
        TrainDataError: another number of channels, or a label value of the data that `dataset` does not declare.
    """
    channels = len(configuration.normalization_schemes)
    if dataset.num_channels != channels:
        raise TrainDataError(f"{path}: {dataset.num_channels} channels, but {configuration.name} was preprocessed "
                             f"with {channels} (plans.json normalization_schemes); pass the dataset.json the "
                             f"dataset was planned with")
    held = set(stored.label_values) | {int(v) for v in plans.extra.get("label_values", [])}
    undeclared = sorted(held - set(dataset.label_values))
    if undeclared:
        raise TrainDataError(f"{path}: labels {list(dataset.label_values)} leave out label value(s) {undeclared} "
                             f"that the preprocessed cases hold; pass the dataset.json the dataset was planned with")
