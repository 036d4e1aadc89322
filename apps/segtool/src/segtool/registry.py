"""The weights registry: task -> modes -> models, read from ``weights_registry.json``.

A task has a global label map (value -> class name) and up to three modes (``default``,
``fast``, ``fastest``), each a list of models. A multi-part mode runs every model on the
same image and paints their local labels into the global map, matched by class name, in
list order (a later part overwrites an earlier one). A sub-task's models run on a region
that another task's models find first (its ``crop``: TotalSegmentator's lung vessels run on
the lungs that ``total`` finds; that task may be a sub-task itself: teeth run on the teeth
that ``craniofacial_structures`` finds on the skull that ``total`` finds). A task's map may
be trimmed to a class of another task (its ``refine``). A task may come in other model
sizes: the same models trained with other plans (``model_sizes``: TotalSegmentator's
``total_v3`` small).
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from enum import Enum
from importlib import resources
from pathlib import Path

from segtool.cleanup import Cleanup, millimetres
from segtool.errors import SegtoolError, UnknownTaskError, did_you_mean


class Mode(str, Enum):
    """Speed/resolution trade-off of a task."""

    DEFAULT = "default"
    FAST = "fast"
    FASTEST = "fastest"

    @classmethod
    def of_flags(cls, fast: bool, fastest: bool) -> Mode:
        """The mode that TotalSegmentator's ``--fast`` / ``--fastest`` flags ask for."""
        if fast and fastest:
            raise SegtoolError("choose either --fast or --fastest, not both")
        return cls.FASTEST if fastest else cls.FAST if fast else cls.DEFAULT


#: the model size every task has: its models as the registry lists them
BIG = "big"


class ModelFormat(str, Enum):
    """How a model folder is laid out."""

    SEGKIT = "segkit"
    NNUNETV2 = "nnunetv2"


Spacing = float | tuple[float, float, float]  #: one spacing (mm) for all axes, or one per canonical axis


class InputResampling(str, Enum):
    """Who brings the scan to the model's spacing."""

    PREDICTOR = "predictor"  # segkit.infer, as nnU-Net does it
    TOTALSEGMENTATOR = "totalsegmentator"  # `segtool.totalseg_grid`, as TotalSegmentator does it


class LabelExport(str, Enum):
    """How a model's labels return to the input grid."""

    RESAMPLE = "resample"
    NEAREST = "nearest"


@dataclass(frozen=True)
class ModelEntry:
    """One downloadable model: where it lives, how to check it, how to run it.

    Args:
        name: folder name of the model inside its zip (and in the weights dir).
        url: http(s) URL, or a path relative to the registry file.
        sha256: expected digest of the zip, or None when unknown (reported as unverified).
        size: zip size in bytes, or None when unknown.
        format: `ModelFormat` of the folder inside the zip.
        trainer, plans, configuration: locate the result folder inside an nnU-Net zip.
        folds: folds to ensemble (None: every fold the installed folder holds).
        spacing_mm: spacing the model expects: one for all axes, or per axis of the canonical (RAS) scan, as
            TotalSegmentator gives its resampling (for ``predictor`` resampling informational; plans decide).
        step_size: sliding-window step as a fraction of the patch.
        mirroring: whether test-time mirroring is used by default.
        shift_tta: translation test-time augmentation by default, in voxels (`segkit.infer.PredictOptions`'s
            ``shift_tta``; 0: none).
        precision: network precision by default (``auto``, ``fp32``, ``bf16``, ``fp16``, or ``nnunet``:
            fp32 on CPU and fp16 autocast on CUDA, as nnU-Net itself runs).
        label_export: ``resample`` (logits back to the input grid, then argmax) or ``nearest``
            (argmax at the model's spacing, labels back by nearest neighbour, as TotalSegmentator does).
        labels: local label value -> class name.
        input_resampling: `InputResampling`: ``predictor`` (default) or ``totalsegmentator`` (needs
            ``spacing_mm``; the scan is resampled once per spacing and shared by the parts).
    """

    name: str
    url: str
    sha256: str | None
    size: int | None
    format: ModelFormat
    trainer: str
    plans: str
    configuration: str
    folds: tuple[int | str, ...] | None
    spacing_mm: Spacing | None
    step_size: float
    mirroring: bool
    labels: dict[int, str]
    precision: str = "auto"
    label_export: LabelExport = LabelExport.RESAMPLE
    input_resampling: InputResampling = InputResampling.PREDICTOR
    shift_tta: int = 0

    @classmethod
    def from_dict(cls, data: dict) -> ModelEntry:
        """Parse one model object of the registry."""
        folds = data.get("folds", [0])
        return cls(
            name=data["name"], url=data["url"], sha256=data.get("sha256"), size=data.get("size"),
            format=ModelFormat(data.get("format", "segkit")), trainer=data.get("trainer", ""),
            plans=data.get("plans", ""), configuration=data.get("configuration", "3d_fullres"),
            folds=None if folds is None else tuple(folds), spacing_mm=_spacing(data.get("spacing_mm")),
            step_size=float(data.get("step_size", 0.5)), mirroring=bool(data.get("mirroring", True)),
            labels={int(k): v for k, v in data["labels"].items()}, precision=data.get("precision", "auto"),
            label_export=LabelExport(data.get("label_export", "resample")),
            input_resampling=InputResampling(data.get("input_resampling", "predictor")),
            shift_tta=data.get("shift_tta", 0),
        )

    def __post_init__(self) -> None:
        if self.input_resampling is InputResampling.TOTALSEGMENTATOR and not self.spacing_mm:
            raise ValueError(f"model {self.name!r}: input_resampling 'totalsegmentator' needs spacing_mm")
        if isinstance(self.shift_tta, bool) or not isinstance(self.shift_tta, int) or self.shift_tta < 0:
            raise ValueError(f"model {self.name!r}: shift_tta must be a whole number of voxels >= 0, got "
                             f"{self.shift_tta!r}")

    @property
    def result_folder(self) -> str:
        """Path of the model folder relative to the installed root (nnU-Net: trainer__plans__config)."""
        if self.format is ModelFormat.NNUNETV2:
            return f"{self.name}/{self.trainer}__{self.plans}__{self.configuration}"
        return self.name


@dataclass(frozen=True)
class Crop:
    """The region a sub-task's models run on, as TotalSegmentator crops its sub-tasks: the box around ``classes`` in
    the map of another ``task``'s models, widened by ``margin_mm`` (whole voxels of the scan).

    Args:
        task: the task whose models find the region (``total``, ``total_mr``, ``body``).
        classes: its classes whose box is the region.
        margin_mm: the box's margin on every side.
        mode: that task's mode that finds them; None: its fastest models, or its fast ones for MR or with
            ``robust_crop``, as for a ROI subset.
    """

    task: str
    classes: tuple[str, ...]
    margin_mm: float = 20.0
    mode: Mode | None = None

    @classmethod
    def from_dict(cls, data: dict) -> Crop:
        """Parse a task's ``crop`` object of the registry."""
        mode = data.get("mode")
        return cls(data["task"], tuple(data["classes"]), millimetres(data.get("margin_mm", 20.0), "crop margin_mm"),
                   None if mode is None else Mode(mode))


@dataclass(frozen=True)
class Refine:
    """A task's map trimmed to what another task's default models find, as TotalSegmentator refines
    ``vertebrae_pp``: every label grown by ``grow_mm`` (into background), then kept only inside ``class_name`` of
    ``task`` (`segtool.vertebrae.trim_to`), on the scan's grid."""

    task: str
    class_name: str
    grow_mm: float = 0.0

    @classmethod
    def from_dict(cls, data: dict) -> Refine:
        """Parse a task's ``refine`` object of the registry."""
        if set(data) - {"task", "class", "grow_mm"}:
            raise ValueError(f"refine takes task, class and grow_mm, got {data!r}")
        return cls(data["task"], data["class"], millimetres(data.get("grow_mm", 0.0), "refine grow_mm"))


@dataclass(frozen=True)
class Task:
    """A segmentation task: modality, global labels and models per mode.

    ``label_orders`` holds other numberings of the classes, matched by name (``v1``: TotalSegmentator v1's);
    ``cleanup`` the connected-component clean-up of each model's map (`Cleanup`); ``crop`` the region a sub-task's
    models run on (`Crop`; None: the whole scan); ``refine`` what its map is trimmed to (`Refine`; None: nothing);
    ``model_sizes`` other sizes of its models (size -> the plans they were trained with; `BIG`, the models as listed,
    is always there).
    """

    name: str
    modality: str
    labels: dict[int, str]
    modes: dict[Mode, tuple[ModelEntry, ...]]
    description: str = ""
    label_orders: dict[str, dict[int, str]] = field(default_factory=dict)
    cleanup: Cleanup = Cleanup()
    crop: Crop | None = None
    model_sizes: dict[str, str] = field(default_factory=dict)
    refine: Refine | None = None

    def __post_init__(self) -> None:
        unknown = sorted({*self.cleanup.keep_largest, *self.cleanup.min_component_mm3} - set(self.labels.values()))
        if unknown:
            raise ValueError(f"task {self.name!r}: cleanup names classes it does not have: {', '.join(unknown)}")
        if self.cleanup.separate_vertebrae and sorted(self.labels) != list(range(1, len(self.labels) + 1)):
            raise ValueError(f"task {self.name!r}: separate_vertebrae needs the vertebrae numbered 1, 2, ... top down")
        if BIG in self.model_sizes:
            raise ValueError(f"task {self.name!r}: model size {BIG!r} is the models as listed, not one of model_sizes")
        if self.model_sizes and any(m.format is not ModelFormat.NNUNETV2 for m in self.all_models()):
            raise ValueError(f"task {self.name!r}: model sizes choose nnU-Net plans; all its models must be nnunetv2")

    def models(self, mode: Mode | str = Mode.DEFAULT) -> tuple[ModelEntry, ...]:
        """Models of ``mode``; raises `UnknownTaskError` listing the modes this task has."""
        mode = Mode(mode)
        if mode not in self.modes:
            raise UnknownTaskError(
                f"task {self.name!r} has no {mode.value!r} mode; it has: {', '.join(m.value for m in self.modes)}"
            )
        return self.modes[mode]

    @property
    def sizes(self) -> list[str]:
        """The model sizes this task comes in, `BIG` first."""
        return [BIG, *self.model_sizes]

    def sized(self, size: str | None) -> Task:
        """This task with the models of ``size`` (None or `BIG`: as listed; another: the same models with the plans
        of that size, installed from the same zips); raises `UnknownTaskError` for a size it lacks."""
        if size in (None, BIG):
            return self
        if size not in self.model_sizes:
            raise UnknownTaskError(f"task {self.name!r} has no {size!r} model size; it has: {', '.join(self.sizes)}")
        plans = self.model_sizes[size]
        return dataclasses.replace(self, modes={mode: tuple(dataclasses.replace(m, plans=plans) for m in models)
                                                for mode, models in self.modes.items()})

    @property
    def class_names(self) -> list[str]:
        """Class names in label order (background excluded)."""
        return [self.labels[v] for v in sorted(self.labels)]

    def all_models(self) -> tuple[ModelEntry, ...]:
        """Every model of every mode, each once."""
        seen: dict[str, ModelEntry] = {}
        for models in self.modes.values():
            for model in models:
                seen.setdefault(model.name, model)
        return tuple(seen.values())


@dataclass(frozen=True)
class Registry:
    """All tasks of a ``weights_registry.json``; ``source`` is the file it came from."""

    tasks: dict[str, Task]
    source: Path

    def task(self, name: str) -> Task:
        """The task called ``name``; unknown names list the choices and the closest match."""
        if name not in self.tasks:
            raise UnknownTaskError(f"unknown task {name!r}{did_you_mean(name, self.tasks)}; "
                                   f"available: {', '.join(sorted(self.tasks))}")
        return self.tasks[name]

    def crop_finder(self, task: Task, robust: bool = False) -> tuple[Task, Mode] | None:
        """The task and mode whose models find the region a sub-task runs on (``robust``: TotalSegmentator's
        ``robust_crop``); None for a task that runs on the whole scan."""
        if task.crop is None:
            return None
        finder = self.task(task.crop.task)
        return finder, task.crop.mode or locating_mode(finder, robust)

    def helpers(self, task: Task) -> list[tuple[str, Task, Mode]]:
        """(role, task, mode) of every other task's models that running ``task`` needs: those that find its region
        (``crop``, and theirs in turn) and those its map is trimmed to (``refine``)."""
        needed = []
        if task.refine is not None:
            needed.append(("refine", self.task(task.refine.task), Mode.DEFAULT))
        found = self.crop_finder(task)
        while found is not None:
            needed.append(("crop", *found))
            found = self.crop_finder(found[0])
        return needed

    def resolve_url(self, url: str) -> str:
        """An absolute URL: http(s) as is, anything else relative to the registry file's folder."""
        if url.startswith(("http://", "https://", "file://")):
            return url
        return (self.source.resolve().parent / url).as_uri()


def locating_mode(task: Task, robust: bool) -> Mode:
    """The mode of ``task`` whose models locate classes to crop to, as TotalSegmentator chooses: its fastest models,
    or its fast ones with ``robust`` (``robust_crop``) or for MR (its 6 mm MR model is too coarse)."""
    return Mode.FAST if robust or task.modality == "MR" else Mode.FASTEST


def load_registry(path: str | os.PathLike | None = None) -> Registry:
    """Read a registry file (default: the ``weights_registry.json`` shipped with segtool)."""
    if path is None:
        path = Path(str(resources.files("segtool") / "weights_registry.json"))
    path = Path(path)
    try:
        return Registry(_parse_tasks(json.loads(path.read_text())), path)
    except OSError as err:
        raise SegtoolError(f"cannot read the weights registry {path}: {err.strerror or err}") from err
    except (KeyError, ValueError, TypeError, AttributeError) as err:  # JSONDecodeError is a ValueError
        missing = f"missing field {err}" if isinstance(err, KeyError) else str(err)
        raise SegtoolError(f"invalid weights registry {path}: {missing}") from err


def _parse_tasks(data: dict) -> dict[str, Task]:
    tasks = {}
    for name, task in data["tasks"].items():
        modes = {Mode(mode): tuple(ModelEntry.from_dict(m) for m in models) for mode, models in task["modes"].items()}
        labels = {int(k): v for k, v in task["labels"].items()}
        orders = {order: {int(k): v for k, v in numbering.items()}
                  for order, numbering in task.get("label_orders", {}).items()}
        crop = Crop.from_dict(task["crop"]) if "crop" in task else None
        refine = Refine.from_dict(task["refine"]) if "refine" in task else None
        tasks[name] = Task(name, task["modality"], labels, modes, task.get("description", ""), orders,
                           Cleanup.from_dict(task.get("cleanup", {})), crop, dict(task.get("model_sizes", {})),
                           refine)
    for task in tasks.values():
        _check_crop(task, tasks)
        _check_refine(task, tasks)
    return tasks


def _check_crop(task: Task, tasks: dict[str, Task]) -> None:
    """A sub-task's crop must name an untrimmed task of the registry (its region is found in that task's models' own
    map), classes of it and a mode it has (without one: the mode that locates, `locating_mode`); a chain of crops must
    end at a task that runs on the whole scan."""
    crop = task.crop
    if crop is None:
        return
    finder, chain = tasks.get(crop.task), [task.name]
    while finder is not None and finder.crop is not None and finder.name not in chain:
        chain.append(finder.name)
        finder = tasks.get(finder.crop.task)
    if finder is None or finder.crop is not None:
        raise ValueError(f"task {task.name!r}: crop task {crop.task!r} is not a task of this registry, or its crops "
                         f"never reach one that runs on the whole scan ({' -> '.join(chain)})")
    finder = tasks[crop.task]
    if finder.refine is not None:
        raise ValueError(f"task {task.name!r}: crop task {crop.task!r} is trimmed to another task's map (refine); "
                         "a region is found in an untrimmed one")
    unknown = sorted(set(crop.classes) - set(finder.labels.values()))
    if unknown or not crop.classes:
        raise ValueError(f"task {task.name!r}: crop classes must be classes of task {crop.task!r}: "
                         f"{', '.join(unknown) or 'none given'}")
    mode = crop.mode or locating_mode(finder, robust=False)
    if mode not in finder.modes:
        raise ValueError(f"task {task.name!r}: task {crop.task!r} has no {mode.value!r} mode to crop with")


def _check_refine(task: Task, tasks: dict[str, Task]) -> None:
    """A task's refine must name another task of the registry with a default mode, running on the whole scan untrimmed
    (no chains of refines: `Registry.helpers` lists one), and a class of it."""
    refine = task.refine
    if refine is None:
        return
    other = tasks.get(refine.task)
    if (other is None or other is task or other.crop is not None or other.refine is not None
            or Mode.DEFAULT not in other.modes):
        raise ValueError(f"task {task.name!r}: refine task {refine.task!r} is not another task of this registry with "
                         "default models that run on the whole scan, untrimmed")
    if refine.class_name not in other.labels.values():
        raise ValueError(f"task {task.name!r}: refine class {refine.class_name!r} is not a class of {refine.task!r}")


def _spacing(value) -> Spacing | None:
    """A model's ``spacing_mm``: one number, or three (per canonical axis)."""
    if value is None or isinstance(value, int | float):
        return value
    spacing = tuple(float(v) for v in value)
    if len(spacing) != 3:
        raise ValueError(f"spacing_mm must be one number or three, got {value!r}")
    return spacing
