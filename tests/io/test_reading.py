"""Reading and writing real scans in every supported format reproduces voxels and geometry."""

import gzip
import re
import shutil
import zipfile
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk

from segkit.io import Image, ImageGeometryError, ImageReadError, read_channels, read_image, write_image


def assert_same_image(actual: Image, expected: Image) -> None:
    assert actual.array.dtype == expected.array.dtype
    np.testing.assert_array_equal(actual.array, expected.array)
    np.testing.assert_allclose(actual.affine, expected.affine, atol=1e-5)


@pytest.mark.parametrize("suffix", [".nii.gz", ".nii", ".mgz", ".nrrd", ".mha"])
def test_ct_round_trip_in_every_writable_format(ct_dir, tmp_path, suffix):
    original = read_image(ct_dir / "example_ct.nii.gz")
    assert original.spatial_shape == (122, 101, 112) and original.spacing == pytest.approx((3, 3, 3))
    path = write_image(original, tmp_path / f"ct{suffix}")
    assert_same_image(read_image(path), original)


def test_nifti_affine_matches_nibabel(hippocampus_dir):
    path = hippocampus_dir / "imagesTr" / "hippocampus_001_0000.nii.gz"
    image = read_image(path)
    reference = nib.load(path)
    np.testing.assert_array_equal(image.array, np.asanyarray(reference.dataobj))
    np.testing.assert_allclose(image.affine, reference.affine)


def test_a_big_endian_nifti_is_read_in_native_byte_order(hippocampus_dir, tmp_path):
    reference = nib.load(hippocampus_dir / "imagesTr" / "hippocampus_001_0000.nii.gz")
    header = nib.Nifti1Header(endianness=">")
    big_endian = np.asanyarray(reference.dataobj).astype(">f4")
    nib.save(nib.Nifti1Image(big_endian, reference.affine, header), tmp_path / "be.nii")
    assert nib.load(tmp_path / "be.nii").get_data_dtype().byteorder == ">"
    image = read_image(tmp_path / "be.nii")
    assert image.array.dtype == np.float32 and image.array.dtype.isnative  # as torch.from_numpy needs
    np.testing.assert_array_equal(image.array, np.asanyarray(reference.dataobj))


def test_nrrd_geometry_matches_its_header_and_survives_nifti(data_dir, tmp_path):
    image = read_image(data_dir / "misc" / "nrrd" / "brain1_image.nrrd")
    assert image.spatial_shape == (256, 256, 25)
    assert image.spacing == pytest.approx((0.78125, 0.78125, 6.5), abs=1e-5)
    label = read_image(data_dir / "misc" / "nrrd" / "brain1_label.nrrd")
    assert label.same_grid(image)
    assert_same_image(read_image(write_image(image, tmp_path / "brain.nii.gz")), image)


def test_dicom_series_lies_on_the_grid_of_its_nifti_conversion(ct_dir):
    ct = read_image(ct_dir / "example_ct_dicom")
    seg = read_image(ct_dir / "example_seg_dicom.nii.gz")
    assert ct.spatial_shape == seg.spatial_shape == (512, 512, 20)
    np.testing.assert_allclose(ct.affine, seg.affine, atol=1e-4)
    assert ct.array.min() == -1024  # HU: rescale intercept applied
    # Organs segmented by TotalSegmentator are soft tissue or bone, not air: a flipped axis would break this.
    assert (ct.array[seg.array > 0] > -300).mean() > 0.95


def test_dicom_zip_reads_like_the_folder(ct_dir, tmp_path):
    archive = tmp_path / "series.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in (ct_dir / "example_ct_dicom").iterdir():
            zf.write(path, f"patient/series/{path.name}")
    packed, folder = read_image(archive), read_image(ct_dir / "example_ct_dicom")
    assert_same_image(packed, folder)
    # the slices are named as the zip's members, in the folder's slice order (a DICOM SEG references them)
    assert packed.meta["dicom_archive"] == str(archive)
    assert packed.meta["dicom_files"] == tuple(f"patient/series/{Path(f).name}" for f in folder.meta["dicom_files"])


def test_a_dicom_zip_gathers_its_series_from_every_folder(ct_dir, tmp_path):
    folder = read_image(ct_dir / "example_ct_dicom")
    slices = sorted((ct_dir / "example_ct_dicom").iterdir())
    archive = tmp_path / "split.zip"  # the series in two folders, beside a larger folder of reports
    with zipfile.ZipFile(archive, "w") as zf:
        for number, path in enumerate(slices):
            zf.write(path, f"DICOM/{number // 10}/{path.name}")
        for number in range(len(slices) + 5):
            zf.writestr(f"DICOM/reports/report_{number}.txt", "not an image")
    packed = read_image(archive)
    assert_same_image(packed, folder)
    names = {path.name: f"DICOM/{number // 10}/{path.name}" for number, path in enumerate(slices)}
    assert packed.meta["dicom_files"] == tuple(names[Path(f).name] for f in folder.meta["dicom_files"])
    empty = tmp_path / "reports.zip"
    with zipfile.ZipFile(empty, "w") as zf:
        zf.writestr("reports/report.txt", "not an image")
    with pytest.raises(ImageReadError, match=r"reports.zip: no DICOM series found$"):
        read_image(empty)


def test_4d_nifti_becomes_channels_first_and_round_trips(data_dir, tmp_path):
    path = data_dir / "misc" / "example4d.nii.gz"
    image = read_image(path)
    data = np.asanyarray(nib.load(path).dataobj)
    assert image.array.shape == (2, 128, 96, 24)
    np.testing.assert_array_equal(image.array[1], data[..., 1])
    written = write_image(image, tmp_path / "4d.nii.gz")
    assert_same_image(read_image(written), image)
    assert nib.load(written).header.get_zooms()[3] == nib.load(path).header.get_zooms()[3] == 2000.0
    assert nib.load(written).header.get_xyzt_units() == ("mm", "sec")


def test_channel_files_stack_and_must_share_a_grid(hippocampus_dir, tmp_path):
    first = hippocampus_dir / "imagesTr" / "hippocampus_001_0000.nii.gz"
    image = read_image(first)
    second = write_image(image.with_array(image.array * 2), tmp_path / "case_0001.nii.gz")
    stacked = read_channels([first, second])
    assert stacked.array.shape == (2, *image.spatial_shape)
    np.testing.assert_array_equal(stacked.array[1], image.array * 2)
    shifted_affine = image.affine.copy()
    shifted_affine[0, 3] += image.spacing[0]  # one voxel off
    shifted = write_image(Image(image.array, shifted_affine), tmp_path / "shifted_0001.nii.gz")
    with pytest.raises(ImageGeometryError, match="differs from"):
        read_channels([first, shifted])


@pytest.mark.parametrize(("stored", "slope", "inter", "dtype"), [
    (np.int16, 1.0, -1024.0, np.int32),  # a CT's stored values and intercept (dcm2niix writes them so)
    (np.uint16, 2.0, -1024.0, np.int32),
    (np.uint8, 0.5, -100.0, np.float32),
    (np.int32, 1.0, -1024.0, np.float64),  # beyond float32's exact integers: as nibabel gives it
    (np.int16, 1.0, 0.0, np.int16),  # no scaling: the stored type
])
def test_scaled_nifti_values_come_whole_or_in_float32_where_exact(tmp_path, stored, slope, inter, dtype):
    values = np.arange(60, dtype=stored).reshape(3, 4, 5)
    nifti = nib.Nifti1Image(values, np.eye(4))
    nifti.header.set_slope_inter(slope, inter)
    nib.save(nifti, tmp_path / "scaled.nii.gz")
    image = read_image(tmp_path / "scaled.nii.gz")
    assert image.array.dtype == dtype
    np.testing.assert_array_equal(image.array, values.astype(np.float64) * slope + inter)


def test_missing_file_is_a_read_error(tmp_path):
    with pytest.raises(ImageReadError, match="no such file"):
        read_image(tmp_path / "absent.nii.gz")


def test_unsupported_extension_is_a_read_error(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hello")
    with pytest.raises(ImageReadError, match="unsupported file type"):
        read_image(path)


def test_truncated_nifti_is_a_read_error(ct_dir, tmp_path):
    data = (ct_dir / "example_ct.nii.gz").read_bytes()
    path = tmp_path / "truncated.nii.gz"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageReadError, match="truncated.nii.gz: not a readable NIfTI"):
        read_image(path)


@pytest.mark.parametrize("name", ["fake.nii.gz", "fake.nrrd", "fake.mha"])
def test_non_image_file_is_a_read_error(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(b"this is not an image at all\n" * 20)
    with pytest.raises(ImageReadError, match=name):
        read_image(path)


def test_empty_folder_is_not_a_dicom_series(tmp_path):
    with pytest.raises(ImageReadError, match="no DICOM series"):
        read_image(tmp_path)


def test_folder_without_dicom_is_a_read_error_and_itk_stays_quiet(tmp_path, capfd):
    (tmp_path / "a.txt").write_text("not DICOM\n")
    with pytest.raises(ImageReadError, match=f"^{re.escape(str(tmp_path))}: no DICOM series found in this folder$"):
        read_image(tmp_path)
    assert capfd.readouterr().err == ""
    assert sitk.ProcessObject.GetGlobalWarningDisplay()  # switched off only while reading


@pytest.mark.parametrize("packed", [False, True], ids=["folder", "zip"])
def test_dicom_series_with_a_missing_slice_is_a_geometry_error(ct_dir, tmp_path, capfd, packed):
    files = sorted((ct_dir / "example_ct_dicom").iterdir())
    series = tmp_path / "gapped"
    series.mkdir()
    for path in files[:9] + files[10:]:
        shutil.copy(path, series / path.name)
    if packed:
        series = shutil.make_archive(str(series), "zip", series)
    # Slices count up the slice axis; the file names run down it, so the gap follows slice 10.
    gap = r"slice spacing varies from 2 to 4 mm \(between slices 10 and 11 of 19\): a slice is missing\?$"
    with pytest.raises(ImageGeometryError, match=f"^{re.escape(str(series))}: {gap}"):
        read_image(series)
    assert capfd.readouterr().err == ""


def test_dicom_series_with_a_slice_twice_says_so(ct_dir, tmp_path):
    files = sorted((ct_dir / "example_ct_dicom").iterdir())
    series = tmp_path / "doubled"
    series.mkdir()
    for path in files:
        shutil.copy(path, series / path.name)
    shutil.copy(files[5], series / "copy_of_a_slice.dcm")
    with pytest.raises(ImageGeometryError, match=f"doubled: {files[5].name} and copy_of_a_slice.dcm lie at the same "
                                                 "position"):
        read_image(series)


@pytest.mark.parametrize("zoom", [0.0, -1.0])
def test_zero_or_negative_spacing_is_a_geometry_error(tmp_path, zoom):
    nifti = nib.Nifti1Image(np.zeros((4, 4, 4), np.int16), None)
    nifti.header.set_sform(None, code=0)
    nifti.header.set_qform(None, code=0)
    raw = bytearray(nifti.header.binaryblock + b"\0" * 4 + np.zeros(64, np.int16).tobytes())
    raw[84:88] = np.float32(zoom).tobytes()  # pixdim[2]: the spacing along j
    path = tmp_path / "bad_spacing.nii.gz"
    path.write_bytes(gzip.compress(bytes(raw)))
    with pytest.raises(ImageGeometryError, match="bad_spacing.nii.gz: voxel spacing must be positive"):
        read_image(path)


def test_an_image_without_voxels_says_so(tmp_path):
    path = tmp_path / "empty.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((0, 5, 5), np.float32), np.eye(4)), path)
    with pytest.raises(ImageGeometryError, match=r"empty.nii.gz: holds no voxels \(shape \(0, 5, 5\)\)"):
        read_image(path)


def test_dicom_reader_copes_with_a_copied_subset(ct_dir, tmp_path):
    files = sorted((ct_dir / "example_ct_dicom").iterdir())[:5]
    for path in files:
        shutil.copy(path, tmp_path / path.name)
    image = read_image(tmp_path)
    assert image.spatial_shape == (512, 512, 5)


@pytest.mark.parametrize("dtype", [np.complex64, np.dtype([("R", "u1"), ("G", "u1"), ("B", "u1")])],
                         ids=["complex", "rgb"])
def test_complex_or_structured_voxels_are_a_read_error(tmp_path, dtype):
    path = tmp_path / "odd.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((3, 3, 3), dtype), np.eye(4)), path)
    with pytest.raises(ImageReadError, match=f"^{re.escape(str(path))}: voxels of type .* are not supported"):
        read_image(path)


def test_bad_metaimage_header_is_one_line_and_itk_prints_nothing(tmp_path, capfd):
    path = tmp_path / "bad.mha"
    path.write_text("ObjectType = Image\nNDims = 3\nDimSize = 10 10 10\nElementType = MET_SHORT\n"
                    "ElementDataFile = missing.raw\n")
    with pytest.raises(ImageReadError, match=r"bad.mha: not a readable image \(.*data file\)$"):
        read_image(path)
    assert capfd.readouterr().err == ""
    assert sitk.ProcessObject.GetGlobalWarningDisplay()


PIXEL_DATA_TAG = b"\xe0\x7f\x10\x00"  # (7FE0,0010), little endian


def _copy_series(ct_dir, folder):
    folder.mkdir()
    for path in sorted((ct_dir / "example_ct_dicom").iterdir()):
        shutil.copy(path, folder / path.name)
    return sorted(folder.iterdir())


def _cut(path, *, pixel_bytes=None, header_bytes=None):
    """Truncate a slice ``pixel_bytes`` past its Pixel Data tag, or to its first ``header_bytes``."""
    data = path.read_bytes()
    path.write_bytes(data[: header_bytes or data.find(PIXEL_DATA_TAG) + pixel_bytes])


# File names run down the slice axis: the first and the last name are the two end slices.
@pytest.mark.parametrize(("index", "cut"), [(0, {"pixel_bytes": 1000}), (10, {"pixel_bytes": 1000}),
                                            (-1, {"header_bytes": 150})],
                         ids=["end-slice-truncated", "middle-slice-truncated", "other-end-header-cut"])
def test_a_corrupt_dicom_slice_is_named_not_dropped(ct_dir, tmp_path, capfd, index, cut):
    files = _copy_series(ct_dir, tmp_path / "series")
    _cut(files[index], **cut)
    message = f"^{re.escape(str(tmp_path / 'series'))}: {files[index].name} looks like a DICOM slice but cannot be read"
    with pytest.raises(ImageReadError, match=message):
        read_image(tmp_path / "series")
    assert capfd.readouterr().err == ""


def test_a_dicom_slice_cut_just_inside_its_pixels_is_named(ct_dir, tmp_path):
    files = _copy_series(ct_dir, tmp_path / "series")
    _cut(files[5], pixel_bytes=20)  # GDCM still lists it in the series, then fails to read it
    with pytest.raises(ImageReadError, match=f": DICOM slice {files[5].name} could not be read"):
        read_image(tmp_path / "series")


def test_a_readme_and_a_dicomdir_beside_the_slices_are_ignored(ct_dir, tmp_path):
    _copy_series(ct_dir, tmp_path / "series")
    (tmp_path / "series" / "README.txt").write_text("exported from PACS\n")
    uid = b"1.2.840.10008.1.3.10"  # Media Storage Directory Storage: a DICOMDIR's file meta
    (tmp_path / "series" / "DICOMDIR").write_bytes(b"\0" * 128 + b"DICM\x02\x00\x02\x00UI" + bytes([len(uid), 0]) + uid)
    assert read_image(tmp_path / "series").spatial_shape == (512, 512, 20)
