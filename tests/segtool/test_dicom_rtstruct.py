"""Label maps as DICOM RT Structure Sets of the series they were segmented from."""

import numpy as np
import pydicom
from matplotlib.path import Path as Polygon
from typer.testing import CliRunner

from segkit.io import read_image
from segtool.cli.main import app
from segtool.dicom_rtstruct import corners, write_rtstruct
from segtool.dicom_series import label_frame, slice_geometry
from segtool.registry import load_registry


def rasterize(contours, source) -> np.ndarray:
    """The pixels of ``source``'s slice inside ``contours`` (LPS points), by the even-odd rule."""
    origin, column_step, row_step = slice_geometry(source, None)
    to_pixels = np.linalg.pinv(np.stack([column_step, row_step], axis=1))  # LPS offset -> (column, row)
    inside = np.zeros((int(source.Rows), int(source.Columns)), dtype=bool)
    for contour in contours:
        outline = (np.asarray(contour.ContourData, dtype=np.float64).reshape(-1, 3) - origin) @ to_pixels.T
        (c0, r0), (c1, r1) = np.floor(outline.min(0)).astype(int), np.ceil(outline.max(0)).astype(int) + 1
        rows, columns = np.mgrid[r0:r1, c0:c1]
        centres = np.stack([columns.ravel(), rows.ravel()], axis=1)
        inside[r0:r1, c0:c1] ^= Polygon(outline).contains_points(centres).reshape(rows.shape)
    return inside


def test_totalsegmentators_map_of_the_dicom_series_round_trips(ct_dir, tmp_path):
    scan = read_image(ct_dir / "example_ct_dicom")
    labels = read_image(ct_dir / "example_seg_dicom.nii.gz")  # TotalSegmentator's output on the series' grid
    names = load_registry().task("total").labels
    structures = pydicom.dcmread(write_rtstruct(labels, names, scan, tmp_path / "rt.dcm"))
    sources = [pydicom.dcmread(f, stop_before_pixels=True) for f in scan.meta["dicom_files"]]
    uids = [s.file_meta.MediaStorageSOPInstanceUID for s in sources]  # anonymization blanked SOPInstanceUID
    present = [v for v in sorted(names) if (labels.array == v).any()]
    assert structures.Modality == "RTSTRUCT" and structures.StudyInstanceUID == sources[0].StudyInstanceUID
    assert [roi.ROIName for roi in structures.StructureSetROISequence] == [names[v] for v in present]
    referenced = structures.ReferencedFrameOfReferenceSequence[0]
    assert referenced.FrameOfReferenceUID == sources[0].FrameOfReferenceUID
    series = referenced.RTReferencedStudySequence[0].RTReferencedSeriesSequence[0]
    assert [i.ReferencedSOPInstanceUID for i in series.ContourImageSequence] == uids
    spleen = structures.ROIContourSequence[[names[v] for v in present].index("spleen")]
    assert list(spleen.ROIDisplayColor) == [50, 170, 60]  # its colour in segment_codes.json
    # every ROI's contours enclose exactly the pixels of its class, slice by slice
    by_slice = {uid: (source, label_frame(labels, source, None)) for uid, source in zip(uids, sources, strict=True)}
    for value, outline in zip(present, structures.ROIContourSequence, strict=True):
        per_slice = {}
        for contour in outline.ContourSequence:
            assert contour.ContourGeometricType == "CLOSED_PLANAR"
            per_slice.setdefault(contour.ContourImageSequence[0].ReferencedSOPInstanceUID, []).append(contour)
        for uid, (source, frame) in by_slice.items():
            assert np.array_equal(rasterize(per_slice.get(uid, []), source), frame == value), (names[value], uid)


def test_corners_drop_points_on_straight_runs():
    square = np.array([[0, 0], [1, 0], [2, 0], [2, 1], [2, 2], [1, 2], [0, 2], [0, 1]], dtype=float)
    assert corners(square).tolist() == [[0, 0], [2, 0], [2, 2], [0, 2]]
    diamond = np.array([[0.5, 0], [1, 0.5], [0.5, 1], [0, 0.5]])
    assert np.array_equal(corners(diamond), diamond)


def test_cli_takes_several_output_types_and_checks_each(nnunet_reference_dir, tmp_path):
    nifti = nnunet_reference_dir / "predictions" / "inputs" / "hippocampus_033_0000.nii.gz"
    result = CliRunner().invoke(app, ["-i", str(nifti), "-o", str(tmp_path / "out"), "-ta", "hippocampus",
                                      "-ot", "nifti,dicom_rtstruct"])  # also: -ot nifti dicom_rtstruct
    assert result.exit_code == 2 and "needs a DICOM series folder or zip" in result.output, result.output
    assert not list(tmp_path.iterdir())  # refused before any work
