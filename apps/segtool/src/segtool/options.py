"""How to segment: `SegmentOptions`, checked as they are made, and the argument checks the API shares."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from segtool.errors import SegtoolError
from segtool.registry import BIG, Mode
from segtool.totalseg_grid import RESAMPLING_ORDERS

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
SMALL_BLOB_MM3 = 200.0  #: TotalSegmentator's ``--remove_small_blobs`` without a size


@dataclass(frozen=True)
class SegmentOptions:
    """How to segment.

    Args:
        task: registry task name.
        mode: `Mode` (default, fast = 3 mm models, fastest = 6 mm models).
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N`` (``gpu`` and ``gpu:N``, TotalSegmentator's names, too).
        tta: test-time augmentation: mirroring, and the translations a model's registry entry names (``shift_tta``);
            None uses each model's registry setting, False turns both off.
        precision: network precision (auto, fp32, bf16, fp16); None uses each model's registry setting.
        roi_subset: only these classes (and only the models that predict them); one name or several.
        allow_download: fetch missing weights (else fail with a hint).
        remove_small_blobs: remove each class's connected components of at most this many mm3 (None: keep all), on
            the grid the task's models predicted on, as TotalSegmentator does (its 1.5 / 3 / 6 mm grid).
        save_lowres: keep the label map on the models' grid instead of bringing it back to the scan's
            (TotalSegmentator's ``--save_lowres``; for models resampled to one spacing, e.g. ``total`` fast).
        robust_crop: locate a ROI subset with the fast (3 mm) models instead of the fastest (6 mm) ones, as
            TotalSegmentator's ``--robust_crop``.
        body_seg: crop a CT scan to the body (found by the fast model of `segtool.regions.BODY_TASK`) before
            segmenting it, as TotalSegmentator's ``--body_seg`` (a ROI subset's own crop replaces it).
        resampling_order: spline order (0-5) with which the scan is resampled to the spacing of TotalSegmentator's
            weights (its ``--resampling_order``; default 1, linear). segkit models resample as they were trained.
        v1_order: number the classes as TotalSegmentator v1 did (its ``--v1_order``; task ``total`` only): the
            classes v2 added are left out, those it dropped stay empty.
        force_split: predict the scan (on the model grid) in three overlapping slabs along z, for less memory, as
            TotalSegmentator's ``--force_split``; it does so by itself for a huge scan of a multi-part task
            (`segtool.totalseg_grid.SPLIT_VOXELS`). Needs more than 62 slices on the model grid.
        higher_order_resampling: the task's models bring the scan to their spacing as nnU-Net does (third-order
            splines) and their logits back to it (linear), instead of TotalSegmentator's linear zoom there and
            nearest-neighbour labels back (its ``--higher_order_resampling``: smoother masks, slower;
            ``resampling_order`` then has no effect). Locating models are unchanged.
        crop_path: a folder with a mask (``<class>.nii.gz``, on the scan's grid) of each class a sub-task is cropped
            to, e.g. an earlier ``total`` output, used instead of finding them (TotalSegmentator's ``--crop_path``).
        model_size: ``big`` (the task's models as listed), or another size the task comes in (``total_v3``:
            ``small``, its models trained with ResEnc L plans; TotalSegmentator's ``--model_size``).
    """

    task: str = "total"
    mode: Mode = Mode.DEFAULT
    device: str = "auto"
    tta: bool | None = None
    precision: str | None = None
    roi_subset: tuple[str, ...] = ()
    allow_download: bool = True
    remove_small_blobs: float | None = None
    save_lowres: bool = False
    robust_crop: bool = False
    body_seg: bool = False
    resampling_order: int = 1
    v1_order: bool = False
    force_split: bool = False
    higher_order_resampling: bool = False
    crop_path: Path | None = None
    model_size: str = BIG

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "mode", Mode(self.mode))
        except ValueError:
            raise SegtoolError(f"mode must be one of {', '.join(m.value for m in Mode)}, got {self.mode!r}") from None
        if not isinstance(self.task, str):
            raise SegtoolError(f"task must be a task name (see 'segtool tasks'), got {self.task!r}")
        object.__setattr__(self, "roi_subset", class_names(self.roi_subset, "roi_subset"))
        if not isinstance(self.model_size, str | None):
            raise SegtoolError(f"model_size must be a size name ({BIG!r} or another the task comes in), got "
                               f"{self.model_size!r}")
        device = self.device.lower() if isinstance(self.device, str) else ""
        numbered = device.partition(":")[0] in ("cuda", "gpu") and device.partition(":")[2].isdigit()
        if not (device in ("auto", "cpu", "cuda", "gpu", "mps") or numbered):  # gpu, gpu:N: TotalSegmentator's
            raise SegtoolError(f"device must be auto, cpu, cuda, cuda:N, gpu, gpu:N or mps, got {self.device!r}")
        object.__setattr__(self, "device", device)
        if self.tta not in (None, True, False):
            raise SegtoolError(f"tta must be True, False or None (the model's setting), got {self.tta!r}")
        if self.precision not in (None, *PRECISIONS):
            raise SegtoolError(f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        blobs = self.remove_small_blobs
        if blobs is not None and (isinstance(blobs, bool) or not isinstance(blobs, int | float) or not blobs > 0):
            raise SegtoolError(f"remove_small_blobs must be a size in mm3 above 0, got {blobs!r}")
        order = self.resampling_order
        if isinstance(order, bool) or order not in RESAMPLING_ORDERS:
            raise SegtoolError(f"resampling_order must be a whole number from 0 to 5, got {order!r}")
        if self.crop_path is not None:
            object.__setattr__(self, "crop_path", path_argument(self.crop_path, "crop_path"))
        if self.save_lowres and self.higher_order_resampling:
            raise SegtoolError("save_lowres keeps the label map on the models' grid; higher_order_resampling brings "
                               "their logits back to the scan's: choose one")


def class_names(names: str | Iterable[str], what: str) -> tuple[str, ...]:
    """One class name or several (``what``: the argument, for the message) as a tuple of names.

    Raises:
        SegtoolError: ``names`` is neither a name nor a collection of names.
    """
    try:
        found = (names,) if isinstance(names, str) else tuple(names)
    except TypeError:
        found = None
    if found is None or not all(isinstance(name, str) for name in found):
        raise SegtoolError(f"{what} must be a class name or a list of them, got {names!r}")
    return found


def path_argument(value: str | os.PathLike, what: str) -> Path:
    """``value`` as a Path (``what``: the argument, for the message).

    Raises:
        SegtoolError: ``value`` is not a str or path-like, or is empty.
    """
    if not isinstance(value, str | os.PathLike) or not os.fspath(value):
        raise SegtoolError(f"{what} must be a path, got {type(value).__name__} {value!r}")
    return Path(value)


def segment_options(options: SegmentOptions | str | None, values: dict) -> SegmentOptions:
    """`Segmenter`'s options: given whole, or a task name and keywords (``Segmenter("total", mode="fast")``)."""
    if isinstance(options, SegmentOptions):
        if values:
            raise SegtoolError(f"give SegmentOptions or keyword options, not both (got {', '.join(values)})")
        return options
    if options is not None and not isinstance(options, str):
        raise SegtoolError(f"options must be SegmentOptions or a task name, got {type(options).__name__}")
    try:
        return SegmentOptions(**({"task": options} if options else {}), **values)
    except TypeError as err:  # an unknown keyword
        raise SegtoolError(f"Segmenter: {err}".replace("SegmentOptions.__init__() ", "")) from err
