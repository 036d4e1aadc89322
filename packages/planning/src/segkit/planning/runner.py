"""The steps of ``segkit-plan`` as a Python API: verify, fingerprint, plan, preprocess.

Each step reads what the previous one wrote in the output folder and writes atomically,
so an interrupted run resumes: a finished fingerprint or plans file is reused when it
still matches, preprocessed cases that are complete are skipped, everything else is redone.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from segkit.io.atomic import atomic_path, output_folder
from segkit.io.dataset import Dataset
from segkit.io.errors import DatasetError
from segkit.planning.errors import FingerprintError, PlansError
from segkit.planning.fingerprint import Fingerprint, extract_fingerprint
from segkit.planning.pipeline import preprocess_dataset
from segkit.planning.planner import PLANNED_CONFIGURATIONS, PlanOptions, plan_dataset
from segkit.planning.plans import Plans

log = logging.getLogger(__name__)

FINGERPRINT_FILE = "fingerprint.json"
PLANS_FILE = "plans.json"
DATASET_FILE = "dataset.json"
SPLITS_FILE = "splits_final.json"
DEFAULT_CONFIGURATIONS = ("2d", "3d_fullres", "3d_lowres")

Progress = Callable[[str, int], contextlib.AbstractContextManager[Callable[[], None]]]
"""Opens a progress display for a step (description, total) and yields its advance callback."""


@contextlib.contextmanager
def no_progress(description: str, total: int) -> Iterator[Callable[[], None]]:
    """A `Progress` that shows nothing."""
    yield lambda: None


@dataclass(frozen=True)
class RunOptions:
    """Options of `plan_and_preprocess`.

    Args:
        workers: processes for verification, fingerprint and preprocessing.
        plan: planner options (preset, GPU memory, ...).
        configurations: configurations to preprocess, each of which the plans must hold (None: those of
            `DEFAULT_CONFIGURATIONS` they hold; a small dataset has no 3d_lowres).
        preprocess: whether to preprocess at all.
        verify: whether to verify the dataset first.
        device: where preprocessing resamples (``cpu`` or a GPU such as ``cuda``).
    """

    workers: int = 1
    plan: PlanOptions = PlanOptions()
    configurations: tuple[str, ...] | None = None
    preprocess: bool = True
    verify: bool = True
    device: str = "cpu"


def verify(dataset_dir: Path, *, workers: int, progress: Progress = no_progress) -> None:
    """Run segkit.io's dataset verification; raise `DatasetError` naming the problems.

    Raises:
        DatasetError: the dataset has problems (the message gives their number and the first ones).
    """
    from segkit.io.verify import verify_dataset

    dataset = Dataset.load(dataset_dir)
    with progress("verifying", len(dataset.training) + len(dataset.test)) as advance:
        problems = verify_dataset(dataset_dir, workers=workers, on_case_done=advance)
    if problems:
        for problem in problems:
            log.info("%s %s: %s", problem.case, problem.file, problem.message)
        shown = "; ".join(f"{p.file}: {p.message}" for p in problems[:3])
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        raise DatasetError(
            f"{dataset_dir}: {len(problems)} problem(s): {shown}{more}; see `segkit-dataset verify` for the full list"
        )


def fingerprint_step(dataset: Dataset, output: Path, *, workers: int, progress: Progress = no_progress) -> Fingerprint:
    """Return the dataset's fingerprint, reusing ``output/fingerprint.json`` if it covers the same cases."""
    fingerprint, new = _fingerprint(dataset, output, workers=workers, progress=progress)
    if new:
        output.mkdir(parents=True, exist_ok=True)
        fingerprint.save(output / FINGERPRINT_FILE)
    return fingerprint


def _fingerprint(dataset: Dataset, output: Path, *, workers: int, progress: Progress) -> tuple[Fingerprint, bool]:
    """The fingerprint `fingerprint_step` returns, and whether it is new (not yet saved)."""
    path = output / FINGERPRINT_FILE
    wanted = tuple(sorted(case.identifier for case in dataset.training))
    if path.is_file():
        try:
            existing = Fingerprint.load(path)
        except FingerprintError as err:
            log.warning("recomputing the fingerprint: %s", err)
        else:
            if existing.identifiers == wanted:
                log.info("using the existing %s", path)
                return existing, False
            log.info("the dataset's cases changed: recomputing the fingerprint")
    with progress("fingerprint", len(dataset.training)) as advance:
        return extract_fingerprint(dataset, workers=workers, on_case_done=advance), True


def plan_step(dataset: Dataset, fingerprint: Fingerprint, output: Path, *, options: PlanOptions) -> Plans:
    """Return the plans: ``output/plans.json`` if made with the same options, else new plans.

    New plans keep the configurations a user added to an existing file (e.g. ``3d_fullres_bs4``).
    """
    plans, new = _plans(dataset, fingerprint, output, options=options)
    if new:
        output.mkdir(parents=True, exist_ok=True)
        plans.save(output / PLANS_FILE)
    return plans


def _plans(dataset: Dataset, fingerprint: Fingerprint, output: Path, *, options: PlanOptions) -> tuple[Plans, bool]:
    """The plans `plan_step` returns, and whether they are new (not yet saved)."""
    path = output / PLANS_FILE
    plans = plan_dataset(fingerprint, dataset.info, options, dataset_name=dataset.root.name)
    if path.is_file():
        try:
            existing = Plans.load(path)
        except PlansError as err:
            log.warning("replanning: %s", err)
        else:
            if _same_options_and_data(existing, plans):
                log.info("using the existing %s", path)
                return existing, False
            added = {k: v for k, v in existing.configurations.items() if k not in plans.configurations}
            plans = Plans.from_dict({**plans.to_dict(), "configurations": {**plans.configurations, **added}})
    return plans, True


def _same_options_and_data(existing: Plans, new: Plans) -> bool:
    """Whether ``existing`` plans were made with ``new``'s options from the same dataset (name, cases, statistics)."""
    extra = ("planner", "gpu_memory_gb", "label_values")
    data = ("dataset_name", "original_median_shape", "original_median_spacing",
            "foreground_intensity_properties_per_channel")
    return all(existing.extra.get(k) == new.extra.get(k) for k in extra) and all(
        getattr(existing, k) == getattr(new, k) for k in data)


def copy_dataset_json(dataset: Dataset, output: Path) -> Path:
    """Write ``output/dataset.json`` (as nnU-Net's preprocessed folders hold it), for training to find."""
    path = output / DATASET_FILE
    output.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(dataset.info.to_dict(), indent=2))
    return path


def configurations_to_preprocess(plans: Plans, configurations: Sequence[str] | None) -> list[str]:
    """Return ``configurations``, or (None) those of `DEFAULT_CONFIGURATIONS` that the plans hold.

    Raises:
        PlansError: a named configuration is not in the plans.
    """
    if configurations is None:
        return [name for name in DEFAULT_CONFIGURATIONS if name in plans.configurations]
    missing = [name for name in configurations if name not in plans.configurations]
    if missing:
        raise PlansError(f"the plans hold no configuration {', '.join(map(repr, missing))}; they hold "
                         f"{', '.join(plans.configurations)}")
    return list(configurations)


def check_configuration_names(configurations: Sequence[str] | None, output: Path) -> None:
    """Refuse, before any work, a configuration that neither the planner nor ``output/plans.json`` can hold.

    Raises:
        PlansError: an unknown name (a typo), listing the valid ones.
    """
    known = list(PLANNED_CONFIGURATIONS)
    with contextlib.suppress(PlansError):
        if (output / PLANS_FILE).is_file():
            known += [name for name in Plans.load(output / PLANS_FILE).configurations if name not in known]
    unknown = [name for name in configurations or () if name not in known]
    if unknown:
        raise PlansError(f"unknown configuration {', '.join(map(repr, unknown))}; valid: {', '.join(known)} "
                         f"(add others to {PLANS_FILE} with inherits_from)")


def preprocess_step(
    dataset: Dataset,
    plans: Plans,
    output: Path,
    *,
    configurations: Sequence[str] | None,
    workers: int,
    device: str = "cpu",
    progress: Progress = no_progress,
) -> list[str]:
    """Preprocess ``configurations``, or (None) those of `DEFAULT_CONFIGURATIONS` that the plans hold; return those
    done. Writes ``output/dataset.json`` too, and each configuration's folder then holds exactly the dataset's cases.

    Raises:
        PlansError: a named configuration is not in the plans (checked before anything is written).
    """
    configurations = configurations_to_preprocess(plans, configurations)
    copy_dataset_json(dataset, output)
    warn_about_splits(dataset, output)
    done = []
    for name in configurations:
        with progress(f"preprocessing {name}", len(dataset.training)) as advance:
            preprocess_dataset(
                dataset, plans, configuration=name, output=output, workers=workers, device=device, on_case_done=advance
            )
        done.append(name)
    return done


def warn_about_splits(dataset: Dataset, output: Path) -> None:
    """Warn when ``output/splits_final.json`` (kept, as nnU-Net keeps it) names cases the dataset does not hold."""
    path = output / SPLITS_FILE
    try:
        splits = json.loads(path.read_text())
        named = {case for split in splits for key in ("train", "val") for case in split[key]}
    except (OSError, ValueError, TypeError, KeyError):
        return  # none, or malformed: training reports that
    unknown = sorted(named - {case.identifier for case in dataset.training})
    if unknown:
        log.warning("%s names %d case(s) that are not in the dataset (%s); training refuses it: delete it for new "
                    "splits, or edit it", path, len(unknown), ", ".join(unknown[:5]))


def plan_and_preprocess(
    dataset_dir: str | Path,
    output: str | Path,
    *,
    options: RunOptions = RunOptions(),
    progress: Progress = no_progress,
) -> Plans:
    """Verify, fingerprint, plan and (optionally) preprocess a dataset into ``output``.

    Raises:
        DatasetError: the dataset is inconsistent (nothing is written then).
        FileWriteError: ``output`` cannot be written.
        PlansError: a named configuration is not in the plans (nothing is written then).
    """
    dataset_dir = Path(dataset_dir)
    with output_folder(output) as output:  # unwritable: said before any work; a failed run leaves no new folder
        if options.preprocess:
            check_configuration_names(options.configurations, output)
        if options.verify:
            verify(dataset_dir, workers=options.workers, progress=progress)
        dataset = Dataset.load(dataset_dir)
        if not dataset.training:
            raise DatasetError(f"{dataset_dir}: no training cases in imagesTr")
        fingerprint, new_fingerprint = _fingerprint(dataset, output, workers=options.workers, progress=progress)
        plans, new_plans = _plans(dataset, fingerprint, output, options=options.plan)
        if options.preprocess:
            configurations_to_preprocess(plans, options.configurations)  # refused before anything is written
        if new_fingerprint:
            fingerprint.save(output / FINGERPRINT_FILE)
        if new_plans:
            plans.save(output / PLANS_FILE)
        if not options.preprocess:
            copy_dataset_json(dataset, output)
        else:
            preprocess_step(
                dataset,
                plans,
                output,
                configurations=options.configurations,
                workers=options.workers,
                device=options.device,
                progress=progress,
            )
    return plans
