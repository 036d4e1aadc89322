"""Label maps as DICOM SEG objects of the series they were segmented from."""

import zipfile

import highdicom as hd
import numpy as np
import pytest
from typer.testing import CliRunner

from segkit.io import read_image
from segtool.cli.main import app
from segtool.dicom_seg import write_dicom_seg
from segtool.errors import SegtoolError
from segtool.registry import load_registry
from segtool.run import OutputRequest, plan_targets, requested_types


def read_dicom_seg(path, grid):
    """The SEG's label map on ``grid`` (each voxel found through both geometries), and its segment labels."""
    seg = hd.seg.segread(path)
    volume = seg.get_volume(combine_segments=True, relabel=False)  # segment numbers, LPS (slice, row, column)
    to_volume = np.linalg.inv(volume.affine) @ np.diag([-1.0, -1.0, 1.0, 1.0]) @ grid.affine
    ijk = np.stack(np.meshgrid(*[np.arange(n) for n in grid.spatial_shape], indexing="ij"))
    index = np.rint(np.tensordot(to_volume[:3, :3], ijk, 1) + to_volume[:3, 3, None, None, None]).astype(int)
    labels = [d.SegmentLabel for d in seg.SegmentSequence]
    return volume.array[index[0], index[1], index[2]], labels, seg


def test_totalsegmentators_map_of_the_dicom_series_round_trips(ct_dir, tmp_path):
    scan = read_image(ct_dir / "example_ct_dicom")
    assert len(scan.meta["dicom_files"]) == 20
    labels = read_image(ct_dir / "example_seg_dicom.nii.gz")  # TotalSegmentator's output on the series' grid
    names = load_registry().task("total").labels
    path = write_dicom_seg(labels, names, scan, tmp_path / "seg.dcm")
    numbers, segment_labels, seg = read_dicom_seg(path, scan)
    present = [v for v in sorted(names) if (labels.array == v).any()]
    assert segment_labels == [names[v] for v in present] and len(present) > 20
    assert np.array_equal(np.array([0, *present])[numbers], labels.array)
    assert seg.Modality == "SEG" and seg.NumberOfFrames > 0
    assert seg.StudyInstanceUID == scan_header(scan).StudyInstanceUID
    # each segment carries its class's SNOMED CT codes and colour (the codes of TotalSegmentator's table)
    segment = {d.SegmentLabel: d for d in seg.SegmentSequence}
    humerus = segment["humerus_left"].SegmentedPropertyTypeCodeSequence[0]
    assert (humerus.CodingSchemeDesignator, humerus.CodeValue, humerus.CodeMeaning) == ("SCT", "85050009", "Humerus")
    assert humerus.SegmentedPropertyTypeModifierCodeSequence[0].CodeMeaning == "Left"
    assert segment["spleen"].SegmentedPropertyTypeCodeSequence[0].CodeValue == "78961009"
    assert segment["spleen"].SegmentedPropertyCategoryCodeSequence[0].CodeMeaning == "Anatomical Structure"
    assert hd.color.CIELabColor.from_dicom_value(segment["spleen"].RecommendedDisplayCIELabValue).to_rgb() == (
        50, 170, 60)


def test_a_zipped_series_gives_the_seg_of_its_folder(ct_dir, tmp_path):
    folder = ct_dir / "example_ct_dicom"
    archive = tmp_path / "series.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(folder.iterdir()):
            zf.write(path, f"study/series/{path.name}")
    assert plan_targets([archive], tmp_path / "out", OutputRequest(output_types=("nifti", "dicom_seg")),
                        batch=False) == [tmp_path / "out"]
    labels = read_image(ct_dir / "example_seg_dicom.nii.gz")
    names = load_registry().task("total").labels
    from_zip = write_dicom_seg(labels, names, read_image(archive), tmp_path / "zip.dcm")
    from_folder = write_dicom_seg(labels, names, read_image(folder), tmp_path / "folder.dcm")
    (numbers, segments, seg), (expected, expected_segments, reference) = (
        read_dicom_seg(path, labels) for path in (from_zip, from_folder))
    assert segments == expected_segments and np.array_equal(numbers, expected)
    assert referenced_slices(seg) == referenced_slices(reference) and len(referenced_slices(seg)) == 20


def referenced_slices(seg) -> list[str]:
    return [i.ReferencedSOPInstanceUID for i in seg.ReferencedSeriesSequence[0].ReferencedInstanceSequence]


def test_a_class_without_codes_gets_a_generic_anatomical_structure(ct_dir, tmp_path):
    scan = read_image(ct_dir / "example_ct_dicom").crop((slice(None), slice(None), slice(0, 2)))
    labels = scan.with_array((scan.array > 200).astype(np.uint8))
    scan.meta["dicom_files"] = read_image(ct_dir / "example_ct_dicom").meta["dicom_files"][:2]
    seg = hd.seg.segread(write_dicom_seg(labels, {1: "anterior"}, scan, tmp_path / "seg.dcm"))
    (description,) = seg.SegmentSequence
    assert description.SegmentLabel == "anterior"
    assert description.SegmentedPropertyTypeCodeSequence[0].CodeMeaning == "Anatomical structure"
    assert "RecommendedDisplayCIELabValue" not in description


def scan_header(scan):
    import pydicom

    return pydicom.dcmread(scan.meta["dicom_files"][0], stop_before_pixels=True)


def test_a_dicom_seg_needs_a_dicom_folder(ct_dir, nnunet_reference_dir, tmp_path):
    labels = read_image(ct_dir / "example_seg_dicom.nii.gz")
    with pytest.raises(SegtoolError, match="needs a DICOM series folder or zip"):
        write_dicom_seg(labels, {1: "spleen"}, labels, tmp_path / "seg.dcm")
    nifti = nnunet_reference_dir / "predictions" / "inputs" / "hippocampus_033_0000.nii.gz"
    for args, message in ((["-o", str(tmp_path / "seg.dcm"), "--ml"], "needs a DICOM series folder or zip"),
                          (["-o", str(tmp_path / "out"), "-ot", "dicom_seg"], "needs a DICOM series folder or zip"),
                          (["-o", str(tmp_path / "seg.nii.gz"), "-ot", "dicom_seg"], "is a .dcm file or a folder")):
        result = CliRunner().invoke(app, ["-i", str(nifti), *args, "-ta", "hippocampus"])
        assert result.exit_code == 2 and message in result.output, result.output
    assert not list(tmp_path.iterdir())  # refused before any work


def test_totalsegmentators_output_type_names_a_dicom_object(ct_dir, tmp_path):
    series = ct_dir / "example_ct_dicom"
    for output_type in ("dicom_seg", "dicom_rtstruct"):
        request = OutputRequest(output_types=(output_type,))
        assert request.ml and request.dicom_file == output_type
        assert plan_targets([series], tmp_path / "out", request, batch=False) == [
            tmp_path / "out" / "example_ct_dicom.dcm"]
        assert plan_targets([series], tmp_path / "seg.dcm", request, batch=False) == [tmp_path / "seg.dcm"]
    assert requested_types("nifti", tmp_path / "seg.dcm", ml=True) == ("dicom_seg",)  # --ml -o NAME.dcm
    both = OutputRequest(output_types=("nifti", "dicom_seg", "nifti"))
    assert both.output_types == ("nifti", "dicom_seg") and both.dicom_file is None and not both.ml
    with pytest.raises(SegtoolError, match="is a DICOM object; give a NIfTI file or a folder"):
        plan_targets([series], tmp_path / "seg.dcm", OutputRequest(ml=True, output_types=both.output_types),
                     batch=False)
    with pytest.raises(SegtoolError, match="output type must be one or more of"):
        OutputRequest(output_types=("rtstruct",))
    with pytest.raises(SegtoolError, match="cannot be saved at the models' resolution"):  # TotalSegmentator's rule
        plan_targets([series], tmp_path / "out", both, batch=False, lowres=True)


def test_without_highdicom_a_dicom_seg_is_refused_before_any_work(ct_dir, tmp_path, monkeypatch):
    from segtool import dicom_series

    monkeypatch.setattr(dicom_series.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(SegtoolError, match=r"needs highdicom: pip install 'segtool\[dicom\]'"):
        plan_targets([ct_dir / "example_ct_dicom"], tmp_path / "seg.dcm", OutputRequest(output_types="dicom_seg"),
                     batch=False)
