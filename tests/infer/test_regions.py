"""Region-based models (sigmoid outputs, ``regions_class_order``), as nnU-Net trains them for BraTS-like tasks."""

import json
import shutil

import numpy as np
import pytest
import torch

from segkit.infer import BatchOptions, InferError, ModelLoadError, PredictOptions, Predictor, predict_folder
from segkit.infer.ensemble import ensemble_folders
from segkit.infer.model_folder import load_model_folder
from segkit.infer.probabilities import load_probabilities
from segkit.io import read_image

from .conftest import write_small_model_folder

LABELS = {"background": 0, "hippocampus": [1, 2], "posterior": [2]}


def _predictor(tmp_path, folds=(0,)) -> Predictor:
    folder = tmp_path / "regions"
    if not folder.exists():
        write_small_model_folder(folder, configuration="3d_fullres", patch_size=[16, 24, 16], labels=LABELS,
                                 folds=2, regions_class_order=[1, 2])
    return Predictor.from_model_folder(folder, folds=folds, options=PredictOptions(tta=False, precision="fp32"))


def test_regions_are_thresholded_at_one_half_and_painted_in_order(hippocampus_dir, tmp_path):
    image = read_image(hippocampus_dir / "imagesTr" / "hippocampus_001_0000.nii.gz")
    predictor = _predictor(tmp_path)
    assert predictor.setup.num_classes == 2 and predictor.setup.label_values == (0, 1, 2)
    labels, probabilities = predictor.predict_probabilities(image)
    assert probabilities.shape == (2, *image.spatial_shape)
    assert probabilities.min() >= 0 and probabilities.max() <= 1
    expected = np.zeros(image.spatial_shape, dtype=np.uint8)
    expected[probabilities[0] > 0.5] = 1
    expected[probabilities[1] > 0.5] = 2  # the later region wins
    assert {1, 2} <= set(np.unique(expected))  # the seeded network paints both regions: the test can fail
    np.testing.assert_array_equal(labels.array, expected)
    np.testing.assert_array_equal(predictor.predict(image).array, expected)


def test_fold_ensemble_averages_sigmoids(hippocampus_dir, tmp_path):
    image = read_image(hippocampus_dir / "imagesTr" / "hippocampus_001_0000.nii.gz")
    both = _predictor(tmp_path, folds=(0, 1))
    case = both.prepare(image)
    single = [_predictor(tmp_path, folds=(f,)).logits_of(case) for f in (0, 1)]
    expected = (torch.sigmoid(single[0].float()) + torch.sigmoid(single[1].float())) / 2
    torch.testing.assert_close(torch.sigmoid(both.logits_of(case)), expected, rtol=1e-5, atol=1e-5)


def test_region_labels_need_their_order(tmp_path):
    folder = write_small_model_folder(tmp_path / "m", configuration="3d_fullres", patch_size=[16, 24, 16],
                                      labels=LABELS)
    with pytest.raises(ModelLoadError, match="regions_class_order"):
        load_model_folder(folder)


def test_segkit_ensemble_of_region_probabilities_matches_the_fold_ensemble(hippocampus_dir, tmp_path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    shutil.copy(hippocampus_dir / "imagesTr" / "hippocampus_001_0000.nii.gz", inputs)
    folders = [tmp_path / f"fold{f}" for f in (0, 1)]
    for fold, folder in enumerate(folders):
        options = BatchOptions(save_probabilities=True)
        predict_folder(_predictor(tmp_path, folds=(fold,)), inputs, folder, options=options)
        assert json.loads((folder / "dataset.json").read_text())["regions_class_order"] == [1, 2]
    ensemble_folders(folders, tmp_path / "ens")
    ensembled = read_image(tmp_path / "ens" / "hippocampus_001.nii.gz").array
    mean = np.mean([load_probabilities(f / "hippocampus_001.npz") for f in folders], axis=0)
    expected = np.zeros(mean.shape[1:], np.uint8)
    expected[mean[0] > 0.5] = 1
    expected[mean[1] > 0.5] = 2
    assert {0, 1, 2} == set(np.unique(ensembled))
    np.testing.assert_array_equal(ensembled, expected)
    both_folds = _predictor(tmp_path, folds=(0, 1)).predict(read_image(inputs / "hippocampus_001_0000.nii.gz"))
    assert (both_folds.array == ensembled).mean() > 0.999  # same averaging of sigmoids, up to rounding
    assert json.loads((tmp_path / "ens" / "dataset.json").read_text())["regions_class_order"] == [1, 2]
    (folders[1] / "dataset.json").write_text(json.dumps({"labels": {"background": 0, "a": 1, "b": 2}}))
    with pytest.raises(InferError, match="regions"):
        ensemble_folders(folders, tmp_path / "ens2")
