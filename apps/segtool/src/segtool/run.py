"""Running segmentation on files and folders: input discovery, outputs, batch mode."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from segkit.io import Image, SegkitError
from segkit.io.atomic import atomic_path
from segkit.io.dicom_files import is_dicom_instance
from segkit.io.writing import IMAGE_SUFFIXES
from segtool.derived_masks import derived_masks
from segtool.dicom_rtstruct import write_rtstruct
from segtool.dicom_seg import write_dicom_seg
from segtool.dicom_series import DICOM_SUFFIX, check_dicom_source, source_datasets
from segtool.errors import SegtoolError
from segtool.options import path_argument
from segtool.outputs import (
    MASK_ENDING,
    image_stem,
    label_names_path,
    write_class_masks,
    write_multilabel,
)
from segtool.preview import write_preview
from segtool.probability_files import check_probability_path
from segtool.scans import ScanReader
from segtool.segmenter import Segmenter
from segtool.statistics import StatisticsOptions, class_statistics
from segtool.steps import step

SCAN_SUFFIXES = IMAGE_SUFFIXES + (".zip",)  # a zip holds a DICOM series
OUTPUT_TYPES = ("nifti", "dicom_seg", "dicom_rtstruct")  #: TotalSegmentator's ``--output_type`` values
OUTPUT_TYPE_ALIASES = {"dicom": "dicom_rtstruct"}  #: TotalSegmentator's older name, which it still takes
DICOM_WRITERS = {"dicom_seg": write_dicom_seg, "dicom_rtstruct": write_rtstruct}
#: file names of DICOM objects written beside a NIfTI result (several output types)
DICOM_COMPANIONS = {"dicom_seg": "seg.dcm", "dicom_rtstruct": "rtstruct.dcm"}


@dataclass(frozen=True)
class OutputRequest:
    """What is written for each scan besides, or instead of, its label files.

    Args:
        ml: one multilabel file instead of one mask per class.
        output_types: any of `OUTPUT_TYPES`. One DICOM type alone makes the target that DICOM object (a ``.dcm``
            file); next to other types, DICOM objects go beside the NIfTI result (`DICOM_COMPANIONS`).
        statistics: per-class statistics to compute (`class_statistics`), or None.
        statistics_file: where they go instead of beside the label files (one scan only).
        preview: also write a PNG with the labels over the scan.
        skip_saving: write no label files, only statistics and preview (TotalSegmentator's ``--skip_saving``).
        saving_threads: masks written at a time (None: one per CPU; TotalSegmentator's ``--nr_thr_saving``).
        derived_masks: masks derived from the classes, written beside the per-class masks (the task's
            `DERIVED_MASKS`, e.g. ``body`` and ``skin`` of the body task).
        probabilities_file: save the models' class probabilities there (one scan only; `segtool.probability_files`).
    """

    ml: bool = False
    output_types: tuple[str, ...] = ("nifti",)
    statistics: StatisticsOptions | None = None
    statistics_file: Path | None = None
    preview: bool = False
    skip_saving: bool = False
    saving_threads: int | None = None
    derived_masks: tuple[str, ...] = ()
    probabilities_file: Path | None = None

    def __post_init__(self) -> None:
        types = (self.output_types,) if isinstance(self.output_types, str) else tuple(self.output_types)
        types = tuple(OUTPUT_TYPE_ALIASES.get(t, t) if isinstance(t, str) else t for t in types)
        unknown = [t for t in types if t not in OUTPUT_TYPES]
        if unknown or not types:
            raise SegtoolError(f"output type must be one or more of {', '.join(OUTPUT_TYPES)}, got {unknown or types}")
        object.__setattr__(self, "output_types", tuple(dict.fromkeys(types)))
        if self.saving_threads is not None and not (isinstance(self.saving_threads, int) and self.saving_threads > 0):
            raise SegtoolError(f"saving threads must be a whole number above 0, got {self.saving_threads!r}")
        if self.dicom_file:
            object.__setattr__(self, "ml", True)  # one DICOM object holds every class

    @property
    def dicom_file(self) -> str | None:
        """The DICOM output type that the target itself is written as (when it is the only type), else None."""
        only = self.output_types[0] if len(self.output_types) == 1 else "nifti"
        return None if only == "nifti" else only

    @property
    def dicom_types(self) -> tuple[str, ...]:
        """Every DICOM output type asked for."""
        return tuple(t for t in self.output_types if t in DICOM_WRITERS)


def requested_types(output_types: str | list[str] | tuple[str, ...], output: Path | None, *,
                    ml: bool) -> tuple[str, ...]:
    """The output types asked for: ``output_types``, except that a multilabel ``.dcm`` output alone (``--ml -o
    NAME.dcm``) asks for a DICOM SEG."""
    types = tuple(output_types) if isinstance(output_types, list | tuple) else (output_types,)  # OutputRequest checks
    if ml and types == ("nifti",) and output is not None and output.name.lower().endswith(DICOM_SUFFIX):
        return ("dicom_seg",)
    return types


def find_scans(path: Path) -> tuple[list[Path], bool]:
    """The scans an input path stands for, and whether it is a batch.

    A file, or a folder with DICOM slices at its top (a series), is one scan. Another folder is a batch, even of
    one: its scan files and its folders of DICOM slices (a series each), in name order; other files (a DICOMDIR,
    notes) and folders (earlier outputs) are passed over. A folder of files of no known kind is read as one
    series, which says in one line if it is none.
    """
    if not path.exists():
        raise SegtoolError(f"{path}: no such file or folder")
    if path.is_file():
        return [path], False
    entries = sorted(p for p in path.iterdir() if not p.name.startswith("."))
    files = [p for p in entries if p.is_file()]
    scans = [p for p in files if p.name.lower().endswith(SCAN_SUFFIXES)]
    if not scans and any(map(is_dicom_instance, files)):
        return [path], False  # a DICOM series folder
    series = [p for p in entries if p.is_dir() and any(map(is_dicom_instance, sorted(p.iterdir())))]
    if scans or series:
        return sorted(scans + series), True
    if files:
        return [path], False
    raise SegtoolError(f"{path}: folder holds no scans (scan files, or DICOM series: a folder of slices each)")


def scan_name(path: Path) -> str:
    """Output name of a scan: its file name without the image extension (and any ``_0000``)."""
    return image_stem(path.name, SCAN_SUFFIXES).removesuffix("_0000")


def output_target(output: Path, scan: Path, *, ml: bool, batch: bool, suffix: str = MASK_ENDING) -> Path:
    """Where one scan's result goes.

    Masks: ``output/`` (one scan) or ``output/<scan>/`` (batch). Multilabel: ``output`` itself
    when it has an image-file suffix or ``.dcm`` (a DICOM SEG; one scan only), else ``output/<scan><suffix>``.
    """
    is_file = image_stem(output.name) != output.name
    if ml and is_file:
        if batch:
            raise SegtoolError(f"{output}: a folder of scans needs an output folder, not a file")
        return output
    if ml:
        return output / f"{scan_name(scan)}{suffix}"
    if is_file:
        raise SegtoolError(f"{output}: per-class masks need an output folder (or use --ml for one file)")
    return output / scan_name(scan) if batch else output


def plan_targets(scans: list[Path], output: Path, request: OutputRequest, *, batch: bool,
                 inputs_on_disk: bool = True, lowres: bool = False) -> list[Path]:
    """Each scan's `output_target`, checked before any work: no two scans share one, none overwrites an input scan,
    a batch's output folder is not its folder of scans, and each can be written; DICOM outputs have a DICOM series
    as input, and are refused for label maps kept on the models' grid (``lowres``). With ``inputs_on_disk`` False
    the scans only name the outputs (images held in memory). A ``request.statistics_file`` (one scan only) is
    checked the same way.
    """
    if lowres and request.dicom_types:
        raise SegtoolError(f"{request.dicom_types[0]} output lies on the DICOM series' slices; it cannot be saved "
                           "at the models' resolution (save_lowres)")
    is_dicom = output.name.lower().endswith(DICOM_SUFFIX)
    if request.dicom_file and image_stem(output.name) != output.name and not is_dicom:
        raise SegtoolError(f"{output}: a {request.dicom_file} output is a {DICOM_SUFFIX} file or a folder")
    if not request.dicom_file and is_dicom:
        raise SegtoolError(f"{output}: a {DICOM_SUFFIX} file is a DICOM object; give a NIfTI file or a folder for "
                           f"{' and '.join(request.output_types)} output")
    if batch and inputs_on_disk and scans and output.resolve() == scans[0].parent.resolve():
        raise SegtoolError(f"{output}: the output folder is the folder of scans, whose results the next run would "
                           "take for scans; choose another output folder")
    ml = request.ml
    suffix = DICOM_SUFFIX if request.dicom_file else MASK_ENDING
    targets = [output_target(output, scan, ml=ml, batch=batch, suffix=suffix) for scan in scans]
    owner: dict[Path, Path] = {}
    inputs = {scan.resolve() for scan in scans} if inputs_on_disk else set()
    for scan, target in zip(scans, targets, strict=True):
        if target in owner:
            raise SegtoolError(f"{owner[target].name} and {scan.name} would both be written to {target}; "
                               "rename one of them")
        owner[target] = scan
        if target.resolve() in inputs:
            raise SegtoolError(f"{target}: the output would overwrite an input scan; choose another output")
        _check_writable(target, folder=not ml)
        for output_type in request.dicom_types:
            check_dicom_source(target, scan if inputs_on_disk else None, output_type)
    if request.statistics_file is not None:
        if batch:
            raise SegtoolError(f"{request.statistics_file}: a folder of scans writes statistics.json beside each "
                               "scan's masks; ask for statistics without a path")
        check_side_file(request.statistics_file, scans if inputs_on_disk else [], "statistics")
    if request.probabilities_file is not None:
        if batch:
            raise SegtoolError(f"{request.probabilities_file}: probabilities are saved for one scan at a time")
        check_probability_path(request.probabilities_file)
        check_side_file(request.probabilities_file, scans if inputs_on_disk else [], "probabilities")
    return targets


def check_side_file(path: Path, scans: list[Path], what: str) -> None:
    """Refuse a file of the run's (``what``: statistics, report) that would overwrite an input or cannot be written."""
    if path.resolve() in {scan.resolve() for scan in scans}:
        raise SegtoolError(f"{path}: the {what} would overwrite an input scan; choose another path")
    _check_writable(path, folder=False)


def side_file_path(value: str | os.PathLike, what: str) -> Path:
    """``value`` as the path of a file of the run's (``what``: statistics, report); a name that ends in a separator
    names a folder, not a file, and is refused (a Path would drop the separator and write a file of that name)."""
    path = path_argument(value, what)
    if os.fspath(value).endswith(("/", os.sep)):
        raise SegtoolError(f"{value} names a folder; the {what} file needs a file name (e.g. {path / f'{what}.json'})")
    return path


def check_no_clash(targets: list[Path], request: OutputRequest, report: Path | None = None) -> None:
    """Refuse files of the run (statistics, probabilities, report) that would overwrite one another or a result of
    ``targets`` (`plan_targets`): a multilabel file, its class names, or a class mask (a ``.nii.gz`` in a masks
    folder)."""
    taken: dict[Path, str] = {}
    for target in targets if request.ml else ():
        taken[target.resolve()] = "segmentation"
        if not request.dicom_file:
            taken[label_names_path(target).resolve()] = "segmentation's class names"
    mask_folders = set() if request.ml else {target.resolve() for target in targets}
    for what, path in (("statistics", request.statistics_file), ("probabilities", request.probabilities_file),
                       ("report", report)):
        if path is None:
            continue
        where = path.resolve()
        is_mask = where.parent in mask_folders and where.name.lower().endswith(MASK_ENDING)
        clash = taken.get(where) or ("class masks" if is_mask else None)
        if clash is not None:
            raise SegtoolError(f"{path}: the {what} would overwrite the {clash}; choose another path")
        taken[where] = what


def _check_writable(target: Path, *, folder: bool) -> None:
    if target.exists() and target.is_dir() != folder:
        kind = "a file" if folder else "a folder"
        raise SegtoolError(f"cannot write {target}: it exists as {kind}")
    anchor = target if folder else target.parent
    existing = next(p for p in (anchor, *anchor.parents) if p.exists())
    if not existing.is_dir():
        raise SegtoolError(f"cannot write {target}: {existing} is a file")
    if not os.access(existing, os.W_OK):
        raise SegtoolError(f"cannot write {target}: {existing} is not writable")


@dataclass
class ScanOutputs:
    """What `write_outputs` produced for one scan: its statistics (if asked for) and the files it wrote."""

    statistics: dict | None = None
    files: list[Path] = field(default_factory=list)


def write_outputs(image: Image, labels: Image, names: dict[int, str], target: Path | None,
                  request: OutputRequest, *, task: str, batch: bool = False) -> ScanOutputs:
    """Write the labels to ``target``: a masks folder, or with ``request.ml`` a multilabel file or DICOM object.

    Statistics and preview go where TotalSegmentator puts them (`report_file`): ``statistics.json`` and
    ``preview_<task>.png`` in the masks folder or in the multilabel file's folder; in a ``batch`` of multilabel
    files, which share a folder, ``<name>_statistics.json`` and ``<name>_preview_<task>.png``.
    ``request.statistics_file`` overrides the statistics' place. With ``target`` None only
    ``request.statistics_file`` is written.

    Raises:
        SegtoolError: a file cannot be written.
    """
    out = ScanOutputs()
    if request.statistics is not None:
        out.statistics = class_statistics(labels.array, names, image.array, image.spacing, request.statistics)
    stats_path = request.statistics_file
    try:
        if target is not None:
            if not request.skip_saving:
                out.files += _write_labels(image, labels, names, target, request)
            stats_path = stats_path or report_file(target, "statistics.json", ml=request.ml, batch=batch)
            if request.preview:
                preview_path = report_file(target, f"preview_{task}.png", ml=request.ml, batch=batch)
                preview_path.parent.mkdir(parents=True, exist_ok=True)
                out.files.append(write_preview(image, labels, preview_path))
        if out.statistics is not None and stats_path is not None:
            stats_path.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(stats_path) as tmp:
                tmp.write_text(json.dumps(out.statistics, indent=1))
            out.files.append(stats_path)
    except OSError as err:
        raise SegtoolError(f"cannot write {target or stats_path}: {err.strerror or err}") from err
    return out


def _write_labels(image: Image, labels: Image, names: dict[int, str], target: Path,
                  request: OutputRequest) -> list[Path]:
    """Write the label files of ``request.output_types``; return their paths."""
    (target.parent if request.ml else target).mkdir(parents=True, exist_ok=True)
    if request.dicom_file:
        return [DICOM_WRITERS[request.dicom_file](labels, names, image, target)]
    files = []
    if "nifti" in request.output_types:
        files += ([write_multilabel(labels, names, target), label_names_path(target)] if request.ml
                  else write_class_masks(labels, names, target, threads=request.saving_threads,
                                         extra=derived_masks(request.derived_masks, image.array, labels.array, names)))
    sources = None  # the source slices' headers, read once for all the DICOM objects
    for output_type in request.dicom_types:
        path = companion(target, DICOM_COMPANIONS[output_type], ml=request.ml)
        sources = sources or source_datasets(image, path)
        files.append(DICOM_WRITERS[output_type](labels, names, image, path, sources=sources))
    return files


def companion(target: Path, name: str, *, ml: bool) -> Path:
    """A file that accompanies a result: ``target/name`` in a masks folder, ``<stem>_name`` beside a file."""
    return target.with_name(f"{image_stem(target.name)}_{name}") if ml else target / name


def report_file(target: Path, name: str, *, ml: bool, batch: bool) -> Path:
    """Where a report on a result (statistics, preview) goes: in the masks folder, or in a multilabel file's folder,
    as TotalSegmentator puts it; beside a multilabel file of a batch as ``<stem>_name``, since they share a folder."""
    if ml and not batch:
        return target.parent / name
    return companion(target, name, ml=ml)


def _mm(spacing) -> str:
    return " x ".join(f"{s:.3g}" for s in spacing)


def run_many(scans: list[Path], targets: list[Path], segmenter: Segmenter, request: OutputRequest, *,
             batch: bool, reader: ScanReader,
             on_done: Callable[[Path, Path, ScanOutputs], None] = lambda scan, target, outputs: None
             ) -> list[tuple[Path, str]]:
    """Segment each scan, as ``reader`` reads them, with one loaded segmenter; return the (scan, error) pairs of
    scans that failed.

    Each scan goes to its target (`plan_targets`, checked before any scan is segmented). In a batch a
    bad scan is reported without stopping the others (outputs already written stay valid); a single
    scan raises its error.
    """
    failures = []
    for scan, target in zip(scans, targets, strict=True):
        try:
            with step(f"read {scan}") as notes:
                image = reader.take(scan)
                notes.append(f"{image.spatial_shape} at {_mm(image.spacing)} mm")
            with step(f"segmented {scan.name}"):
                grid, labels = segmenter.segment_for_output(image, probabilities=request.probabilities_file)
            with step(f"wrote the outputs of {scan.name}") as notes:
                outputs = write_outputs(grid, labels, segmenter.label_names, target, request,
                                        task=segmenter.options.task, batch=batch)
                notes.append(f"{len(outputs.files)} file(s)")
            outputs.files += segmenter.probability_files
        except SegkitError as err:
            if not batch:
                raise
            failures.append((scan, str(err)))
            continue
        on_done(scan, target, outputs)
    return failures
