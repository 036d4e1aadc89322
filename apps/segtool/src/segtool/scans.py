"""Scans as segtool takes them: a path, an in-memory nibabel image or a segkit `Image`, checked to be one 3D volume."""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import nibabel as nib
import numpy as np

from segkit.io import Image, ImageSource, SegkitError
from segkit.io import as_image as segkit_as_image
from segtool.errors import SegtoolError


def as_image(image: ImageSource) -> Image:
    """A segkit `Image` from an `Image`, a path (read from disk) or an in-memory nibabel image (`segkit.io.as_image`),
    with `SegtoolError` for anything it cannot read."""
    try:
        return segkit_as_image(image)
    except SegtoolError:
        raise
    except SegkitError as err:  # one error type for the API's users: unreadable file, 2D image, bad geometry
        raise SegtoolError(str(err)) from err


def as_scan(image: Image | str | os.PathLike | nib.spatialimages.SpatialImage) -> Image:
    """The checked 3D scan of `as_image` (a 4D image of one volume gives that volume).

    Raises:
        SegtoolError: not one 3D volume, voxels that are not numbers (complex, RGB), or NaN/Inf values.
    """
    where = f"{image}: " if isinstance(image, str | os.PathLike) else ""
    image = as_image(image)
    if image.num_channels != 1:
        raise SegtoolError(f"{where}expected a single-channel 3D scan, got {image.num_channels} channels")
    if min(image.spatial_shape) < 2:
        raise SegtoolError(f"{where}expected a 3D scan, got shape {image.spatial_shape} (a 2D image?)")
    if np.issubdtype(image.array.dtype, np.floating) and not (finite := np.isfinite(image.array)).all():
        raise SegtoolError(f"{where}the scan has {finite.size - finite.sum()} NaN or Inf voxel(s); replace them "
                           "(with the background value, say) before segmenting")
    return image if image.array.ndim == 3 else image.with_array(image.array[0])


class ScanReader:
    """Reads ``scans`` with `as_scan`, in order, one ahead of the caller in a background thread: the first while
    the models load, each next one while the current one is segmented. File reading, gzip and DICOM decoding
    release Python's lock, so the reading costs no wall time beyond what the overlap cannot hide.
    """

    def __init__(self, scans: Sequence[Path]) -> None:
        self._scans = list(scans)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="segtool-read")
        self._taken = 0
        self._pending = self._submit(0)

    def __enter__(self) -> ScanReader:
        return self

    def __exit__(self, *exc) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)  # an interrupted run does not wait for reads ahead

    def take(self, scan: Path) -> Image:
        """The scan ``scan`` (the next in order), once read; reading the one after it starts.

        Raises:
            SegtoolError: as `as_scan`.
        """
        if self._taken >= len(self._scans) or self._scans[self._taken] != scan:
            raise ValueError(f"scans are taken in order; {scan} is not next")
        future = self._pending
        self._taken += 1
        self._pending = self._submit(self._taken)
        return future.result()

    def _submit(self, index: int) -> Future | None:
        return self._pool.submit(as_scan, self._scans[index]) if index < len(self._scans) else None
