"""One mask per class, as TotalSegmentator writes them without --ml."""

import numpy as np
import pytest

from segkit.io import Image, read_image
from segkit.io.image import XFORM_CODES
from segtool.errors import SegtoolError
from segtool.outputs import write_class_masks
from segtool.registry import load_registry
from segtool.run import OutputRequest


@pytest.mark.parametrize("threads", [1, None])
def test_every_class_gets_its_mask_present_or_not(nnunet_reference_dir, tmp_path, threads):
    labels = read_image(nnunet_reference_dir / "predictions" / "totalseg_fast_example_ct.nii.gz")
    labels = Image(np.ascontiguousarray(labels.array), labels.affine, labels.grid_meta())  # as segtool lays maps out
    names = load_registry().task("total").labels
    written = write_class_masks(labels, names, tmp_path, threads=threads)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"{n}.nii.gz" for n in names.values())
    assert written == [tmp_path / f"{names[v]}.nii.gz" for v in sorted(names)]
    present = set(np.unique(labels.array).tolist()) - {0}
    assert len(present) == 36  # the other 81 masks are copies of one empty file
    for value, name in names.items():
        mask = read_image(tmp_path / f"{name}.nii.gz")
        assert mask.array.dtype == np.uint8 and mask.same_grid(labels, tolerance=1e-6)
        assert mask.meta == {XFORM_CODES: (0, 2)}  # the map's qform and sform codes, without its label table
        assert np.array_equal(mask.array, (labels.array == value).astype(np.uint8)), name


def test_saving_threads_are_checked():
    assert OutputRequest(saving_threads=3).saving_threads == 3
    with pytest.raises(SegtoolError, match="saving threads must be a whole number above 0, got 0"):
        OutputRequest(saving_threads=0)


def test_a_folder_in_a_mask_s_place_leaves_no_partial_set(tmp_path):
    labels = Image(np.array([[[0, 1], [2, 2]]] * 2, np.uint8), np.eye(4))
    (tmp_path / "posterior.nii.gz").mkdir()  # sorted after anterior: its move would fail after anterior's
    with pytest.raises(SegtoolError, match=f"cannot write {tmp_path / 'posterior.nii.gz'}: a folder of that name"):
        write_class_masks(labels, {1: "anterior", 2: "posterior"}, tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["posterior.nii.gz"]
