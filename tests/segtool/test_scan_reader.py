"""Scans read one ahead of their use, as the command line reads a batch."""

import threading

import numpy as np
import pytest

from segkit.io import read_image
from segtool import scans as scans_module
from segtool.errors import SegtoolError
from segtool.scans import ScanReader


def test_scans_are_read_ahead_in_order_and_a_bad_one_fails_at_its_turn(nnunet_reference_dir, tmp_path, monkeypatch):
    folder = nnunet_reference_dir / "predictions" / "inputs"
    good = [folder / "hippocampus_033_0000.nii.gz", folder / "hippocampus_035_0000.nii.gz"]
    broken = tmp_path / "broken.nii.gz"
    broken.write_bytes(good[0].read_bytes()[:300])
    order = [good[0], broken, good[1]]
    started = {path: threading.Event() for path in order}
    read = scans_module.as_scan

    def as_scan(path):
        started[path].set()
        return read(path)

    monkeypatch.setattr(scans_module, "as_scan", as_scan)
    with ScanReader(order) as reader:
        assert started[good[0]].wait(10)  # read before anyone asks for it
        first = reader.take(good[0])
        assert np.array_equal(first.array, read_image(good[0]).array)
        assert started[broken].wait(10)  # the next one is read while the first is in use
        with pytest.raises(SegtoolError, match="broken.nii.gz: not a readable NIfTI file"):
            reader.take(broken)
        assert reader.take(good[1]).spatial_shape == read_image(good[1]).spatial_shape
        with pytest.raises(ValueError, match="in order"):
            reader.take(good[1])
