"""`Segmenter`: a task's models loaded once, segmenting many scans into one global label map each."""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np

from segkit.io import Image
from segtool.errors import SegtoolError, UnknownTaskError, did_you_mean
from segtool.models import ModelLoader, ModelProgress
from segtool.options import SegmentOptions, segment_options
from segtool.regions import BODY_MARGIN_MM, BODY_TASK, ROI_MARGIN_MM, box_around, given_masks, mask_paths
from segtool.registry import (
    InputResampling,
    Mode,
    ModelEntry,
    Registry,
    Spacing,
    Task,
    load_registry,
    locating_mode,
)
from segtool.scans import as_scan
from segtool.settings import weights_dir
from segtool.steps import step
from segtool.store import WeightsStore
from segtool.totalseg_grid import (
    labels_to_scan,
    predict_in_slabs,
    splits_by_itself,
    to_model_grid,
)

V1 = "v1"  #: the registry's label order of TotalSegmentator v1 (``v1_order``)


@dataclass(frozen=True)
class Finder:
    """Models that find the region a task's models then run on: the box around ``classes`` of ``task`` (all of its
    classes when empty) in the map of its models ``entries`` (none where ``crop_path`` gives the masks), widened by
    ``margin_mm``; or, where ``task`` is a sub-task itself, in the map of its own ``segmenter``."""

    task: Task
    classes: frozenset[int]
    margin_mm: float
    entries: tuple[ModelEntry, ...]
    segmenter: Segmenter | None = None


class Segmenter:
    """A task's models loaded once, segmenting many scans into one global label map each.

    A sub-task's models run on the region its registry ``crop`` names (e.g. the lungs, found by the ``total`` task's
    fast (3 mm) models, plus 20 mm; a sub-task that finds it runs as on its own), and its map is trimmed as its
    ``refine`` says (to what another task's models find on the whole scan). With a ROI subset, the task's fastest
    models (fast ones with ``robust_crop`` or for an MR task; of its big size, as TotalSegmentator locates with its
    standard models) first locate those classes and the models of the mode then run only on that region (plus
    `ROI_MARGIN_MM`); with ``body_seg``, the body task's fast model finds the body and they run on it (plus
    `BODY_MARGIN_MM`).

    The options come whole (`SegmentOptions`) or as a task name and `SegmentOptions`'s keywords. Label maps are
    uint8 (uint16 for a task with label values above 255), as the files.

    Example:
        >>> segmenter = Segmenter("total", mode="fast")      # or Segmenter(SegmentOptions(task="total", mode="fast"))
        >>> labels = segmenter.segment("ct.nii.gz")          # doctest: +SKIP
    """

    def __init__(self, options: SegmentOptions | str | None = None, *, registry: Registry | None = None,
                 store: WeightsStore | None = None, progress_for: ModelProgress = lambda entry: None,
                 **option_values) -> None:
        options = segment_options(options, option_values)
        self.options = options
        self.registry = registry or load_registry()
        self.task: Task = self.registry.task(options.task).sized(options.model_size)
        self.roi_values = _roi_values(self.task, options.roi_subset)
        self._numbering = self._v1_numbering() if options.v1_order else None
        self._loader = ModelLoader(options, registry=self.registry, store=store or WeightsStore(weights_dir()),
                                   progress_for=progress_for)
        self.device = self._loader.device
        entries = _models_predicting(self.task, self.task.models(options.mode), self.roi_values)
        if options.force_split and all(e.input_resampling is not InputResampling.TOTALSEGMENTATOR for e in entries):
            raise SegtoolError(f"force_split splits a scan on the grid of TotalSegmentator's weights; the models of "
                               f"task {self.task.name!r} resample it themselves")
        if options.save_lowres and self.task.crop is not None:  # refused before the models finding its region load
            self._one_spacing(entries, cropped=True)
        #: what finds the region the task's models run on (None: they run on the whole scan)
        self.finder = self._finder()
        #: the models' one spacing, where the label maps stay with ``save_lowres``
        self.lowres_spacing = self._one_spacing(entries, self.finder is not None) if options.save_lowres else None
        self.parts = self._loader.load(entries, own=True)
        self._multipart = len(self.task.models(options.mode)) > 1
        self.finder_models = self._finder_models()
        #: the segmenter of the task whose map this one's is trimmed to (None: not trimmed)
        self.refiner = self._helper(self.task.refine.task, Mode.DEFAULT) if self.task.refine else None
        self.probability_files: list[Path] = []  #: the probability files (and their JSON) the last scan wrote
        #: where the finder finds no region, segment the whole scan instead of returning an empty map (a sub-task
        #: that finds another's region: TotalSegmentator then runs it on the whole scan, e.g. craniofacial_structures
        #: on a dental CBCT where total finds no skull, so that teeth still finds its teeth)
        self.whole_scan_without_region = False

    @property
    def all_models(self) -> list:
        """(entry, Predictor) of every model this segmenter runs: the finder's, the task's parts, the refiner's."""
        return [*self.finder_models, *self.parts, *(self.refiner.all_models if self.refiner else [])]

    def follow_tiles(self, callback: Callable[[ModelEntry, int, int], None]) -> None:
        """Have every model call ``callback(entry, tiles done, tiles in all)`` as it slides over a scan."""
        for entry, predictor in self.all_models:
            predictor.tile_progress = functools.partial(callback, entry)

    @property
    def label_names(self) -> dict[int, str]:
        """Label value -> class name of the maps this segmenter produces (the task's labels, or with ``v1_order``
        TotalSegmentator v1's)."""
        if self._numbering is None:
            return {v: n for v, n in self.task.labels.items() if not self.roi_values or v in self.roi_values}
        wanted = {self.task.labels[v] for v in self.roi_values}
        return {v: n for v, n in self.task.label_orders[V1].items() if not wanted or n in wanted}

    def segment(self, image: Image | str | os.PathLike | nib.spatialimages.SpatialImage, *,
                probabilities: str | os.PathLike | None = None) -> Image:
        """Segment ``image`` (a segkit `Image`, a path or a nibabel image) into the task's global label map,
        exactly on the image's grid.

        Args:
            probabilities: also save each of the task's models' class probabilities, on the grid it predicted on, to
                this ``.npz`` file (several models: one file each, `segtool.probability_files`), as TotalSegmentator's
                ``--save_probabilities``. None is written where a ROI subset is not found.

        Raises:
            SegtoolError: the image is not a single-channel 3D scan, or holds NaN/Inf.
        """
        return self.segment_scan(as_scan(image), probabilities=probabilities)

    def segment_scan(self, image: Image, *, probabilities: str | os.PathLike | None = None) -> Image:
        """`segment` for a scan that `segtool.scans.as_scan` already gave (for callers that keep the scan: not
        checked again)."""
        saving = self._start_probabilities(probabilities)
        box = self._region(image) if self.finder is not None else None
        if box is not None:
            result = np.zeros(image.spatial_shape, dtype=np.uint16)
            result[box] = self._paint(image.crop(box), self.parts, own=True, probabilities=saving)
        elif self.finder is None or self.whole_scan_without_region:
            result = self._paint(image, self.parts, own=True, probabilities=saving)
        else:  # no region: nothing to segment
            result = np.zeros(image.spatial_shape, dtype=np.uint16)
        return self._finish(self._refined(result, image) if self.refiner else result, image)

    def segment_for_output(self, image: Image, *,
                           probabilities: str | os.PathLike | None = None) -> tuple[Image, Image]:
        """The grid the result lies on and the label map there: ``image`` and `segment_scan`'s map, or, with
        ``options.save_lowres``, the scan resampled to the models' spacing and the map on it, not brought back
        (in the scan's axis order)."""
        if self.lowres_spacing is None:
            return image, self.segment_scan(image, probabilities=probabilities)
        _, resampled = to_model_grid(image, self.lowres_spacing, self.options.resampling_order)
        grids = {self.lowres_spacing: (resampled, resampled)}  # the models' grid already: nothing to resample
        labels = self._finish(self._paint(resampled, self.parts, grids, own=True,
                                          probabilities=self._start_probabilities(probabilities)), resampled)
        return resampled.reorient(image.axis_codes), labels.reorient(image.axis_codes)  # as TotalSegmentator does

    def _one_spacing(self, entries: tuple[ModelEntry, ...], cropped: bool) -> Spacing:
        """The one spacing that all of ``entries`` resample the scan to (``save_lowres`` keeps their maps there)."""
        spacings = {e.spacing_mm if e.input_resampling is InputResampling.TOTALSEGMENTATOR else None for e in entries}
        if cropped or self.task.refine is not None:
            raise SegtoolError(f"save_lowres keeps the masks on the models' whole grid: not with a ROI subset, a "
                               f"body crop or a task cropped or trimmed to another's classes ({self.task.name!r})")
        if len(spacings) != 1 or None in spacings:
            hint = " (try --fast)" if self.options.mode is Mode.DEFAULT and Mode.FAST in self.task.modes else ""
            raise SegtoolError(f"save_lowres needs models that resample the scan to one spacing: task "
                               f"{self.task.name!r} in {self.options.mode.value} mode has others{hint}")
        return spacings.pop()

    def _finder_models(self) -> list:
        """(entry, Predictor) of every model that finds the region the task's models run on (none: the whole scan)."""
        if self.finder is None:
            return []
        if self.finder.segmenter is not None:  # a sub-task finds it: its own finder's models and its parts
            return self.finder.segmenter.all_models
        return self._loader.load(self.finder.entries)

    def _helper(self, task: str, mode: Mode) -> Segmenter:
        """A segmenter of another ``task`` that this one needs (to find its region, or to trim its map to), with this
        one's device, mirroring, precision, downloads and resampling order; it runs as ``task`` on its own would."""
        options = self.options
        return Segmenter(SegmentOptions(task=task, mode=mode, device=options.device, tta=options.tta,
                                        precision=options.precision, allow_download=options.allow_download,
                                        resampling_order=options.resampling_order),
                         registry=self.registry, store=self._loader.store, progress_for=self._loader.progress_for)

    def _refined(self, result: np.ndarray, image: Image) -> np.ndarray:
        """``result`` (on ``image``'s grid) trimmed as the task's ``refine`` says, to the class of the refiner's task
        that its models find in ``image``."""
        from segtool.vertebrae import trim_to

        refine = self.task.refine
        with step(f"trimmed to {refine.class_name} of {refine.task}"):
            found = self.refiner.segment_scan(image).array
            (value,) = _roi_values(self.refiner.task, (refine.class_name,))
            return trim_to(result, found == value, image.spacing, refine.grow_mm)

    def _v1_numbering(self) -> np.ndarray:
        """Task label value -> TotalSegmentator v1's value of the same class (0 for a class v1 lacks)."""
        if V1 not in self.task.label_orders:
            raise SegtoolError(f"v1_order numbers the classes of TotalSegmentator v1's 'total'; task "
                               f"{self.task.name!r} has no v1 numbering")
        return _renumbering(self.task.labels, self.task.label_orders[V1])

    def _finder(self) -> Finder | None:
        """What finds the region the task's models run on: a sub-task's registry crop, else a ROI subset's locating
        models (in every mode, as TotalSegmentator; none if the task lacks the mode), else ``body_seg``'s body."""
        options = self.options
        crop = self.registry.crop_finder(self.task, options.robust_crop)
        if crop is not None:
            task, mode = crop
            if mode not in task.modes:
                raise SegtoolError(f"task {self.task.name!r} is cropped to classes that task {task.name!r} finds "
                                   f"with its {mode.value} models, which the registry lacks")
            classes = _roi_values(task, self.task.crop.classes)
            if options.crop_path is not None:  # the masks are there before any model is fetched
                mask_paths(options.crop_path, self.task.crop.classes)
                return Finder(task, classes, self.task.crop.margin_mm, ())
            if task.crop is not None:  # a sub-task finds it: as it runs on its own, but on the whole scan where its
                finding = self._helper(task.name, mode)  # own region is not found
                finding.whole_scan_without_region = True
                return Finder(task, classes, self.task.crop.margin_mm, (), finding)
            return Finder(task, classes, self.task.crop.margin_mm, _models_predicting(task, task.models(mode), classes))
        if options.crop_path is not None:
            raise SegtoolError(f"crop_path gives the masks a sub-task is cropped to; task {self.task.name!r} runs on "
                               "the whole scan")
        mode = locating_mode(self.task, options.robust_crop)
        if self.roi_values and mode in self.task.modes:  # located by the models as listed, whatever the model size
            listed = self.registry.task(self.task.name).models(mode)
            return Finder(self.task, self.roi_values, ROI_MARGIN_MM, _models_predicting(self.task, listed,
                                                                                        self.roi_values))
        if options.body_seg:
            if self.task.modality != "CT":  # refused, as TotalSegmentator does
                raise SegtoolError(f"body_seg crops CT scans; task {self.task.name!r} is {self.task.modality}")
            body = self.registry.task(BODY_TASK)
            return Finder(body, frozenset(), BODY_MARGIN_MM, body.models(Mode.FAST))
        return None

    def _finish(self, result: np.ndarray, image: Image) -> Image:
        """The label map of the ROI classes, in v1's numbering if asked for, on ``image``'s grid."""
        if self.roi_values:
            result = np.where(np.isin(result, list(self.roi_values)), result, 0)
        if self._numbering is not None:
            result = self._numbering[result]
        dtype = np.uint8 if max(self.label_names, default=0) <= np.iinfo(np.uint8).max else np.uint16  # as the files
        return Image(result.astype(dtype, copy=False), image.affine,
                     {**image.grid_meta(), "label_names": self.label_names})

    def _paint(self, image: Image, parts: list, grids: dict[Spacing, tuple[Image, Image]] | None = None, *,
               task: Task | None = None, own: bool = False, probabilities: list[Path] | None = None) -> np.ndarray:
        """Run every part and paint its classes, by name, into one global label map of ``task`` (this segmenter's
        by default; later parts win), each part's map cleaned up as the task says (`segtool.cleanup`).

        Parts resampled the TotalSegmentator way share one resampled scan per spacing (``grids``: spacing ->
        `to_model_grid`'s pair, filled as needed); ``own`` parts (the task's, not a locator's) predict it in three
        slabs where TotalSegmentator would (`_splits`), and with ``higher_order_resampling`` the scan itself.
        ``probabilities``: where each part saves its probabilities (`_start_probabilities`), or None. Small blobs
        of ``own`` parts' maps are removed on the grid they were predicted on, as TotalSegmentator removes them.
        """
        task = task or self.task
        grids = {} if grids is None else grids
        layers: list[tuple[Spacing | None, np.ndarray]] = []  # (model spacing, or None: the scan's grid; map there)
        for number, (entry, predictor) in enumerate(parts):
            lookup = _renumbering(entry.labels, task.labels)
            spacing = self._grid_spacing(entry, own)
            if spacing is not None and spacing not in grids:
                with step(f"resampled {image.spatial_shape} to {spacing} mm") as notes:
                    grids[spacing] = to_model_grid(image, spacing, self.options.resampling_order)
                    notes.append(f"{grids[spacing][1].spatial_shape}")
            grid = image if spacing is None else grids[spacing][1]
            splits = own and entry.input_resampling is InputResampling.TOTALSEGMENTATOR
            with step(f"{entry.name} predicted {grid.spatial_shape}"):
                predicted = self._predicted(entry, predictor, grid, splits, probabilities and probabilities[number])
            layer = (spacing, _cleaned(lookup[predicted], grid, task))
            if layers and layers[-1][0] == layer[0]:  # consecutive parts on one grid are painted there, as
                layer = (layer[0], np.where(layer[1] > 0, layer[1], layers.pop()[1]))  # TotalSegmentator does
            layers.append(layer)
        result = np.zeros(image.spatial_shape, dtype=np.uint16)
        for spacing, painted in layers:  # each grid's map brought back once (nearest voxel: the same as part by part)
            grid = image if spacing is None else grids[spacing][1]
            if own and self.options.remove_small_blobs is not None:
                painted = _without_small_blobs(painted, grid, self.options.remove_small_blobs)
            if spacing is not None:
                painted = labels_to_scan(painted, grids[spacing][0], image)
            result = np.where(painted > 0, painted, result)
        return result

    def _grid_spacing(self, entry: ModelEntry, own: bool) -> Spacing | None:
        """The spacing that ``entry``'s model predicts on after `to_model_grid`, or None: it is given the scan (and
        resamples it itself, as nnU-Net does; with ``higher_order_resampling``, the task's own parts too)."""
        native = entry.input_resampling is InputResampling.PREDICTOR or (own and self.options.higher_order_resampling)
        return None if native else entry.spacing_mm

    def _predicted(self, entry: ModelEntry, predictor, grid: Image, splits: bool,
                   probabilities: Path | None = None) -> np.ndarray:
        """``predictor``'s label map of ``grid``, its probabilities saved to ``probabilities`` if given; with
        ``splits``, in three slabs along its canonical z where `_splits` says so."""
        from segtool.probability_files import channel_names, write_description

        might_split = splits and (self.options.force_split or self._multipart)
        canonical = grid.to_canonical() if might_split else None  # (a copy, unless the grid is a resampled one)
        if canonical is not None and self._splits(canonical):
            if probabilities is not None:
                raise SegtoolError("save_probabilities keeps a model's probabilities of the whole scan; this one is "
                                   "predicted in three slabs (force_split, or a scan this large)")
            return labels_to_scan(predict_in_slabs(predictor, canonical), canonical, grid)
        if probabilities is None:
            return predictor.predict(grid).array
        try:
            probabilities.parent.mkdir(parents=True, exist_ok=True)
            labels = predictor.predict_writing_probabilities(grid, probabilities).array
            self.probability_files += [probabilities, write_description(probabilities, grid, entry,
                                                                        channel_names(entry, predictor))]
        except OSError as err:
            raise SegtoolError(f"cannot write {probabilities}: {err.strerror or err}") from err
        return labels

    def _start_probabilities(self, path: str | os.PathLike | None) -> list[Path] | None:
        """Forget the last scan's probability files; return where each of the task's models saves its probabilities
        for this one when ``path`` is asked for (None: nowhere)."""
        from segtool.probability_files import check_probability_path, probability_paths

        self.probability_files = []
        if path is None:
            return None
        check_probability_path(Path(path))
        return probability_paths(Path(path), len(self.parts))

    def _splits(self, canonical: Image) -> bool:
        """Whether the task's parts predict ``canonical`` (the scan they are given) in three slabs: with
        ``force_split``, or, as TotalSegmentator decides by itself, for a huge scan of a multi-part task."""
        return self.options.force_split or (self._multipart and splits_by_itself(canonical.spatial_shape))

    def _region(self, image: Image) -> tuple[slice, slice, slice] | None:
        """The box the task's models run on: the finder's classes in its models' map, widened by its margin (None:
        none found)."""
        finder = self.finder
        with step(f"region of {finder.task.name} found") as notes:
            if self.options.crop_path is not None:
                mask = given_masks(self.options.crop_path, self.task.crop.classes, image)
            else:
                found = (finder.segmenter.segment_scan(image).array if finder.segmenter
                         else self._paint(image, self.finder_models, task=finder.task))
                mask = np.isin(found, list(finder.classes)) if finder.classes else found > 0
            box = box_around(mask, image.spacing, finder.margin_mm)
            if box is not None:
                notes.append(f"box {tuple(b.stop - b.start for b in box)} of {image.spatial_shape}")
            elif self.whole_scan_without_region:
                notes.append("none: the whole scan then")
            else:
                notes.append("none")
                logging.getLogger("segtool").warning("the %s models found no region to segment (the classes that "
                                                     "locate it are absent): the masks are empty", finder.task.name)
        return box


def _models_predicting(task: Task, models: tuple[ModelEntry, ...], values: frozenset[int]) -> tuple[ModelEntry, ...]:
    """The ``models`` that predict any of ``task``'s classes ``values`` (all of them when empty)."""
    if not values:
        return models
    wanted = {task.labels[v] for v in values}
    return tuple(m for m in models if wanted & set(m.labels.values()))


def _renumbering(labels: dict[int, str], to: dict[int, str]) -> np.ndarray:
    """Lookup array from each value of ``labels`` to the value of the same class name in ``to`` (0: none there)."""
    value_in = {name: value for value, name in to.items()}
    lookup = np.zeros(max(labels) + 1, dtype=np.uint16)
    for value, name in labels.items():
        lookup[value] = value_in.get(name, 0)
    return lookup


def _cleaned(labels: np.ndarray, grid: Image, task: Task) -> np.ndarray:
    """A model's map of ``task``'s classes on ``grid``, after the task's connected-component clean-up."""
    return task.cleanup.apply(labels, task.labels, grid) if task.cleanup else labels


def _without_small_blobs(labels: np.ndarray, grid: Image, max_mm3: float) -> np.ndarray:
    """``labels`` on ``grid`` without each class's connected components of at most ``max_mm3``."""
    from segkit.infer.postprocessing import remove_small_components

    return remove_small_components(labels, max_mm3 / float(np.prod(grid.spacing)))


def _roi_values(task: Task, roi_subset: tuple[str, ...]) -> frozenset[int]:
    value_of = {name: value for value, name in task.labels.items()}
    unknown = [name for name in roi_subset if name not in value_of]
    if unknown:
        raise UnknownTaskError(f"task {task.name!r} has no class {unknown[0]!r}{did_you_mean(unknown[0], value_of)}; "
                               f"see 'segtool classes {task.name}'")
    return frozenset(value_of[name] for name in roi_subset)

