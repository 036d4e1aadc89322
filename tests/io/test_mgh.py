"""FreeSurfer MGH/MGZ files: geometry as FreeSurfer defines it, round trips, voxel types, bad files."""

import gzip
import struct

import numpy as np
import pytest

from segkit.io import Image, ImageReadError, ImageWriteError, read_image, write_image

SHAPE = (4, 3, 2)
SPACING = (2.0, 3.0, 4.0)
#: direction cosines, one column per voxel axis: i runs left (-R), j runs superior, k runs posterior
MDC = np.array([[-1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
CENTER_RAS = (10.0, -20.0, 30.0)


def freesurfer_mgz(path, values: np.ndarray) -> None:
    """An .mgz written byte by byte from FreeSurfer's layout: a 284-byte big-endian header (version, dimensions,
    frames, type 1 = int32, dof, good-RAS flag, voxel sizes, direction cosines by column, centre RAS), then the voxels
    with the first axis fastest."""
    header = struct.pack(">7ih", 1, *SHAPE, 1, 1, 0, 1)
    header += struct.pack(">3f", *SPACING) + struct.pack(">9f", *MDC.T.ravel()) + struct.pack(">3f", *CENTER_RAS)
    data = values.astype(">i4").tobytes(order="F")
    path.write_bytes(gzip.compress(header.ljust(284, b"\0") + data))


def test_freesurfer_geometry_is_read_as_freesurfer_defines_it(tmp_path):
    values = np.arange(np.prod(SHAPE)).reshape(SHAPE)
    freesurfer_mgz(tmp_path / "T1.mgz", values)
    image = read_image(tmp_path / "T1.mgz")
    np.testing.assert_array_equal(image.array, values)
    assert image.spacing == pytest.approx(SPACING)
    assert "".join(image.axis_codes) == "LSP"
    # FreeSurfer's vox2ras: the voxel at half the dimensions lies at the centre RAS
    centre = image.affine @ [*(np.array(SHAPE) / 2), 1.0]
    np.testing.assert_allclose(centre[:3], CENTER_RAS, atol=1e-5)
    np.testing.assert_allclose(image.affine[:3, :3], MDC * SPACING, atol=1e-6)


def test_a_real_scan_and_its_labels_round_trip_through_mgz(hippocampus_dir, tmp_path):
    scan = read_image(hippocampus_dir / "imagesTr" / "hippocampus_001_0000.nii.gz")
    labels = read_image(hippocampus_dir / "labelsTr" / "hippocampus_001.nii.gz")
    back = read_image(write_image(scan, tmp_path / "scan.mgz"))
    np.testing.assert_array_equal(back.array, scan.array)
    assert back.array.dtype == scan.array.dtype and back.same_grid(scan, tolerance=1e-5)
    label_back = read_image(write_image(labels, tmp_path / "labels.mgh", label=True))
    assert label_back.array.dtype == np.uint8
    np.testing.assert_array_equal(label_back.array, labels.array)


@pytest.mark.parametrize(("values", "dtype"), [
    (np.array([0, 7], np.int32), np.int32), (np.array([0, 7], np.uint16), np.uint8),
    (np.array([0, 255]), np.uint8), (np.array([-1, 300]), np.int16), (np.array([0, 40000], np.uint16), np.int32),
    (np.array([0.5, 1.0]), np.float32), (np.array([False, True]), np.uint8),
])
def test_voxels_keep_their_type_where_mgh_has_it_else_get_the_first_that_holds_them(tmp_path, values, dtype):
    array = np.zeros((2, 2, 2), dtype=values.dtype)
    array.flat[:2] = values
    back = read_image(write_image(Image(array, np.eye(4)), tmp_path / "x.mgz"))
    assert back.array.dtype == dtype
    np.testing.assert_array_equal(back.array, array.astype(dtype))


@pytest.mark.parametrize("channels", [1, 2])
def test_channels_are_frames(tmp_path, channels):
    array = np.arange(channels * 3 * 4 * 5, dtype=np.float32).reshape(channels, 3, 4, 5)
    back = read_image(write_image(Image(array, np.diag([1.0, 1.0, 2.0, 1.0])), tmp_path / "x.mgz"))
    np.testing.assert_array_equal(back.array, array if channels > 1 else array[0])  # one frame reads as 3D


def test_values_mgh_cannot_store_and_broken_files_are_one_line_errors(tmp_path):
    with pytest.raises(ImageWriteError, match="up to int32"):
        write_image(Image(np.full((2, 2, 2), 2**40), np.eye(4)), tmp_path / "big.mgz")
    with pytest.raises(ImageWriteError, match="beyond float32's range"):
        write_image(Image(np.full((2, 2, 2), 1e300), np.eye(4)), tmp_path / "huge.mgz")
    with pytest.raises(ImageWriteError, match="empty image"):
        write_image(Image(np.zeros((0, 2, 2)), np.eye(4)), tmp_path / "empty.mgz")
    assert not list(tmp_path.iterdir())  # nothing half-written
    values = np.zeros(SHAPE)
    freesurfer_mgz(tmp_path / "short.mgz", values)
    whole = gzip.decompress((tmp_path / "short.mgz").read_bytes())
    (tmp_path / "short.mgz").write_bytes(gzip.compress(whole[:-8]))  # voxels cut short: nibabel says so on 2 lines
    with pytest.raises(ImageReadError, match=r"short.mgz: not a readable MGH file \([^\n]+\)$"):
        read_image(tmp_path / "short.mgz")
    (tmp_path / "tensor.mgz").write_bytes(gzip.compress(whole[:20] + struct.pack(">i", 6) + whole[24:]))
    with pytest.raises(ImageReadError, match="tensor.mgz: not a readable MGH file"):  # a type nibabel lacks
        read_image(tmp_path / "tensor.mgz")
    freesurfer_mgz(tmp_path / "cut.mgz", np.zeros(SHAPE))
    (tmp_path / "cut.mgz").write_bytes((tmp_path / "cut.mgz").read_bytes()[:40])
    with pytest.raises(ImageReadError, match=r"cut.mgz: not a readable MGH file \(.+\)$"):
        read_image(tmp_path / "cut.mgz")
    (tmp_path / "renamed.mgz").write_bytes(gzip.compress(b"\x5c\x01\x00\x00" + bytes(344)))  # a NIfTI header
    with pytest.raises(ImageReadError, match=r"renamed.mgz: not a readable MGH file \(.+\)$"):
        read_image(tmp_path / "renamed.mgz")
