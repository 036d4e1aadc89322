"""segtool -i ... -o ... end to end on real scans, with weights from a local HTTP server or imported offline."""

import json
import logging
import re
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
from matplotlib import image as mpimg
from typer.testing import CliRunner

from segkit.io import Image, read_image, write_image
from segkit.io.image import XFORM_CODES
from segtool.cli.main import app
from segtool.statistics import BORDER_VOXELS

runner = CliRunner()
CASES = ["hippocampus_033", "hippocampus_035"]


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2 * np.logical_and(a, b).sum() / (a.sum() + b.sum())


@pytest.fixture(scope="module")
def inputs(nnunet_reference_dir):
    folder = nnunet_reference_dir / "predictions" / "inputs"
    return {case: folder / f"{case}_0000.nii.gz" for case in CASES}


def test_segment_one_scan_into_class_masks(serve_hippo, inputs, nnunet_reference_dir, tmp_path):
    state = serve_hippo(mirroring=True)
    case = CASES[0]  # the registry's test-time mirroring is used: nnU-Net's prediction with mirroring
    result = runner.invoke(app, ["-i", str(inputs[case]), "-o", str(tmp_path / "out"), "-ta", "hippo"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["anterior.nii.gz", "posterior.nii.gz"]
    scan = read_image(inputs[case])
    reference = read_image(nnunet_reference_dir / "predictions" / "hippocampus_tta" / f"{case}.nii.gz").array
    for value, name in ((1, "anterior"), (2, "posterior")):
        mask = read_image(tmp_path / "out" / f"{name}.nii.gz")
        assert mask.same_grid(scan, tolerance=1e-5) and mask.array.dtype == np.uint8
        assert dice(mask.array == 1, reference == value) >= 0.99
        assert "label_names" not in mask.meta  # the multilabel map's table (1 = anterior) is not this mask's
    assert len(state.log) == 1


def test_registry_shifts_are_test_time_augmentation_that_no_tta_turns_off(serve_hippo, inputs, nnunet_reference_dir,
                                                                         tmp_path):
    from segkit.infer import PredictOptions, Predictor

    serve_hippo(shift_tta=6)
    case = CASES[0]
    result = runner.invoke(app, ["-i", str(inputs[case]), "-o", str(tmp_path / "tta.nii.gz"), "-ta", "hippo", "--ml",
                                 "-v", "--report", str(tmp_path / "run.json")])
    assert result.exit_code == 0, result.output
    assert "mirroring off, shifts +-6" in result.output
    (model,) = json.loads((tmp_path / "run.json").read_text())["models"]
    assert (model["tta"], model["shift_tta"]) == (False, 6)
    folder = nnunet_reference_dir / "Dataset004_Hippocampus" / "nnUNetTrainer_refShort__nnUNetPlans__3d_fullres"
    options = PredictOptions(tta=False, shift_tta=6, precision="fp32")
    tta = read_image(tmp_path / "tta.nii.gz").array
    np.testing.assert_array_equal(tta, Predictor.from_model_folder(folder, folds=[0], options=options)
                                  .predict(inputs[case]).array)
    result = runner.invoke(app, ["-i", str(inputs[case]), "-o", str(tmp_path / "plain.nii.gz"), "-ta", "hippo", "--ml",
                                 "--no-tta"])
    assert result.exit_code == 0, result.output
    plain = read_image(tmp_path / "plain.nii.gz").array
    reference = read_image(nnunet_reference_dir / "predictions" / "hippocampus_notta" / f"{case}.nii.gz").array
    assert all(dice(plain == v, reference == v) >= 0.99 for v in (1, 2))  # nnU-Net's, without any TTA
    assert not np.array_equal(plain, tta) and all(dice(plain == v, tta == v) >= 0.9 for v in (1, 2))


def test_batch_folder_loads_the_model_once(hippo_cli, inputs, tmp_path, monkeypatch):
    from segkit.infer.predictor import Predictor

    folder = tmp_path / "scans"
    folder.mkdir()
    for path in inputs.values():
        (folder / path.name).write_bytes(path.read_bytes())
    loads = []
    original = Predictor.from_model_folder.__func__
    monkeypatch.setattr(Predictor, "from_model_folder",
                        classmethod(lambda cls, *a, **k: loads.append(1) or original(cls, *a, **k)))
    result = runner.invoke(app, ["-i", str(folder), "-o", str(tmp_path / "out"), "-ta", "hippo", "--ml", "-q"])
    assert result.exit_code == 0, result.output
    assert loads == [1]
    for case in CASES:
        labels = read_image(tmp_path / "out" / f"{case}.nii.gz")
        assert labels.meta["label_names"] == {1: "anterior", 2: "posterior"}
        assert set(np.unique(labels.array)) == {0, 1, 2}


def test_multilabel_with_statistics_and_preview(hippo_cli, inputs, tmp_path):
    target = tmp_path / "seg.nii.gz"
    result = runner.invoke(app, ["-i", str(inputs[CASES[1]]), "-o", str(target), "-ta", "hippo", "-ml",
                                 "--statistics", "--preview", "--no-tta", "-nr", "4", "-q"])  # -nr: as TotalSeg.
    assert result.exit_code == 0, result.output
    labels, scan = read_image(target), read_image(inputs[CASES[1]])
    assert json.loads((tmp_path / "seg.json").read_text()) == {"1": "anterior", "2": "posterior"}
    stats = json.loads((tmp_path / "statistics.json").read_text())  # in the file's folder, as TotalSegmentator
    anterior = labels.array == 1
    assert stats["anterior"]["volume"] == pytest.approx(anterior.sum() * np.prod(scan.spacing))
    assert stats["anterior"]["intensity"] == pytest.approx(scan.array[anterior].mean(), abs=1e-4)
    picture = mpimg.imread(tmp_path / "preview_hippo.png")
    assert picture.ndim == 3 and picture.shape[0] > 100 and picture.shape[1] > 300
    rgb = picture[..., :3]
    coloured = (np.abs(rgb[..., 0] - rgb[..., 1]) > 0.1) | (np.abs(rgb[..., 1] - rgb[..., 2]) > 0.1)
    assert coloured.sum() > 20  # the overlay is drawn where labels are


@pytest.mark.parametrize(("make_input", "message"), [
    (lambda d, src: d / "missing.nii.gz", "no such file"),
    (lambda d, src: _nan_copy(d, src), "nan.nii.gz: the scan has 1 NaN or Inf voxel(s); replace them"),
    (lambda d, src: _four_d_copy(d, src), "two.nii.gz: expected a single-channel 3D scan, got 2 channels"),
    (lambda d, src: shutil.copyfile(src, d / "renamed.mgz"), "renamed.mgz: not a readable MGH file ("),  # a NIfTI
])
def test_bad_input_exits_2_with_one_line_and_writes_nothing(hippo_cli, inputs, tmp_path, make_input, message):
    bad = make_input(tmp_path, inputs[CASES[0]])
    result = runner.invoke(app, ["-i", str(bad), "-o", str(tmp_path / "out"), "-ta", "hippo"])
    assert result.exit_code == 2
    [line] = result.output.splitlines()  # no progress bar lines off a terminal
    assert line.startswith("error: ") and message in line
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def _nan_copy(folder, source):
    image = read_image(source)
    array = image.array.astype(np.float32)
    array[3, 3, 3] = np.nan
    return write_image(image.with_array(array), folder / "nan.nii.gz")


def _four_d_copy(folder, source):
    image = read_image(source)
    return write_image(Image(np.stack([image.array, image.array]), image.affine), folder / "two.nii.gz")


@pytest.mark.parametrize(("args", "message"), [
    (["-ta", "hipo"], "did you mean 'hippo'"),
    (["-ta", "hippo", "--fast"], "no 'fast' mode"),
    (["-ta", "hippo", "--roi-subset", "anterio"], "did you mean 'anterior'"),
    (["-ta", "hippo", "--roi_subset", "anterior", "posterio", "-q"], "did you mean 'posterior'"),  # as TotalSeg.
    (["-ta", "hippo", "--fast", "--fastest"], "either --fast or --fastest"),
    (["-ta", "hippo", "-f", "-ff"], "either --fast or --fastest"),  # TotalSegmentator's short options
    (["-ta", "hippo", "--device", "tpu"], "device must be"),
    (["-ta", "hippo", "-d", "gpu:x"], "device must be auto, cpu, cuda, cuda:N, gpu, gpu:N or mps, got 'gpu:x'"),
    (["-ta", "hippo", "-rmb", "-5"], "remove_small_blobs must be a size in mm3 above 0, got -5"),
    (["-ta", "hippo", "-rmb", "0"], "remove_small_blobs must be a size in mm3 above 0, got 0.0"),
    (["-ta", "hippo", "-sa", "mode"], "Invalid value for '--stats-aggregation'"),
    (["-ta", "hippo", "-ot", "rtstruct"], "Invalid value for '--output-type'"),
    (["-ta", "hippo", "-s", "{input}"], "the statistics would overwrite an input scan"),
    (["-ta", "hippo", "-sl"], "save_lowres needs models that resample the scan to one spacing"),
    (["-ta", "hippo", "-rsr", "anterior", "posterio"], "did you mean 'posterior'"),  # --roi_subset_robust
    (["-ta", "hippo", "--body_seg"], "body_seg crops CT scans; task 'hippo' is MR"),
    (["-ta", "hippo", "-ns", "0"], "saving threads must be a whole number above 0, got 0"),
    (["-ta", "hippo", "-v1o"], "task 'hippo' has no v1 numbering"),
    (["-ta", "hippo", "--force_split"], "the models of task 'hippo' resample it themselves"),
    (["-ta", "hippo", "-ro", "6"], "Invalid value for '--resampling-order'"),  # 0-5
    (["-ta", "hippo", "-rp", "{input}"], "the report would overwrite an input scan"),
    (["-ta", "hippo", "-nr", "0"], "Invalid value for '--nr-thr-resamp'"),
    (["-ta", "hippo", "-ho", "-sl"], "higher_order_resampling brings their logits back to the scan's"),
])
def test_bad_options_exit_2(hippo_cli, inputs, tmp_path, args, message):
    scan = tmp_path / "scan.nii.gz"
    scan.write_bytes(inputs[CASES[0]].read_bytes())
    result = runner.invoke(app, ["-i", str(scan), "-o", str(tmp_path / "out"),
                                 *(a.format(input=scan) for a in args)])
    assert result.exit_code == 2 and message in result.output, result.output
    assert not (tmp_path / "out").exists()  # nothing written


def test_unwritable_or_clashing_outputs_fail_before_any_work(hippo_cli, inputs, tmp_path, monkeypatch):
    from segtool import Segmenter

    def refuse(*args, **kwargs):
        raise RuntimeError("segmented although the output is bad")

    monkeypatch.setattr(Segmenter, "segment_scan", refuse)  # what `segment` and the CLI run
    scan = inputs[CASES[0]]
    (tmp_path / "file").write_text("keep me")
    copy = tmp_path / "scan.nii.gz"
    copy.write_bytes(scan.read_bytes())
    cases = [
        (["-i", str(scan), "-o", str(tmp_path / "file")], "exists as a file"),
        (["-i", str(scan), "-o", str(tmp_path / "file" / "sub")], "is a file"),
        (["-i", str(scan), "-o", str(tmp_path / "file" / "x.nii.gz"), "--ml"], "is a file"),
        (["-i", str(copy), "-o", str(copy), "--ml"], "would overwrite an input scan"),
        (["-i", str(tmp_path), "-o", str(tmp_path / "."), "--ml"], "the output folder is the folder of scans"),
        (["-i", str(scan), "-o", str(tmp_path / "seg.nii.gz"), "--ml", "-rp", str(tmp_path / "seg.nii.gz")],
         "the report would overwrite the segmentation"),
        (["-i", str(scan), "-o", str(tmp_path / "seg.nii.gz"), "--ml", "-rp", str(tmp_path / "seg.json")],
         "the report would overwrite the segmentation's class names"),
        (["-i", str(scan), "-o", str(tmp_path / "m"), "-s", str(tmp_path / "m" / "anterior.nii.gz")],
         "the statistics would overwrite the class masks"),
        (["-i", str(scan), "-o", str(tmp_path / "m"), "-s", str(tmp_path / "r.json"), "-rp", str(tmp_path / "r.json")],
         "the report would overwrite the statistics"),
        (["-i", str(scan), "-o", str(tmp_path / "m"), "-s", f"{tmp_path / 'stats'}/"],
         f"{tmp_path / 'stats'}/ names a folder; the statistics file needs a file name"),
        (["-i", str(scan), "-o", str(tmp_path)], None),  # a writable existing folder passes the checks
    ]
    for args, message in cases:
        result = runner.invoke(app, [*args, "-ta", "hippo", "-q"])
        if message is None:
            assert "segmented although" in str(result.exception)
            continue
        assert result.exit_code == 2 and message in result.output, (args, result.output)
        assert "Traceback" not in result.output
    assert (tmp_path / "file").read_text() == "keep me" and copy.read_bytes() == scan.read_bytes()
    assert not [name for name in ("seg.nii.gz", "seg.json", "m", "r.json", "stats") if (tmp_path / name).exists()]
    clash = tmp_path / "clash"
    clash.mkdir()
    for name in ("case_0000.nii.gz", "case.nii.gz"):
        (clash / name).write_bytes(scan.read_bytes())
    result = runner.invoke(app, ["-i", str(clash), "-o", str(tmp_path / "o"), "-ta", "hippo", "--ml", "-q"])
    assert result.exit_code == 2 and "would both be written to" in result.output
    result = runner.invoke(app, ["-i", str(clash), "-o", str(tmp_path / "o.nii.gz"), "-ta", "hippo", "--ml", "-q"])
    assert result.exit_code == 2 and result.output.count("error:") == 1 and "needs an output folder" in result.output
    result = runner.invoke(app, ["-i", str(scan), "-ta", "hippo"])
    assert result.exit_code == 2 and "missing -o OUTPUT" in result.output


def test_a_folder_of_one_scan_is_a_batch_and_other_formats_are_multilabel_files(hippo_cli, inputs, tmp_path):
    folder = tmp_path / "one"
    folder.mkdir()
    (folder / inputs[CASES[0]].name).write_bytes(inputs[CASES[0]].read_bytes())
    result = runner.invoke(app, ["-i", str(folder), "-o", str(tmp_path / "out"), "-ta", "hippo", "-q"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "out" / CASES[0]).iterdir()) == ["anterior.nii.gz", "posterior.nii.gz"]
    result = runner.invoke(app, ["-i", str(inputs[CASES[0]]), "-o", str(tmp_path / "seg.NRRD"), "-ta", "hippo",
                                 "--ml", "-s", "-q"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.glob("seg*")) == ["seg.NRRD", "seg.json"]
    assert (tmp_path / "statistics.json").exists()
    # a batch of multilabel files shares one folder: each scan's statistics go beside its file
    result = runner.invoke(app, ["-i", str(folder), "-o", str(tmp_path / "ml"), "-ta", "hippo", "--ml", "-s", "-q"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "ml").iterdir()) == [
        f"{CASES[0]}.json", f"{CASES[0]}.nii.gz", f"{CASES[0]}_statistics.json"]
    assert read_image(tmp_path / "seg.NRRD").same_grid(read_image(inputs[CASES[0]]), tolerance=1e-5)


def test_inputs_are_one_scan_or_a_batch(ct_dir, tmp_path):
    from segtool.errors import SegtoolError
    from segtool.run import find_scans

    series = ct_dir / "example_ct_dicom"
    assert find_scans(series) == ([series], False)  # a DICOM series folder is one scan
    studies = tmp_path / "studies"
    for name in ("b", "a"):
        (studies / name).mkdir(parents=True)
        (studies / name / "IM0001").write_bytes((next(series.iterdir())).read_bytes())
    (studies / ".segtool-tmp").mkdir()
    assert find_scans(studies) == ([studies / "a", studies / "b"], True)  # a folder of series folders
    # a medium's index and notes beside the series, and a folder of earlier outputs, are passed over
    directory = pydicom.Dataset()
    directory.file_meta = pydicom.dataset.FileMetaDataset()
    directory.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.1.3.10"
    directory.file_meta.MediaStorageSOPInstanceUID = pydicom.uid.generate_uid()
    directory.file_meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    directory.save_as(studies / "DICOMDIR", enforce_file_format=True)
    (studies / "notes.txt").write_text("scanned 2026-12-06")
    (studies / "out").mkdir()
    (studies / "out" / "liver.nii.gz").write_bytes(b"")
    assert find_scans(studies) == ([studies / "a", studies / "b"], True)
    (studies / "c.nii.gz").write_bytes(b"")
    assert find_scans(studies) == ([studies / "a", studies / "b", studies / "c.nii.gz"], True)  # both kinds
    with pytest.raises(SegtoolError, match="folder holds no scans"):
        find_scans(studies / ".segtool-tmp")


def test_segmenter_takes_paths_and_one_roi_name(hippo_cli, inputs):
    from segtool import Segmenter, SegmentOptions
    from segtool.cli import context
    from segtool.errors import SegtoolError

    segmenter = Segmenter(SegmentOptions(task="hippo", device="cpu", roi_subset="posterior"),
                          registry=context.registry(), store=context.store())
    tiles = []
    segmenter.follow_tiles(lambda entry, done, total: tiles.append((entry.name, done, total)))
    from_path = segmenter.segment(inputs[CASES[0]])
    assert tiles == [("Dataset004_Hippocampus", 1, 1)]  # the scan fits in one tile
    from_nibabel = segmenter.segment(nib.load(inputs[CASES[0]]))
    assert np.array_equal(from_path.array, from_nibabel.array) and set(np.unique(from_path.array)) == {0, 2}
    assert from_path.array.dtype == np.uint8  # as segment() returns it and the files hold it
    # the options as a task name and keywords, as segment() takes them
    keywords = Segmenter("hippo", device="cpu", roi_subset="posterior", registry=context.registry(),
                         store=context.store())
    assert keywords.options == segmenter.options
    assert np.array_equal(keywords.segment(inputs[CASES[0]]).array, from_path.array)
    with pytest.raises(SegtoolError, match="mode must be one of"):
        SegmentOptions(mode="fst")
    with pytest.raises(SegtoolError, match="Segmenter: got an unexpected keyword argument 'taks'"):
        Segmenter(taks="hippo")
    with pytest.raises(SegtoolError, match="give SegmentOptions or keyword options, not both"):
        Segmenter(segmenter.options, mode="fast")


def test_api_errors_are_segtool_errors_with_one_line(hippo_cli, inputs, tmp_path):
    from segtool import SegmentOptions, segment
    from segtool.errors import SegtoolError

    flat = nib.Nifti1Image(np.zeros((20, 20), np.float32), np.eye(4))
    complex_scan = nib.Nifti1Image(np.zeros((20, 20, 20), np.complex64), np.eye(4))
    for bad_input, message in [(None, "expected an image: a path"), (np.zeros((4, 4, 4)), "expected an image: a path"),
                               (tmp_path / "absent.nii.gz", "no such file"), (flat, "must be 3D"),
                               (complex_scan, "voxels of type complex64 are not supported")]:
        with pytest.raises(SegtoolError, match=message):
            segment(bad_input, task="hippo")
    for options, message in [({"device": None}, "device must be"), ({"precision": "fp8"}, "precision must be"),
                             ({"tta": "no"}, "tta must be"), ({"task": None}, "task must be"),
                             ({"remove_small_blobs": 0}, "above 0"), ({"remove_small_blobs": True}, "above 0"),
                             ({"resampling_order": 6}, "from 0 to 5"), ({"resampling_order": True}, "from 0 to 5")]:
        with pytest.raises(SegtoolError, match=message):
            SegmentOptions(**options)
    for options, message in [({"roi_subset": 5}, "roi_subset must be a class name or a list of them, got 5"),
                             ({"roi_subset": ["anterior", 5]}, "roi_subset must be a class name"),
                             ({"model_size": ["small"]}, "model_size must be a size name"),
                             ({"crop_path": 5}, "crop_path must be a path, got int 5")]:
        with pytest.raises(SegtoolError, match=re.escape(message)):
            SegmentOptions(**options)
    with pytest.raises(SegtoolError, match="output type must be one or more of nifti, dicom_seg, dicom_rtstruct"):
        segment(inputs[CASES[0]], task="hippo", output_type="rtstruct")
    out = tmp_path / "out"
    for arguments, message in [({"output_type": None}, r"output type must be one or more of .*, got \[None\]"),
                               ({"output": 5}, "output must be a path, got int 5"),
                               ({"output": ""}, "output must be a path, got str ''"),
                               ({"report": 5}, "report must be a path"),
                               ({"save_probabilities": 5}, "save_probabilities must be a path"),
                               ({"statistics": f"{out / 'stats'}/"}, "names a folder; the statistics file"),
                               ({"output": out / "seg.nii.gz", "ml": True, "report": out / "seg.nii.gz"},
                                "the report would overwrite the segmentation"),
                               ({"statistics": out / "r.json", "report": out / "r.json"},
                                "the report would overwrite the statistics")]:
        with pytest.raises(SegtoolError, match=message):
            segment(inputs[CASES[0]], task="hippo", **arguments)
    assert not out.exists()  # nothing written
    assert SegmentOptions(device="CPU").device == "cpu"
    with pytest.raises(SegtoolError, match="preview needs an output"):
        segment(inputs[CASES[0]], task="hippo", preview=True)


def test_in_memory_image_is_written_where_asked(hippo_cli, inputs, tmp_path, monkeypatch):
    from segtool import segment

    monkeypatch.chdir(tmp_path)  # the output name that an in-memory image was once mistaken for
    result = segment(nib.load(inputs[CASES[0]]), "segmentation.nii.gz", task="hippocampus", ml=True)
    written = read_image(tmp_path / "segmentation.nii.gz")
    assert np.array_equal(written.array, np.asarray(result.dataobj))
    assert result.get_data_dtype() == written.array.dtype == np.uint8  # as TotalSegmentator returns it
    assert written.meta["label_names"] == {1: "anterior", 2: "posterior"}
    # nothing else written but the probabilities asked for
    from segkit.infer.probabilities import load_probabilities
    from segtool.errors import SegtoolError

    target = tmp_path / "p" / "p.npz"
    result = segment(nib.load(inputs[CASES[0]]), task="hippocampus", tta=False, save_probabilities=target)
    assert np.array_equal(load_probabilities(target).argmax(0), np.asarray(result.dataobj))
    assert sorted(p.name for p in (tmp_path / "p").iterdir()) == ["p.json", "p.npz"]
    with pytest.raises(SegtoolError, match="saved as a .npz file"):
        segment(nib.load(inputs[CASES[0]]), task="hippocampus", save_probabilities=tmp_path / "p.nii")


def test_roi_subset_keeps_only_those_classes(hippo_cli, inputs, tmp_path):
    result = runner.invoke(app, ["-i", str(inputs[CASES[0]]), "-o", str(tmp_path / "o.nii.gz"), "-ta", "hippo",
                                 "--ml", "--roi-subset", "posterior", "-q"])
    assert result.exit_code == 0, result.output
    labels = read_image(tmp_path / "o.nii.gz")
    assert set(np.unique(labels.array)) == {0, 2} and labels.meta["label_names"] == {2: "posterior"}
    # TotalSegmentator's spelling of several classes
    result = runner.invoke(app, ["-i", str(inputs[CASES[0]]), "-o", str(tmp_path / "out"), "-ta", "hippo",
                                 "-rs", "posterior", "anterior", "-q"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["anterior.nii.gz", "posterior.nii.gz"]


def test_small_blobs_are_removed_by_size(hippo_cli, inputs, tmp_path):
    # this case's anterior hippocampus is one component of about 1785 mm3, its posterior one of about 1489 mm3
    kept = {}
    for size in ([], ["1600"]):
        out = tmp_path / f"rmb{''.join(size)}.nii.gz"
        result = runner.invoke(app, ["-i", str(inputs[CASES[0]]), "-o", str(out), "-ta", "hippo", "--ml", "-rmb",
                                     *size, "-q"])
        assert result.exit_code == 0, result.output
        kept[tuple(size)] = set(np.unique(read_image(out).array).tolist())
    assert kept == {(): {0, 1, 2}, ("1600",): {0, 1}}  # TotalSegmentator's default 200 mm3 keeps both


def test_small_blobs_are_removed_on_the_grid_the_model_predicted_on(hippo_registry, inputs, tmp_path):
    from segkit.infer.postprocessing import remove_small_components
    from segtool import Segmenter, SegmentOptions
    from segtool.registry import load_registry
    from segtool.store import WeightsStore
    from segtool.totalseg_grid import labels_to_scan, to_model_grid

    path = hippo_registry(input_resampling="totalsegmentator", spacing_mm=1.5)  # TotalSegmentator's way, on 1 mm scans
    options = {"task": "hippo", "device": "cpu", "tta": False}
    store = WeightsStore(tmp_path / "weights")
    segmenter = Segmenter(SegmentOptions(**options, remove_small_blobs=1600), registry=load_registry(path), store=store)
    scan = read_image(inputs[CASES[0]])
    canonical, grid = to_model_grid(scan, 1.5)
    on_grid = segmenter.parts[0][1].predict(grid).array
    labels = segmenter.segment(scan).array
    # as TotalSegmentator: components measured in voxels of 1.5 mm (3.375 mm3), then the map brought back
    assert np.array_equal(labels, labels_to_scan(remove_small_components(on_grid, 1600 / 3.375), canonical, scan))
    assert (labels != labels_to_scan(on_grid, canonical, scan)).any()


def test_total_fast_matches_totalsegmentator_offline(total_fast_installed, ct_dir, nnunet_reference_dir, tmp_path):
    target = tmp_path / "total.nii.gz"
    result = runner.invoke(app, ["-i", str(ct_dir / "example_ct.nii.gz"), "-o", str(target), "-ta", "total",
                                 "--fast", "--ml", "-q"])
    assert result.exit_code == 0, result.output
    ours, scan = read_image(target), read_image(ct_dir / "example_ct.nii.gz")
    theirs = read_image(nnunet_reference_dir / "predictions" / "totalseg_fast_example_ct.nii.gz")
    assert ours.same_grid(scan, tolerance=1e-5)
    np.testing.assert_allclose(ours.affine, theirs.affine, atol=1e-5)
    # the scan's qform and sform codes (none, and "aligned"), as TotalSegmentator keeps them
    assert ours.meta[XFORM_CODES] == theirs.meta[XFORM_CODES] == scan.meta[XFORM_CODES] == (0, 2)
    large = [v for v in np.unique(theirs.array) if v and (theirs.array == v).sum() > 1000]
    assert len(large) >= 4
    for value in large:
        assert dice(ours.array == value, theirs.array == value) >= 0.99, value
    assert (ours.array == theirs.array).mean() > 0.999


def write_middle_quarter(series: Path, folder: Path) -> Path:
    """The middle 256 x 256 pixels of each slice of a DICOM series, written as an uncompressed series in ``folder``
    (one tile of the 3 mm model instead of four)."""
    folder.mkdir()
    for path in sorted(series.iterdir()):
        slice_ = pydicom.dcmread(path)
        rows, columns = (np.asarray(slice_.ImageOrientationPatient[i:i + 3], float) for i in (3, 0))
        spacing = np.asarray(slice_.PixelSpacing, float)  # between rows, between columns
        corner = np.asarray(slice_.ImagePositionPatient, float) + 128 * (spacing[0] * rows + spacing[1] * columns)
        slice_.ImagePositionPatient = [f"{v:.10g}" for v in corner]
        slice_.set_pixel_data(slice_.pixel_array[128:384, 128:384], slice_.PhotometricInterpretation,
                              slice_.BitsStored)
        slice_.save_as(folder / path.name)
    return folder


def test_api_returns_nifti_on_the_dicom_grid(total_fast_installed, ct_dir, tmp_path):
    from segtool import segment
    from segtool.scans import as_scan

    series = write_middle_quarter(ct_dir / "example_ct_dicom", tmp_path / "series")
    # written as a NIfTI file, and as a DICOM SEG of the series beside it (its voxels: tests/segtool/test_dicom_seg.py;
    # an RTSTRUCT goes the same way, test_dicom_rtstruct.py)
    result = segment(series, tmp_path / "seg.nii.gz", task="total", fast=True, ml=True,
                     output_type=["nifti", "dicom_seg"], statistics=True)
    whole_series = nib.load(ct_dir / "example_seg_dicom.nii.gz").affine
    affine = whole_series @ np.array([[1, 0, 0, 128], [0, 1, 0, 128], [0, 0, 1, 0], [0, 0, 0, 1]])
    assert isinstance(result, nib.Nifti1Image) and result.shape == (256, 256, 20)
    np.testing.assert_allclose(result.affine, affine, atol=1e-4)
    assert result.extra["label_names"][5] == "liver"
    assert set(result.extra["statistics"]) == set(result.extra["label_names"].values())
    labels = np.asarray(result.dataobj)
    present = [int(v) for v in np.unique(labels) if v]
    seg = pydicom.dcmread(tmp_path / "seg_seg.dcm")
    assert seg.Modality == "SEG" and [s.SegmentLabel for s in seg.SegmentSequence] == [
        result.extra["label_names"][v] for v in present]
    assert np.array_equal(read_image(tmp_path / "seg.nii.gz").array, labels)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name not in ("home", "series")) == [
        "seg.json", "seg.nii.gz", "seg_seg.dcm", "statistics.json"]
    nib.save(result, tmp_path / "saved.nii.gz")  # the class names travel in the file's label table
    assert read_image(tmp_path / "saved.nii.gz").meta["label_names"][5] == "liver"
    # a 4D image of one volume, held in memory, is the 3D scan it holds (so it is resampled and segmented as that)
    scan = read_image(series)
    four_d = as_scan(nib.Nifti1Image(scan.array[..., None], scan.affine))
    assert four_d.spatial_shape == (256, 256, 20) and np.array_equal(four_d.array, scan.array)
    assert np.array_equal(four_d.affine, scan.affine)
    # TotalSegmentator's --v1_order: the same voxels under v1's numbers; v2's new classes left out, v1's dropped ones
    # kept (empty)
    v1 = segment(nib.Nifti1Image(scan.array, scan.affine), task="total", fast=True, v1_order=True)
    v1_names, v2_names = v1.extra["label_names"], result.extra["label_names"]
    assert len(v1_names) == 104 and (v1_names[7], v2_names[52], v1_names[93]) == ("aorta", "aorta", "face")
    v2_value = {name: value for value, name in v2_names.items()}
    expected = np.zeros_like(labels)
    for value, name in v1_names.items():
        expected[labels == v2_value.get(name, -1)] = value
    assert np.array_equal(np.asarray(v1.dataobj), expected)
    assert (int(result.header["qform_code"]), int(result.header["sform_code"])) == (1, 1)  # the series: scanner
    assert (int(v1.header["qform_code"]), int(v1.header["sform_code"])) == (0, 2)  # nibabel's own: as given
    assert 0 < (expected > 0).sum() < (labels > 0).sum()  # classes new in v2 are found here
    # TotalSegmentator's --save_lowres: the same map, left on the model's 3 mm grid in the scan's axis order (its own
    # output for this quarter agrees on 0.99973 of the voxels, on the same grid; RESULTS.md)
    from segtool.totalseg_grid import labels_to_scan, to_model_grid

    lowres = segment(nib.Nifti1Image(scan.array, scan.affine), task="total", fast=True, save_lowres=True)
    canonical, model_grid = to_model_grid(scan, 3.0)
    assert lowres.shape == (83, 83, 13) and nib.aff2axcodes(lowres.affine) == scan.axis_codes == ("L", "A", "S")
    on_model_grid = Image(np.asarray(lowres.dataobj), lowres.affine).to_canonical()
    assert on_model_grid.same_grid(model_grid, tolerance=1e-5)
    assert np.array_equal(labels_to_scan(on_model_grid.array, canonical, scan), labels)


def test_roi_subset_crops_with_the_fastest_model(hippo_registry, inputs, tmp_path, caplog, monkeypatch):
    from segtool import Segmenter, SegmentOptions
    from segtool.regions import ROI_MARGIN_MM, box_around
    from segtool.registry import load_registry
    from segtool.store import WeightsStore

    registry = load_registry(hippo_registry(fastest=True, modality="CT"))
    store = WeightsStore(tmp_path / "weights")
    scan = read_image(inputs[CASES[0]])
    whole = Segmenter(SegmentOptions(task="hippo", device="cpu", roi_subset=("anterior",)), registry=registry,
                      store=store)
    assert len(whole.finder_models) == 1 and whole.finder.margin_mm == ROI_MARGIN_MM
    cropped = whole.segment(scan)
    full = Segmenter(SegmentOptions(task="hippo", device="cpu"), registry=registry, store=store).segment(scan)
    assert cropped.same_grid(scan, tolerance=1e-5)
    assert set(np.unique(cropped.array)) == {0, 1}
    box = whole._region(scan)
    assert np.prod([b.stop - b.start for b in box]) < np.prod(scan.spatial_shape)  # it really cropped
    # Same anatomy; MRI z-score statistics over the smaller region shift the result slightly.
    assert dice(cropped.array == 1, full.array == 1) > 0.9
    # where the locating models find none of the ROI's classes, the masks are empty, and a warning says so
    with monkeypatch.context() as patch, caplog.at_level(logging.WARNING, logger="segtool"):
        patch.setattr("segtool.segmenter.box_around", lambda mask, spacing, margin: None)
        empty = whole.segment(scan)
    assert not empty.array.any() and "the hippo models found no region to segment" in caplog.text

    # the margin is the whole voxels that fit in 20 mm, as TotalSegmentator counts them (20 of 0.977 mm, 10 of 2 mm)

    point = np.zeros((100, 100, 40), bool)
    point[50, 50, 20] = True
    assert box_around(point, (0.977, 0.977, 2.0), ROI_MARGIN_MM) == (slice(30, 71), slice(30, 71), slice(10, 31))

    # TotalSegmentator's --robust_crop: the fast models locate the ROI instead of the fastest ones, in every mode;
    # an MR task's always do (TotalSegmentator's rule for total_mr)
    for modality, robust, mode, finders in (("CT", False, "default", 0), ("CT", True, "default", 1),
                                            ("CT", True, "fast", 1), ("MR", False, "default", 1)):
        fast = load_registry(hippo_registry(fast=True, modality=modality))
        options = SegmentOptions(task="hippo", device="cpu", mode=mode, roi_subset=("anterior",), robust_crop=robust)
        segmenter = Segmenter(options, registry=fast, store=store)
        assert len(segmenter.finder_models) == finders, (modality, robust, mode)


def test_body_seg_crops_to_what_the_body_task_finds(hippo_registry, inputs, tmp_path):
    from segtool import Segmenter, SegmentOptions
    from segtool.errors import SegtoolError
    from segtool.registry import load_registry
    from segtool.store import WeightsStore

    store = WeightsStore(tmp_path / "weights")
    registry = load_registry(hippo_registry(modality="CT", body=True))
    scan = read_image(inputs[CASES[1]])
    cropping = Segmenter(SegmentOptions(task="hippo", device="cpu", tta=False, body_seg=True), registry=registry,
                         store=store)
    assert len(cropping.finder_models) == 1 and len(cropping.all_models) == 2
    box = cropping._region(scan)
    assert np.prod([b.stop - b.start for b in box]) < 0.8 * np.prod(scan.spatial_shape)  # it really crops
    cropped = cropping.segment(scan)
    assert cropped.same_grid(scan, tolerance=1e-5)
    # the task's models ran on the body's box alone: its map there, nothing outside
    plain = Segmenter(SegmentOptions(task="hippo", device="cpu", tta=False), registry=registry, store=store)
    inside = plain.segment(scan.crop(box)).array
    assert np.array_equal(cropped.array[box], inside) and set(np.unique(inside)) == {0, 1, 2}
    outside = cropped.array.copy()
    outside[box] = 0
    assert not outside.any()
    mr = load_registry(hippo_registry(body=True))
    with pytest.raises(SegtoolError, match="body_seg crops CT scans; task 'hippo' is MR"):
        Segmenter(SegmentOptions(task="hippo", device="cpu", body_seg=True), registry=mr, store=store)


def test_a_sub_task_runs_on_the_region_its_crop_names(serve_hippo, inputs, tmp_path):
    # as TotalSegmentator's lung vessels run on the lungs that its total task finds: here the sub-task hippo_part
    # runs on hippo's posterior class (found by hippo's fast model) plus 2 mm, resampled per axis (1 x 1 x 1.5 mm)
    from segtool import Segmenter, SegmentOptions
    from segtool.cli import context
    from segtool.regions import box_around

    grid = {"input_resampling": "totalsegmentator", "spacing_mm": [1.0, 1.0, 1.5], "label_export": "nearest"}
    serve_hippo(fast=True, crop={"classes": ["posterior"], "margin_mm": 2.0, "mode": "fast"}, **grid)
    registry, scan = context.registry(), read_image(inputs[CASES[0]])
    sub = Segmenter(SegmentOptions(task="hippo_part", device="cpu"), registry=registry)
    assert sub.finder.task.name == "hippo" and len(sub.finder_models) == 1 and len(sub.all_models) == 2
    assert sub.finder_models[0][1] is sub.parts[0][1]  # one model folder, found and segments: loaded once
    whole = Segmenter(SegmentOptions(task="hippo", device="cpu", mode="fast"), registry=registry).segment(scan).array
    box = sub._region(scan)
    assert box == box_around(whole == 2, scan.spacing, 2.0)
    assert np.prod([b.stop - b.start for b in box]) < 0.5 * np.prod(scan.spatial_shape)  # it really crops

    out = tmp_path / "part.nii.gz"
    result = runner.invoke(app, ["-i", str(inputs[CASES[0]]), "-o", str(out), "-ta", "hippo_part", "--ml", "-q"])
    assert result.exit_code == 0, result.output
    labels = read_image(out)
    assert labels.same_grid(scan, tolerance=1e-5)
    inside = Segmenter(SegmentOptions(task="hippo", device="cpu"), registry=registry).segment(scan.crop(box)).array
    assert np.array_equal(labels.array[box], inside) and set(np.unique(inside)) == {0, 1, 2}
    outside = labels.array.copy()
    outside[box] = 0
    assert not outside.any()

    # sub-tasks have the modes their registry gives (TotalSegmentator's have no --fast)
    result = runner.invoke(app, ["-i", str(inputs[CASES[0]]), "-o", str(tmp_path / "f"), "-ta", "hippo_part", "--fast"])
    assert result.exit_code == 2 and "task 'hippo_part' has no 'fast' mode; it has: default" in result.output

    # downloading a sub-task installs the models that find its region too
    result = runner.invoke(app, ["download", "hippo_part", "-q"])
    assert result.exit_code == 0, result.output
    assert "hippo_part crop (hippo fast): Dataset004_Hippocampus ->" in result.output

    # -cp: the masks of the crop classes come from a folder (here hippo's anterior class saved as its posterior mask,
    # so the region differs from the one found); no model runs to find them
    masks = tmp_path / "masks"
    masks.mkdir()
    write_image(scan.with_array((whole == 1).astype(np.uint8)), masks / "posterior.nii.gz")
    given = Segmenter(SegmentOptions(task="hippo_part", device="cpu", crop_path=masks), registry=registry)
    assert given.finder_models == [] and given._region(scan) == box_around(whole == 1, scan.spacing, 2.0) != box
    result = runner.invoke(app, ["-i", str(inputs[CASES[0]]), "-o", str(out), "-ta", "hippo_part", "--ml", "-q",
                                 "-cp", str(masks)])
    assert result.exit_code == 0, result.output
    assert np.array_equal(read_image(out).array, given.segment(scan).array)
    bad = tmp_path / "bad.nii.gz"
    part = ["-i", str(inputs[CASES[0]]), "-o", str(bad), "-ta", "hippo_part", "--ml", "-cp"]
    result = runner.invoke(app, [*part, str(tmp_path)])
    assert result.exit_code == 2 and f"crop_path {tmp_path} has no mask posterior.nii.gz" in result.output
    write_image(scan.crop(box), masks / "posterior.nii.gz")  # not on the scan's grid
    result = runner.invoke(app, [*part, str(masks)])
    assert result.exit_code == 2 and "is not on the scan's grid" in result.output and not bad.exists()
    result = runner.invoke(app, ["-i", str(inputs[CASES[0]]), "-o", str(tmp_path / "h"), "-ta", "hippo", "-cp",
                                 str(masks)])
    assert result.exit_code == 2 and "task 'hippo' runs on the whole scan" in result.output


def test_a_registry_crop_must_name_classes_of_a_task_it_has(make_registry, tmp_path):
    from segtool.errors import SegtoolError
    from segtool.registry import load_registry

    for crop, message in (({"classes": ["cortex"]}, "crop classes must be classes of task 'hippo': cortex"),
                          ({"classes": ["anterior"], "mode": "fastest"}, "task 'hippo' has no 'fastest' mode"),
                          ({"classes": [], "task": "hippo"}, "crop classes must be classes of task 'hippo': none")):
        path = make_registry("http://127.0.0.1:9/none.zip", None, crop=crop)
        with pytest.raises(SegtoolError, match=f"invalid weights registry .*: task 'hippo_part': {message}"):
            load_registry(path)
    registry = json.loads(path.read_text())
    registry["tasks"]["hippo_part"]["crop"]["task"] = "hipo"
    path.write_text(json.dumps(registry))
    with pytest.raises(SegtoolError, match="crop task 'hipo' is not a task of this registry"):
        load_registry(path)


def test_the_body_task_writes_the_body_and_its_skin_beside_its_masks(serve_hippo, inputs, tmp_path):
    from segtool.derived_masks import skin

    serve_hippo(modality="CT", body=True)
    scan = inputs[CASES[0]]
    result = runner.invoke(app, ["-i", str(scan), "-o", str(tmp_path / "out"), "-ta", "body", "--no-tta", "-q"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "body.nii.gz", "body_extremities.nii.gz", "body_trunc.nii.gz", "skin.nii.gz"]
    mask = {name: read_image(tmp_path / "out" / f"{name}.nii.gz").array.astype(bool)
            for name in ("body", "body_trunc", "body_extremities", "skin")}
    assert mask["body"].any() and np.array_equal(mask["body"], mask["body_trunc"] | mask["body_extremities"])
    assert np.array_equal(mask["skin"], skin(read_image(scan).array, mask["body"]))
    result = runner.invoke(app, ["-i", str(scan), "-o", str(tmp_path / "plain"), "-ta", "body", "--no-tta", "-q",
                                 "--no_derived_masks"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "plain").iterdir()) == ["body_extremities.nii.gz", "body_trunc.nii.gz"]


def test_force_split_predicts_three_slabs_and_pieces_them_as_totalsegmentator(hippo_registry, inputs, tmp_path):
    from segtool import Segmenter, SegmentOptions
    from segtool.errors import SegtoolError
    from segtool.registry import load_registry
    from segtool.store import WeightsStore
    from segtool.totalseg_grid import SPLIT_MARGIN, to_model_grid

    registry = load_registry(hippo_registry(input_resampling="totalsegmentator"))  # split: on TotalSegmentator's grid
    store = WeightsStore(tmp_path / "weights")
    scan = read_image(inputs[CASES[0]]).to_canonical()
    tall = Image(np.concatenate([scan.array] * 3, axis=2), scan.affine)  # the scan three times over, along z
    split = Segmenter(SegmentOptions(task="hippo", device="cpu", tta=False, force_split=True), registry=registry,
                      store=store)
    labels = split.segment(tall).array
    _, grid = to_model_grid(tall, 1.0)
    slices, predictor = grid.spatial_shape[2], split.parts[0][1]
    third, margin = slices // 3, SPLIT_MARGIN
    assert third > margin

    def slab(start: int, stop: int) -> np.ndarray:
        return predictor.predict(grid.crop((slice(None), slice(None), slice(start, stop)))).array

    # TotalSegmentator's triple split: [:third + 20], [third - 19 : 2 third + 20], [2 third - 19:], each keeps a third
    expected = np.concatenate([slab(0, third + margin)[..., :third],
                               slab(third + 1 - margin, 2 * third + margin)[..., margin - 1:margin - 1 + third],
                               slab(2 * third + 1 - margin, slices)[..., margin - 1:]], axis=2)
    assert np.array_equal(labels, expected)
    whole = Segmenter(SegmentOptions(task="hippo", device="cpu", tta=False), registry=registry, store=store)
    plain = whole.segment(tall).array
    assert (labels != plain).any() and dice(labels > 0, plain > 0) > 0.9  # the seams' context differs, little else
    with pytest.raises(SegtoolError, match="force_split needs more than 62 slices on the model grid"):
        split.segment(scan)


def test_higher_order_resampling_gives_the_scan_to_the_model_as_nnunet_does(hippo_registry, inputs, tmp_path):
    from segtool import Segmenter, SegmentOptions
    from segtool.errors import SegtoolError
    from segtool.registry import load_registry
    from segtool.store import WeightsStore
    from segtool.totalseg_grid import labels_to_scan, to_model_grid

    # TotalSegmentator's way: a zoom to 1.5 mm, nearest labels back
    path = hippo_registry(input_resampling="totalsegmentator", spacing_mm=1.5, label_export="nearest")
    store = WeightsStore(tmp_path / "weights")
    options = {"task": "hippo", "device": "cpu", "tta": False}
    zoomed = Segmenter(SegmentOptions(**options), registry=load_registry(path), store=store)
    native = Segmenter(SegmentOptions(**options, higher_order_resampling=True), registry=load_registry(path),
                       store=store)
    assert zoomed.parts[0][1].options.fast_export and not native.parts[0][1].options.fast_export
    scan = read_image(inputs[CASES[1]])
    # the model's own plans (1 mm, as the scan) decide, as in nnU-Net: no zoom, logits brought back
    labels = native.segment(scan).array
    assert np.array_equal(labels, native.parts[0][1].predict(scan).array)
    canonical, grid = to_model_grid(scan, 1.5)
    zoomed_labels = zoomed.segment(scan).array
    assert np.array_equal(zoomed_labels, labels_to_scan(zoomed.parts[0][1].predict(grid).array, canonical, scan))
    assert (zoomed_labels != labels).any()
    with pytest.raises(SegtoolError, match="save_lowres keeps the label map on the models' grid"):
        SegmentOptions(**options, higher_order_resampling=True, save_lowres=True)


def test_save_probabilities_as_nnunet_with_the_channels_and_grid_beside(hippo_cli, inputs, nnunet_reference_dir,
                                                                         tmp_path):
    from segkit.infer.probabilities import load_probabilities

    case = CASES[0]
    target = tmp_path / "probabilities" / "p.npz"  # its folder is made
    result = runner.invoke(app, ["-i", str(inputs[case]), "-o", str(tmp_path / "seg.nii.gz"), "--ml", "-ta", "hippo",
                                 "-sp", str(target), "-rp", str(tmp_path / "report.json"), "-q"])
    assert result.exit_code == 0, result.output
    scan, labels = read_image(inputs[case]), read_image(tmp_path / "seg.nii.gz").array
    probabilities = load_probabilities(target)
    assert probabilities.shape == (3, *scan.spatial_shape)
    assert np.array_equal(probabilities.argmax(0), labels)
    nnunet = load_probabilities(nnunet_reference_dir / "predictions" / "hippocampus_notta" / f"{case}.npz")
    assert np.abs(probabilities - nnunet).mean() < 1e-3  # nnU-Net's own, without mirroring as the registry says
    description = json.loads((tmp_path / "probabilities" / "p.json").read_text())
    assert description["channels"] == ["background", "anterior", "posterior"]
    assert description["shape"] == [3, *reversed(scan.spatial_shape)]  # the stored array's: (c, z, y, x)
    np.testing.assert_allclose(description["affine"], scan.affine, atol=1e-6)
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["scans"][0]["files"][-2:] == [str(target), str(target.with_suffix(".json"))]
    for args, message in [(["-i", str(inputs[case].parent), "-sp", str(tmp_path / "q.npz")],  # a folder: a batch
                           "saved for one scan at a time"),
                          (["-i", str(inputs[case]), "-sp", str(tmp_path / "q.nii.gz")], "saved as a .npz file")]:
        result = runner.invoke(app, [*args, "-o", str(tmp_path / "bad"), "-ta", "hippo", "-q"])
        assert result.exit_code == 2 and message in result.output, result.output
    assert not (tmp_path / "bad").exists()


def test_parts_on_one_model_grid_are_painted_there_later_parts_winning_each_saving_probabilities(
        hippo_registry, inputs, tmp_path):
    from segkit.infer.probabilities import load_probabilities
    from segtool import Segmenter, SegmentOptions
    from segtool.errors import SegtoolError
    from segtool.registry import load_registry
    from segtool.store import WeightsStore
    from segtool.totalseg_grid import labels_to_scan, to_model_grid

    path = hippo_registry(input_resampling="totalsegmentator", spacing_mm=1.5)  # resampled: 1 mm scans
    registry = json.loads(path.read_text())
    first = registry["tasks"]["hippo"]["modes"]["default"][0]
    second = {**first, "labels": {"2": "anterior"}}  # a second part: the model's class 2 painted as anterior
    registry["tasks"]["hippo"]["modes"]["default"] = [first, second]
    path.write_text(json.dumps(registry))
    segmenter = Segmenter(SegmentOptions(task="hippo", device="cpu", tta=False), registry=load_registry(path),
                          store=WeightsStore(tmp_path / "weights"))
    scan = read_image(inputs[CASES[1]])
    labels = segmenter.segment(scan, probabilities=tmp_path / "p.npz").array
    # part by part on the scan's grid, the later part painted over the earlier one
    canonical, grid = to_model_grid(scan, 1.5)
    predicted = segmenter.parts[0][1].predict(grid).array
    expected = np.where(labels_to_scan(predicted, canonical, scan) == 2, 1, labels_to_scan(predicted, canonical, scan))
    first_only = labels_to_scan(predicted, canonical, scan)
    assert set(np.unique(first_only)) == {0, 1, 2} and set(np.unique(labels)) == {0, 1}  # posterior painted over
    assert np.array_equal(labels, expected)
    # each part's probabilities on the grid it predicted on, named by the task's classes
    assert segmenter.probability_files == [tmp_path / n for n in ("p_part1.npz", "p_part1.json", "p_part2.npz",
                                                                  "p_part2.json")]
    for part, channels in (("part1", ["background", "anterior", "posterior"]), ("part2", ["background", None,
                                                                                          "anterior"])):
        assert np.array_equal(load_probabilities(tmp_path / f"p_{part}.npz").argmax(0), predicted)
        description = json.loads((tmp_path / f"p_{part}.json").read_text())
        assert description["channels"] == channels
        np.testing.assert_allclose(description["affine"], grid.affine, atol=1e-6)
    split = Segmenter(SegmentOptions(task="hippo", device="cpu", tta=False, force_split=True),
                      registry=load_registry(path), store=WeightsStore(tmp_path / "weights"))
    with pytest.raises(SegtoolError, match="save_probabilities keeps a model's probabilities of the whole scan"):
        split.segment(scan, probabilities=tmp_path / "split.npz")
    assert not (tmp_path / "split.npz").exists()


def test_preview_leaves_the_callers_matplotlib_backend_alone(inputs, tmp_path):
    import matplotlib

    from segtool.preview import write_preview

    scan = read_image(inputs[CASES[0]])
    labels = scan.with_array((scan.array > np.percentile(scan.array, 95)).astype(np.uint8))
    before = matplotlib.get_backend()
    matplotlib.use("svg")
    try:
        write_preview(scan, labels, tmp_path / "preview.png")
        assert matplotlib.get_backend() == "svg"
    finally:
        matplotlib.use(before)
    pixels = mpimg.imread(tmp_path / "preview.png")
    assert pixels.ndim == 3 and (np.ptp(pixels[..., :3], axis=-1) > 0.1).any()  # coloured overlay pixels


def test_statistics_of_a_class_the_scan_cuts_off(hippo_cli, inputs, nnunet_reference_dir, tmp_path):
    case = CASES[0]
    reference = read_image(nnunet_reference_dir / "predictions" / "hippocampus_notta" / f"{case}.nii.gz").array
    rows = np.flatnonzero((reference == 1).any(axis=(1, 2)))
    cut = read_image(inputs[case]).crop((slice(0, int(rows[len(rows) // 3])), slice(None), slice(None)))
    write_image(cut, tmp_path / "cut.nii.gz")  # ends a third of the way through the anterior hippocampus
    stats = {}
    for flags in (["--statistics"], ["-sii"], ["-sii", "-sa", "median"]):
        out = tmp_path / "_".join(flags).strip("-")
        result = runner.invoke(app, ["-i", str(tmp_path / "cut.nii.gz"), "-o", str(out), "-ta", "hippo", *flags, "-q"])
        assert result.exit_code == 0, result.output
        stats[" ".join(flags)] = json.loads((out / "statistics.json").read_text())
    anterior = read_image(out / "anterior.nii.gz").array == 1
    assert anterior[-BORDER_VOXELS:].any()  # the mask reaches the cut
    assert stats["--statistics"]["anterior"] == {"volume": 0.0, "intensity": 0.0}  # as TotalSegmentator reports it
    assert stats["-sii"]["anterior"]["volume"] == pytest.approx(anterior.sum() * np.prod(cut.spacing))
    median = stats["-sii -sa median"]["anterior"]  # TotalSegmentator's --stats_aggregation median
    assert median["volume"] == stats["-sii"]["anterior"]["volume"]
    assert median["intensity"] == round(float(np.median(cut.array[anterior])), 5)


def test_statistics_only_with_extra_metrics_a_path_and_a_report(hippo_cli, inputs, tmp_path):
    """TotalSegmentator's -ss (no masks), -s PATH, -sx and -rp PATH together."""
    from segkit.nets import cpu_bf16_pays

    scan, out = inputs[CASES[1]], tmp_path / "out"
    result = runner.invoke(app, ["-i", str(scan), "-o", str(out), "-ta", "hippo", "-ss", "-s", str(tmp_path / "stats"
                                 / "hippo.json"), "-sx", "-rp", str(tmp_path / "run.json"), "--no-tta"])
    assert result.exit_code == 0, result.output
    assert not out.exists()  # no masks, and nothing else went there
    stats = json.loads((tmp_path / "stats" / "hippo.json").read_text())
    masks = tmp_path / "masks"
    result = runner.invoke(app, ["-i", str(scan), "-o", str(masks), "-ta", "hippo", "-s", "-q", "--no-tta"])
    assert result.exit_code == 0, result.output
    assert json.loads((masks / "statistics.json").read_text()).keys() == stats.keys()
    anterior = read_image(masks / "anterior.nii.gz").array == 1
    intensities = read_image(scan).array[anterior]
    where = np.argwhere(anterior)
    assert stats["anterior"]["n_voxels"] == anterior.sum()
    assert stats["anterior"]["intensity_max"] == intensities.max()
    assert stats["anterior"]["intensity_std"] == pytest.approx(intensities.std(), abs=1e-4)
    assert stats["anterior"]["centroid_vox"] == pytest.approx(where.mean(axis=0), abs=0.005)
    assert stats["anterior"]["bbox_vox"] == np.stack([where.min(0), where.max(0)], axis=1).tolist()

    report = json.loads((tmp_path / "run.json").read_text())
    assert report["task"] == "hippo" and report["classes"] == {"1": "anterior", "2": "posterior"}
    assert report["scans"] == [{"input": str(scan), "files": [str(tmp_path / "stats" / "hippo.json")]}]
    assert report["failed"] == [] and report["device"] == "cpu" and report["software"]["segtool"]
    assert [m["tta"] for m in report["models"]] == [False] and report["runtime_seconds"] > 0
    assert report["models"][0]["precision"] == "float32" or cpu_bf16_pays()


def test_report_of_a_batch_lists_every_file_and_the_failures(hippo_cli, inputs, tmp_path):
    folder = tmp_path / "scans"
    folder.mkdir()
    (folder / "good.nii.gz").write_bytes(inputs[CASES[0]].read_bytes())
    _nan_copy(folder, inputs[CASES[0]])
    result = runner.invoke(app, ["-i", str(folder), "-o", str(tmp_path / "out"), "-ta", "hippo", "--ml", "-q",
                                 "--no-tta", "--report", str(tmp_path / "run.json")])
    assert result.exit_code == 2 and "NaN" in result.output
    report = json.loads((tmp_path / "run.json").read_text())
    good = tmp_path / "out" / "good.nii.gz"
    names = tmp_path / "out" / "good.json"
    assert report["scans"] == [{"input": str(folder / "good.nii.gz"), "files": [str(good), str(names)]}]
    assert [f["input"] for f in report["failed"]] == [str(folder / "nan.nii.gz")]
    assert [m["tta"] for m in report["models"]] == [False] and report["multilabel"] is True
    assert all(Path(f).is_file() for scan in report["scans"] for f in scan["files"])
    # TotalSegmentator's keys: its pipelines read them
    assert (report["fast"], report["fastest"], report["output_files"]) == (False, False, ["good.nii.gz"])

    batch_stats = runner.invoke(app, ["-i", str(folder), "-o", str(tmp_path / "out2"), "-ta", "hippo",
                                      "-s", str(tmp_path / "s.json")])
    assert batch_stats.exit_code == 2 and "ask for statistics without a path" in batch_stats.output


def test_api_statistics_to_a_path_without_saving_masks(hippo_cli, inputs, tmp_path):
    from segtool import segment

    result = segment(inputs[CASES[0]], tmp_path / "out", task="hippocampus", statistics=tmp_path / "s.json",
                     statistics_extra=True, skip_saving=True, tta=False)
    masks = segment(inputs[CASES[0]], tmp_path / "masks", task="hippocampus", tta=False, nr_thr_saving=1)
    assert np.array_equal(read_image(tmp_path / "masks" / "posterior.nii.gz").array, np.asarray(masks.dataobj) == 2)
    assert not (tmp_path / "out").exists()
    stats = json.loads((tmp_path / "s.json").read_text())
    assert stats == result.extra["statistics"] and stats["posterior"]["n_voxels"] == (result.get_fdata() == 2).sum()


def test_report_to_standard_output(hippo_cli, inputs, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # where a file named '-' would appear
    out = tmp_path / "out.nii.gz"
    result = runner.invoke(app, ["-i", str(inputs[CASES[0]]), "-o", str(out), "-ta", "hippo", "--ml", "--no-tta",
                                 "-rp", "-"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)  # the report alone: the messages went to standard error
    assert report["scans"] == [{"input": str(inputs[CASES[0]]), "files": [str(out), str(tmp_path / "out.json")]}]
    assert f"done: 1 of 1 scan(s) segmented into {out}" in result.stderr
    assert not (tmp_path / "-").exists()


def test_verbose_prints_each_step_with_its_time(hippo_cli, inputs, tmp_path):
    args = ["-i", str(inputs[CASES[0]]), "-o", str(tmp_path / "out"), "-ta", "hippo", "--no-tta"]
    result = runner.invoke(app, [*args, "-v"])
    assert result.exit_code == 0, result.output
    steps = [line for line in result.stderr.splitlines() if re.search(r": \d+\.\d\d s$", line)]
    assert [line.rsplit(":", 1)[0] for line in steps] == [
        "loaded Dataset004_Hippocampus/nnUNetTrainer_refShort__nnUNetPlans__3d_fullres (folds 0, cpu, float32, "
        "step 0.5, mirroring off)",
        f"read {inputs[CASES[0]]} ((33, 48, 38) at 1 x 1 x 1 mm)",
        "Dataset004_Hippocampus predicted (33, 48, 38)",
        f"segmented {inputs[CASES[0]].name}",
        f"wrote the outputs of {inputs[CASES[0]].name} (2 file(s))",
    ]
    quiet = runner.invoke(app, args)
    assert quiet.exit_code == 0 and not re.search(r": \d+\.\d\d s$", quiet.output, re.MULTILINE)


def test_crop_to_body_keeps_the_box_of_the_body(serve_hippo, hippo_registry, inputs, tmp_path, monkeypatch):
    # TotalSegmentator's crop_to_body; the hippocampus model stands in for the body task (trunk = anterior), without
    # the body task's clean-up (which would leave no "extremity" of this size)
    from segtool import Segmenter, SegmentOptions
    from segtool.body_crop import body_box
    from segtool.cli import context
    from segtool.regions import BODY_MARGIN_MM, box_around
    from segtool.registry import load_registry

    serve_hippo(modality="CT", body=True)
    path = hippo_registry(modality="CT", body=True)
    data = json.loads(path.read_text())
    del data["tasks"]["body"]["cleanup"]
    path.write_text(json.dumps(data))
    registry = load_registry(path)
    monkeypatch.setattr(context, "registry", lambda: registry)
    scan = read_image(inputs[CASES[0]])
    body = Segmenter(SegmentOptions(task="body", mode="fast", device="cpu"), registry=context.registry()).segment(scan)
    shapes = []
    for args, found in (([], body.array > 0), (["-t"], body.array == 1)):
        out = tmp_path / f"cropped{len(args)}.nii.gz"
        result = runner.invoke(app, ["crop-to-body", "-i", str(inputs[CASES[0]]), "-o", str(out), *args])
        assert result.exit_code == 0, result.output
        box = box_around(found, scan.spacing, BODY_MARGIN_MM)
        cropped, expected = read_image(out), scan.crop(box)
        assert cropped.spatial_shape != scan.spatial_shape and np.array_equal(cropped.array, expected.array)
        assert np.allclose(cropped.affine, expected.affine)
        assert f"{inputs[CASES[0]].name} {scan.spatial_shape} -> {out} {cropped.spatial_shape}" in result.output
        shapes.append(cropped.spatial_shape)
    assert shapes[0] != shapes[1]  # the trunk alone is a smaller box
    nested = tmp_path / "new" / "sub" / "cropped.nii.gz"  # its folders are created, as segment creates its outputs'
    result = runner.invoke(app, ["crop-to-body", "-i", str(inputs[CASES[0]]), "-o", str(nested), "-q"])
    assert result.exit_code == 0, result.output
    assert read_image(nested).spatial_shape == shapes[0]
    assert body_box(inputs[CASES[0]], registry=registry, device="cpu") == box_around(body.array > 0, scan.spacing,
                                                                                     BODY_MARGIN_MM)  # a path too
    result = runner.invoke(app, ["crop-to-body", "-i", str(inputs[CASES[0]]), "-o", str(inputs[CASES[0]])])
    assert result.exit_code == 2 and "would overwrite an input scan" in result.output


def test_crop_to_body_refuses_a_bad_output_or_scan_before_the_model_runs(inputs, tmp_path, monkeypatch):
    import segtool.body_crop
    from segtool.errors import SegtoolError

    def refuse(*args, **kwargs):
        raise RuntimeError("the body was looked for although the output is bad")

    monkeypatch.setenv("SEGTOOL_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(segtool.body_crop, "body_box", refuse)
    (tmp_path / "folder").mkdir()
    for output in (tmp_path / "cropped.txt", tmp_path / "folder"):
        result = runner.invoke(app, ["crop-to-body", "-i", str(inputs[CASES[0]]), "-o", str(output)])
        assert result.exit_code == 2, result.output
        assert result.output.strip().splitlines() == [f"error: {output}: the cropped scan is an image file; name it "
                                                      ".nii.gz, .nii, .mgz, .mgh, .nrrd, .mha or .mhd"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder"] and not any((tmp_path / "folder").iterdir())
    scans = tmp_path / "scans"  # a folder of scans is a batch, not one scan (nor a DICOM series)
    scans.mkdir()
    for case in CASES:
        (scans / inputs[case].name).write_bytes(inputs[case].read_bytes())
    result = runner.invoke(app, ["crop-to-body", "-i", str(scans), "-o", str(tmp_path / "c.nii.gz")])
    assert result.exit_code == 2 and result.output.strip().splitlines() == [
        f"error: {scans}: a folder of 2 scan(s); crop-to-body crops one scan (a file, or a DICOM series folder or zip)"]
    monkeypatch.undo()
    flat = nib.Nifti1Image(np.zeros((20, 20), np.float32), np.eye(4))
    with pytest.raises(SegtoolError, match="must be 3D"):  # checked as segment checks it, before any download
        segtool.body_crop.body_box(flat)
