"""The TotalSegmentator-layout CT model (fp16 weights, CT normalization, 118 classes) on the CT example."""

from pathlib import Path

import numpy as np
import pytest

from segkit.infer.predictor import PredictOptions, Predictor
from segkit.io import read_image
from segkit.io.safe_zip import extract_zip


@pytest.fixture(scope="module")
def ct_model(nnunet_reference_dir: Path, tmp_path_factory) -> Path:
    target = tmp_path_factory.mktemp("totalseg")
    extract_zip(nnunet_reference_dir / "totalseg" / "Dataset297_TotalSegmentator_total_3mm_1559subj.zip", target)
    return next(target.glob("*/nnUNetTrainer_4000epochs_NoMirroring__nnUNetPlans__3d_fullres"))


def test_ct_prediction_matches_totalsegmentator(ct_model, ct_dir, nnunet_reference_dir):
    # TotalSegmentator runs its `total` models with step 0.8 and without TTA
    predictor = Predictor.from_model_folder(ct_model, options=PredictOptions(step=0.8, tta=False, precision="fp32"))
    assert predictor.setup.num_classes == 118 and predictor.setup.patch_size == (128, 112, 80)
    image = read_image(ct_dir / "example_ct.nii.gz")
    labels = predictor.predict(image)
    reference = read_image(nnunet_reference_dir / "predictions" / "totalseg_fast_example_ct.nii.gz")
    assert np.array_equal(labels.affine, image.affine)
    assert (labels.array == reference.array).mean() > 0.999
    big = [v for v in np.unique(reference.array) if v and (reference.array == v).sum() >= 1000]
    assert big, "the reference should hold some large regions"
    for value in big:
        x, y = labels.array == value, reference.array == value
        assert 2 * (x & y).sum() / (x.sum() + y.sum()) > 0.99, value
