"""The predictor on the genuine nnU-Net hippocampus model, against nnUNetv2_predict's outputs."""

from pathlib import Path

import numpy as np
import pytest

from segkit.infer.errors import InputMismatchError
from segkit.infer.predictor import Predictor, PredictOptions
from segkit.io import Image, read_image


def dice(a: np.ndarray, b: np.ndarray, label: int) -> float:
    x, y = a == label, b == label
    total = x.sum() + y.sum()
    return 1.0 if total == 0 else 2.0 * (x & y).sum() / total


def reference(predictions_dir: Path, folder: str, case: str) -> tuple[np.ndarray, np.ndarray]:
    labels = read_image(predictions_dir / folder / f"{case}.nii.gz").array
    probs = np.load(predictions_dir / folder / f"{case}.npz")["probabilities"]
    return labels, np.transpose(probs, (0, 3, 2, 1))  # nnU-Net (c, z, y, x) -> ours (c, i, j, k)


def _inputs(predictions_dir: Path) -> list[Path]:
    return sorted((predictions_dir / "inputs").glob("*_0000.nii.gz"))


def test_no_tta_matches_nnunet_on_all_reference_cases(hippo_predictor_notta, predictions_dir):
    inputs = _inputs(predictions_dir)
    assert len(inputs) == 10
    for path in inputs:
        case = path.name.removesuffix("_0000.nii.gz")
        image = read_image(path)
        labels, probs = hippo_predictor_notta.predict_probabilities(image)
        ref_labels, ref_probs = reference(predictions_dir, "hippocampus_notta", case)
        assert labels.same_grid(image, tolerance=0) and np.array_equal(labels.affine, image.affine)
        for label in (1, 2):
            assert dice(labels.array, ref_labels, label) >= 0.99, (case, label)
        assert probs.shape == ref_probs.shape
        assert np.abs(probs - ref_probs).mean() < 1e-3, case


def test_tta_matches_nnunet(hippo_model_dir, predictions_dir):
    predictor = Predictor.from_model_folder(hippo_model_dir, folds=[0], options=PredictOptions(precision="fp32"))
    assert predictor.setup.mirror_axes == (0, 1, 2)
    for path in _inputs(predictions_dir)[:2]:
        case = path.name.removesuffix("_0000.nii.gz")
        labels, probs = predictor.predict_probabilities(read_image(path))
        ref_labels, ref_probs = reference(predictions_dir, "hippocampus_tta", case)
        for label in (1, 2):
            assert dice(labels.array, ref_labels, label) >= 0.99, (case, label)
        assert np.abs(probs - ref_probs).mean() < 1e-3, case


def test_any_input_orientation_gives_the_same_labels_on_the_input_grid(hippo_predictor_notta, predictions_dir):
    image = read_image(_inputs(predictions_dir)[0])
    expected = hippo_predictor_notta.predict(image)
    for codes in (("L", "P", "S"), ("S", "L", "A"), ("P", "I", "R")):
        turned = image.reorient(codes)
        out = hippo_predictor_notta.predict(turned)
        assert np.array_equal(out.affine, turned.affine)
        assert out.spatial_shape == turned.spatial_shape
        assert np.array_equal(out.reorient(image.axis_codes).array, expected.array)


def test_predict_many_equals_predict(hippo_predictor_notta, predictions_dir):
    images = [read_image(p) for p in _inputs(predictions_dir)[:3]]
    many = list(hippo_predictor_notta.predict_many(iter(images)))
    assert len(many) == 3
    for image, out in zip(images, many):
        assert np.array_equal(out.array, hippo_predictor_notta.predict(image).array)


def test_fold_ensemble_of_identical_folds_equals_one_fold(hippo_model_dir, predictions_dir, tmp_path):
    folder = tmp_path / hippo_model_dir.name
    folder.mkdir()
    for name in ("plans.json", "dataset.json"):
        (folder / name).symlink_to(hippo_model_dir / name)
    for fold in (0, 1):
        (folder / f"fold_{fold}").mkdir()
        (folder / f"fold_{fold}" / "checkpoint_final.pth").symlink_to(hippo_model_dir / "fold_0" / "checkpoint_final.pth")
    options = PredictOptions(tta=False, precision="fp32")
    both = Predictor.from_model_folder(folder, options=options)
    one = Predictor.from_model_folder(folder, folds=[1], options=options)
    assert both.folds == (0, 1) and len(both.networks) == 2
    image = read_image(_inputs(predictions_dir)[1])
    labels_both, probs_both = both.predict_probabilities(image)
    labels_one, probs_one = one.predict_probabilities(image)
    assert np.array_equal(labels_both.array, labels_one.array)
    np.testing.assert_allclose(probs_both, probs_one, atol=1e-5)


def test_bad_inputs_raise_one_line_errors(hippo_predictor_notta, predictions_dir):
    image = read_image(_inputs(predictions_dir)[0])
    two_channels = Image(np.stack([image.array, image.array]), image.affine)
    with pytest.raises(InputMismatchError, match="2 channel"):
        hippo_predictor_notta.predict(two_channels)
    nan = image.array.astype(np.float32)
    nan[3, 3, 3] = np.nan
    with pytest.raises(InputMismatchError, match="NaN"):
        hippo_predictor_notta.predict(image.with_array(nan))
    flat = Image(image.array[:, :, :1], image.affine)
    with pytest.raises(InputMismatchError, match="2D"):
        hippo_predictor_notta.predict(flat)
