"""Predict every case of an input file or folder into an output folder (what segkit-predict runs)."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from segkit.infer.cases import InputCase, check_output_folder, find_input_cases
from segkit.infer.errors import InputMismatchError
from segkit.infer.export import labels_from_logits, probability_slabs
from segkit.infer.predictor import Predictor
from segkit.infer.preprocessing import PreparedCase
from segkit.infer.probabilities import LABELS_FILE, write_labels_file, write_probabilities
from segkit.io import Image, read_channels, read_image, write_image
from segkit.io.atomic import output_folder

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class BatchOptions:
    """Options of a folder run.

    Args:
        save_probabilities: also write ``CASE.npz`` (nnU-Net's layout: key ``probabilities``, (c, z, y, x)).
        skip_existing: leave cases whose output files already exist (``--continue``).
        previous_stage_dir: for a cascade stage, the folder of the previous stage's label maps (same names).
        case_ids: predict only these cases of the input folder (all must be there); None: every case.
    """

    save_probabilities: bool = False
    skip_existing: bool = False
    previous_stage_dir: Path | None = None
    case_ids: frozenset[str] | None = None


def _read(case: InputCase) -> Image:
    return read_image(case.files[0]) if len(case.files) == 1 else read_channels(case.files)


def predict_folder(predictor: Predictor, inputs: str | os.PathLike, output: str | os.PathLike, *,
                   options: BatchOptions | None = None,
                   on_case: Callable[[InputCase, str], None] | None = None) -> list[Path]:
    """Predict all cases of ``inputs`` into ``output``; returns the label files written.

    Reading and pre-processing of the next case overlap the prediction of the current one, and writing
    overlaps the next prediction. Every file is written atomically, so an interrupted run leaves only
    complete files behind (and ``skip_existing`` resumes it); a run that writes no case leaves neither the
    folder (if it created it) nor its ``dataset.json``.

    Args:
        predictor: the loaded model.
        inputs: an image file or a folder of ``CASE_XXXX`` files.
        output: the output folder (created); it also gets a ``dataset.json`` with the model's labels, as
            nnUNetv2_predict writes (`segkit-ensemble` reads it).
        options: see `BatchOptions`.
        on_case: called with ``(case, "done" | "skipped")`` after each case (progress display).

    Raises:
        InputMismatchError: no inputs, or an image that does not fit the model.
        OutputError: the output folder cannot be written, or is the input folder.
    """
    options = options or BatchOptions()
    if not isinstance(inputs, str | os.PathLike):
        raise InputMismatchError(f"the input must be one image file or a folder of them, got {type(inputs).__name__}")
    check_output_folder(output, [inputs])
    cases = find_input_cases(inputs, num_channels=predictor.setup.in_channels)
    if options.case_ids is not None:
        missing = sorted(options.case_ids - {case.identifier for case in cases})
        if missing:
            raise InputMismatchError(f"case(s) {missing[:3]} are not in {inputs}")
        cases = [case for case in cases if case.identifier in options.case_ids]
    setup = predictor.setup
    endings = {case.file_ending for case in cases}
    file_ending = endings.pop() if len(endings) == 1 else setup.file_ending  # outputs keep their input's format
    with output_folder(output, side_files=(LABELS_FILE,)) as out_dir:
        write_labels_file(out_dir, setup.labels, setup.regions_class_order, file_ending)
        todo = []
        for case in cases:
            if options.skip_existing and _is_done(case, out_dir, options.save_probabilities):
                if on_case:
                    on_case(case, "skipped")
                continue
            todo.append(case)
        return _predict_cases(predictor, todo, out_dir, options=options, on_case=on_case)


def _predict_cases(predictor: Predictor, todo: list[InputCase], out_dir: Path, *, options: BatchOptions,
                   on_case: Callable[[InputCase, str], None] | None) -> list[Path]:
    """Predict ``todo`` into ``out_dir``: reading the next case and writing the last overlap the prediction."""
    with ThreadPoolExecutor(max_workers=1) as reader, ThreadPoolExecutor(max_workers=1) as writer:
        def prepare(case: InputCase) -> tuple[Image, PreparedCase]:
            image = _read(case)
            previous = None
            if options.previous_stage_dir is not None:
                previous = read_image(Path(options.previous_stage_dir) / case.output_name())
            try:
                return image, predictor.prepare(image, previous=previous)
            except InputMismatchError as err:
                raise InputMismatchError(f"case {case.identifier}: {err}") from err

        pending: Future | None = reader.submit(prepare, todo[0]) if todo else None
        writes: list[Future] = []
        for index, case in enumerate(todo):
            for failed in (f for f in writes if f.done() and f.exception() is not None):
                failed.result()  # stop at the first failed write (a full disk), not after predicting every case
            image, prepared = pending.result()
            pending = reader.submit(prepare, todo[index + 1]) if index + 1 < len(todo) else None
            logits = predictor.logits_of(prepared)
            labels = labels_from_logits(logits, prepared.geometry, predictor.setup, image=image,
                                        fast=predictor.options.fast_export)
            # computed slab by slab as the writer thread writes them: all classes on the input grid never exist at once
            probs = (((len(logits), *image.spatial_shape),
                      probability_slabs(logits, prepared.geometry, predictor.setup, image=image))
                     if options.save_probabilities else None)
            del logits
            writes.append(writer.submit(_write_case, labels, probs, out_dir, case))
            if on_case:
                writes[-1].add_done_callback(lambda _f, c=case: on_case(c, "done"))
        return [future.result() for future in writes]


def _is_done(case: InputCase, out_dir: Path, with_probabilities: bool) -> bool:
    # probabilities are written before the label map, so a label map alone means they were not asked for
    done = (out_dir / case.output_name()).is_file()
    return done and (not with_probabilities or (out_dir / f"{case.identifier}.npz").is_file())


def _write_case(labels: Image, probs: tuple[tuple[int, ...], Iterator[tuple[slice, np.ndarray]]] | None,
                out_dir: Path, case: InputCase) -> Path:
    """Write the probabilities (their shape and slabs) if asked for, then the label map."""
    path = out_dir / case.output_name()
    npz = out_dir / f"{case.identifier}.npz"
    if probs is not None:
        write_probabilities(npz, *probs)
    try:
        write_image(labels, path, label=True)
    except Exception:
        if probs is not None:
            npz.unlink(missing_ok=True)  # a case is its label map and its probabilities, or neither
        raise
    logger.info("wrote %s", path)
    return path
