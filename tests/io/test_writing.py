"""Label dtypes, kept image dtypes and atomic writes."""

import json
import os
import re
import stat

import nibabel as nib
import numpy as np
import pytest

from segkit.io import FileWriteError, Image, ImageWriteError, as_label_array, atomic_path, read_image, write_image
from segkit.io.image import XFORM_CODES
from segkit.io.writing import split_suffix


@pytest.mark.parametrize(("high", "dtype"), [(2, np.uint8), (255, np.uint8), (256, np.uint16), (70000, np.uint32)])
def test_labels_use_the_smallest_unsigned_type(tmp_path, high, dtype):
    array = np.zeros((3, 3, 3), np.int64)
    array[1, 1, 1] = high
    path = write_image(Image(array, np.eye(4)), tmp_path / "label.nii.gz", label=True)
    assert nib.load(path).get_data_dtype() == dtype
    assert read_image(path).array[1, 1, 1] == high


def test_negative_or_fractional_labels_are_refused():
    with pytest.raises(ImageWriteError, match=">= 0"):
        as_label_array(np.array([0, -1]))
    with pytest.raises(ImageWriteError, match="whole numbers"):
        as_label_array(np.array([0.0, 0.5]))


@pytest.mark.parametrize("dtype", [np.int16, np.float32, np.uint8, np.int64, np.uint64])
def test_images_keep_their_dtype(tmp_path, dtype):
    image = Image(np.arange(27, dtype=dtype).reshape(3, 3, 3), np.diag([0.5, 0.5, 2.0, 1.0]))
    assert read_image(write_image(image, tmp_path / "x.nii.gz")).array.dtype == dtype


def test_an_interrupted_write_leaves_no_file_and_keeps_the_old_one(tmp_path, monkeypatch):
    target = tmp_path / "scan.nii.gz"
    old = Image(np.ones((3, 3, 3), np.int16), np.eye(4))
    write_image(old, target)

    def crash_half_way(nifti, path):
        with open(path, "wb") as f:
            f.write(b"half a file")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(nib, "save", crash_half_way)
    with pytest.raises(ImageWriteError, match="No space left"):
        write_image(Image(np.zeros((3, 3, 3), np.int16), np.eye(4)), target)
    assert [p.name for p in tmp_path.iterdir()] == ["scan.nii.gz"]
    np.testing.assert_array_equal(read_image(target).array, old.array)


def test_unknown_extension_and_missing_folder_are_write_errors(tmp_path):
    image = Image(np.zeros((2, 2, 2)), np.eye(4))
    with pytest.raises(ImageWriteError, match="cannot write this file type"):
        write_image(image, tmp_path / "x.png")
    with pytest.raises(ImageWriteError, match="does not exist"):
        write_image(image, tmp_path / "missing" / "x.nii.gz")


@pytest.mark.parametrize(("name", "parts"), [
    ("case_0000.nii.gz", ("case_0000", ".nii.gz")), ("CT.NII.GZ", ("CT", ".NII.GZ")), ("brain.mgz", ("brain", ".mgz")),
    ("scan.nii", ("scan", ".nii")), ("a.b.nrrd", ("a.b", ".nrrd")), ("seg.png", None), ("nii.gz", None)])
def test_file_names_split_at_their_image_ending_in_any_case(name, parts):
    assert split_suffix(name) == parts


def test_written_files_get_the_mode_the_umask_gives(tmp_path):
    image = Image(np.arange(27, dtype=np.int16).reshape(3, 3, 3), np.eye(4))
    old = os.umask(0o022)
    try:
        written = [write_image(image, tmp_path / name) for name in ("x.nii.gz", "x.nrrd", "x.mha")]
        with atomic_path(tmp_path / "note.json") as tmp:
            tmp.write_text("{}")
    finally:
        os.umask(old)
    for path in [*written, tmp_path / "note.json"]:
        assert path.stat().st_mode & 0o777 == 0o644, path  # not tempfile's 0600


def test_metaimage_header_names_its_data_file(tmp_path):
    image = Image(np.arange(60, dtype=np.int16).reshape(3, 4, 5), np.diag([0.5, 1.0, 2.0, 1.0]))
    write_image(image, tmp_path / "scan.mhd")
    write_image(image, tmp_path / "scan.mhd")  # again: replaces both files, leaves nothing behind
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scan.mhd", "scan.zraw"]
    assert "ElementDataFile = scan.zraw" in (tmp_path / "scan.mhd").read_text()
    back = read_image(tmp_path / "scan.mhd")
    assert np.array_equal(back.array, image.array) and np.allclose(back.affine, image.affine)


def test_a_json_result_is_checked_before_the_work_that_writes_it(tmp_path):
    from segkit.io.atomic import writable_json_file, write_json

    assert writable_json_file(tmp_path / "new" / "sub" / "summary.json") == tmp_path / "new" / "sub" / "summary.json"
    assert not (tmp_path / "new").exists()  # created by the writer, once the work is done: none left if it fails
    write_json({"dice": 0.9}, tmp_path / "new" / "sub" / "summary.json")
    assert json.loads((tmp_path / "new" / "sub" / "summary.json").read_text()) == {"dice": 0.9}
    with pytest.raises(FileWriteError, match="name a .json file for this result"):
        writable_json_file(tmp_path / "labels" / "case.nii.gz")  # would replace a label map
    (tmp_path / "folder").mkdir()
    with pytest.raises(FileWriteError, match="is a folder; name a .json file in it"):
        writable_json_file(tmp_path / "folder")
    (tmp_path / "file").write_text("x")
    for under_a_file in (tmp_path / "file" / "summary.json", tmp_path / "file" / "sub" / "summary.json"):
        with pytest.raises(FileWriteError, match="is a file; give a folder"):
            writable_json_file(under_a_file)


def test_atomic_write_into_a_missing_folder_or_onto_a_folder_is_one_clear_error(tmp_path):
    with pytest.raises(FileWriteError, match="cannot write .*No such file"), atomic_path(tmp_path / "no" / "a.json"):
        pass
    (tmp_path / "taken").mkdir()
    with pytest.raises(FileWriteError, match="cannot write"), atomic_path(tmp_path / "taken") as tmp:
        tmp.write_text("x")
    assert [p.name for p in tmp_path.iterdir()] == ["taken"]


def test_label_names_round_trip_and_totalsegmentator_tables_are_read(ct_dir, tmp_path):
    seg = read_image(ct_dir / "example_seg.nii.gz")
    assert seg.meta["label_names"][5] == "liver" and len(seg.meta["label_names"]) == 117
    path = write_image(Image(seg.array, seg.affine, {"label_names": {1: "a & b", 2: "c"}}), tmp_path / "m.nii.gz",
                       label=True)
    assert read_image(path).meta["label_names"] == {1: "a & b", 2: "c"}


def test_nifti_qform_and_sform_codes_are_kept_and_default_to_scanner(ct_dir, tmp_path):
    scan = read_image(ct_dir / "example_ct.nii.gz")  # no qform, an "aligned" sform
    assert scan.meta[XFORM_CODES] == (0, 2)
    kept = nib.load(write_image(scan, tmp_path / "kept.nii.gz"))
    assert (int(kept.header["qform_code"]), int(kept.header["sform_code"])) == (0, 2)
    np.testing.assert_allclose(kept.affine, scan.affine, atol=1e-6)
    stated = nib.load(write_image(Image(scan.array, scan.affine), tmp_path / "stated.nii.gz"))
    assert (int(stated.header["qform_code"]), int(stated.header["sform_code"])) == (1, 1)
    np.testing.assert_allclose(stated.get_qform(), scan.affine, atol=1e-4)


def test_label_colours_are_totalsegmentators(ct_dir):
    import xml.etree.ElementTree as ET

    import nibabel as nib

    from segkit.io.label_table import label_table_extension

    def colours(content: bytes) -> dict[str, tuple[float, ...]]:
        root = ET.fromstring(content.strip())
        return {label.get("Key"): tuple(float(label.get(c)) for c in ("Red", "Green", "Blue"))
                for label in root.iter("Label")}

    theirs = colours(nib.load(ct_dir / "example_seg.nii.gz").header.extensions[0].get_content())
    names = read_image(ct_dir / "example_seg.nii.gz").meta["label_names"]
    ours = colours(label_table_extension(names).get_content())
    assert ours.keys() == theirs.keys() and len(set(ours.values())) == 12
    for key, rgb in theirs.items():
        assert ours[key] == pytest.approx(rgb, abs=1e-3), key


def test_writing_through_a_symlink_updates_its_target_and_keeps_the_link(tmp_path):
    (tmp_path / "real.json").write_text("old")
    (tmp_path / "link.json").symlink_to("real.json")
    with atomic_path(tmp_path / "link.json") as tmp:
        tmp.write_text("new")
    assert (tmp_path / "link.json").is_symlink() and (tmp_path / "real.json").read_text() == "new"
    image = Image(np.arange(8, dtype=np.int16).reshape(2, 2, 2), np.eye(4))
    (tmp_path / "scan.nii.gz").symlink_to(write_image(image, tmp_path / "first.nii.gz"))
    write_image(image.with_array(image.array * 2), tmp_path / "scan.nii.gz")
    assert (tmp_path / "scan.nii.gz").is_symlink()
    np.testing.assert_array_equal(read_image(tmp_path / "first.nii.gz").array, image.array * 2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["first.nii.gz", "link.json", "real.json", "scan.nii.gz"]


def _write_note(path):
    with atomic_path(path) as tmp:
        tmp.write_text("{}")


def _write_scan(path):
    write_image(Image(np.zeros((2, 2, 2), np.int16), np.eye(4)), path)


@pytest.mark.parametrize(("name", "write"), [("note.json", _write_note), ("out.nii.gz", _write_scan),
                                             ("out.mhd", _write_scan)])
def test_a_fifo_as_output_path_is_refused_before_writing(tmp_path, name, write):
    fifo = tmp_path / name
    os.mkfifo(fifo)
    message = f"^cannot write {re.escape(str(fifo))}: it is a FIFO .*not a regular file"
    with pytest.raises(FileWriteError, match=message):
        write(fifo)
    assert stat.S_ISFIFO(fifo.lstat().st_mode)
    assert [p.name for p in tmp_path.iterdir()] == [name]
