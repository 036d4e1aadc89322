"""The predictor on the genuine nnU-Net hippocampus model, against nnUNetv2_predict's outputs."""

import gc
import json
import shutil
import weakref
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch

from segkit.infer import predictor as predictor_module
from segkit.infer.batch import predict_folder
from segkit.infer.errors import InferError, InputMismatchError, ModelLoadError
from segkit.infer.export import labels_from_logits
from segkit.infer.predictor import PredictOptions, Predictor
from segkit.infer.sliding_window import predict_sliding_window
from segkit.infer.tiling import tile_starts
from segkit.io import Image, ImageReadError, read_image
from segkit.nets import cpu_emulation_message


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


def _assert_matches_nnunet(predictor: Predictor, inputs: list[Path], predictions_dir: Path, folder: str) -> None:
    """The compatibility bar: Dice >= 0.99 per class per case, probability MAE < 1e-3, output on the input grid."""
    for path in inputs:
        case = path.name.removesuffix("_0000.nii.gz")
        image = read_image(path)
        labels, probs = predictor.predict_probabilities(image)
        ref_labels, ref_probs = reference(predictions_dir, folder, case)
        assert labels.same_grid(image, tolerance=0) and np.array_equal(labels.affine, image.affine)
        for label in (1, 2):
            assert dice(labels.array, ref_labels, label) >= 0.99, (case, label)
        assert probs.shape == ref_probs.shape
        assert np.abs(probs - ref_probs).mean() < 1e-3, case


def test_no_tta_matches_nnunet_on_all_reference_cases(hippo_predictor_notta, predictions_dir):
    inputs = _inputs(predictions_dir)
    assert len(inputs) == 10
    _assert_matches_nnunet(hippo_predictor_notta, inputs, predictions_dir, "hippocampus_notta")


def test_tta_matches_nnunet(hippo_model_dir, predictions_dir):
    predictor = Predictor.from_model_folder(hippo_model_dir, folds=[0], options=PredictOptions(precision="fp32"))
    assert predictor.setup.mirror_axes == (0, 1, 2)
    _assert_matches_nnunet(predictor, _inputs(predictions_dir)[:2], predictions_dir, "hippocampus_tta")


def test_unfused_networks_pass_the_same_bar(hippo_model_dir, predictions_dir):
    # fused=False runs the networks as nnU-Net builds them (to measure what fusing changes by rounding)
    from segkit.infer.model_folder import load_model_folder

    model = load_model_folder(hippo_model_dir, folds=[0])
    predictor = Predictor(model, options=PredictOptions(tta=False, precision="fp32"), fused=False)
    assert predictor.networks[0] is model.networks[0] and not getattr(predictor.networks[0], "is_fused", False)
    _assert_matches_nnunet(predictor, _inputs(predictions_dir)[:1], predictions_dir, "hippocampus_notta")


def test_bf16_autocast_matches_nnunet(hippo_model_dir, predictions_dir):
    # bf16 (channels-last) is the CPU default where AMX makes it pay; its masks must pass the same bar as fp32.
    # A CPU without bf16 kernels would emulate them (6 minutes for this case on AVX2): asking for bf16 there fails.
    options = PredictOptions(tta=False, precision="bf16")
    if problem := cpu_emulation_message(torch.bfloat16):
        with pytest.raises(InferError, match="would emulate them"):
            Predictor.from_model_folder(hippo_model_dir, folds=[0], options=options)
        assert "use precision fp32 or auto" in problem
        return
    predictor = Predictor.from_model_folder(hippo_model_dir, folds=[0], options=options)
    _assert_matches_nnunet(predictor, _inputs(predictions_dir)[:1], predictions_dir, "hippocampus_notta")


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
    for image, out in zip(images, many, strict=True):
        assert np.array_equal(out.array, hippo_predictor_notta.predict(image).array)


def test_tile_progress_counts_every_tile(hippo_predictor_notta, predictions_dir):
    image = read_image(_inputs(predictions_dir)[0])
    tall = Image(np.concatenate([image.array] * 3, axis=-1), image.affine)  # the scan three times over: several tiles
    calls = []
    hippo_predictor_notta.tile_progress = lambda done, total: calls.append((done, total))
    try:
        hippo_predictor_notta.predict(tall)
    finally:
        hippo_predictor_notta.tile_progress = None
    tile = hippo_predictor_notta.setup.tile_size
    padded = [max(n, t) for n, t in zip(hippo_predictor_notta.prepare(tall).data.shape[1:], tile, strict=True)]
    tiles = len(tile_starts(padded, tile, 0.5))
    assert tiles > 1 and calls == [(done, tiles) for done in range(1, tiles + 1)]  # one tile per CPU forward


def _identical_folds(hippo_model_dir: Path, tmp_path: Path, folds: int) -> Path:
    """A model folder whose folds all hold the reference model's fold 0."""
    folder = tmp_path / hippo_model_dir.name
    folder.mkdir()
    for name in ("plans.json", "dataset.json"):
        (folder / name).symlink_to(hippo_model_dir / name)
    for fold in range(folds):
        (folder / f"fold_{fold}").mkdir()
        checkpoint = hippo_model_dir / "fold_0" / "checkpoint_final.pth"
        (folder / f"fold_{fold}" / "checkpoint_final.pth").symlink_to(checkpoint)
    return folder


def test_fold_ensemble_of_identical_folds_equals_one_fold(hippo_model_dir, predictions_dir, tmp_path):
    folder = _identical_folds(hippo_model_dir, tmp_path, 2)
    options = PredictOptions(tta=False, precision="fp32")
    both = Predictor.from_model_folder(folder, options=options)
    one = Predictor.from_model_folder(folder, folds=1, options=options)  # one fold as a plain number
    assert both.folds == (0, 1) and len(both.networks) == 2 and one.folds == (1,)
    assert Predictor.from_model_folder(folder, folds=["0"], options=options).folds == (0,)
    # fold_all (trained on every case) joins the numbered folds only when named, as nnU-Net finds folds
    (folder / "fold_all").mkdir()
    (folder / "fold_all" / "checkpoint_final.pth").symlink_to(folder / "fold_0" / "checkpoint_final.pth")
    assert Predictor.from_model_folder(folder, options=options).folds == (0, 1)
    assert Predictor.from_model_folder(folder, folds=[0, "all"], options=options).folds == (0, "all")
    for folds, message in [([0, 0], "more than once"), (["x"], "a number or 'all'"), ([], "no folds given")]:
        with pytest.raises(ModelLoadError, match=message):
            Predictor.from_model_folder(folder, folds=folds, options=options)
    image = read_image(_inputs(predictions_dir)[1])
    labels_both, probs_both = both.predict_probabilities(image)
    labels_one, probs_one = one.predict_probabilities(image)
    assert np.array_equal(labels_both.array, labels_one.array)
    # fp32 convolutions are not bitwise reproducible from run to run (oneDNN/MKL pick paths by buffer alignment and
    # threads): about 1 run in 6 differed by 1.01e-5 at a voxel near a class boundary
    np.testing.assert_allclose(probs_both, probs_one, atol=1e-4)


def test_model_folders_trained_with_the_same_plans_are_averaged_as_folds(hippo_model_dir, shipped_hippocampus_dir,
                                                                         predictions_dir):
    """nnU-Net's short reference run (32..256 features) and segtool's shipped model (segkit's own 16..128 U-Net)
    prepare a hippocampus scan alike, so one predictor can average their probabilities."""
    shipped = shipped_hippocampus_dir
    options = PredictOptions(tta=False, precision="fp32")
    alone = [Predictor.from_model_folder(folder, options=options) for folder in (hippo_model_dir, shipped)]
    both = Predictor.from_model_folder([hippo_model_dir, shipped], options=options)
    assert both.folds == (0, "all") and len(both.networks) == 2
    assert alone[0].setup.mirror_axes == (0, 1, 2) and both.setup.mirror_axes == alone[1].setup.mirror_axes == (0,)
    image = read_image(_inputs(predictions_dir)[2])
    (labels_a, probs_a), (labels_b, probs_b) = (p.predict_probabilities(image) for p in alone)
    assert not np.array_equal(labels_a.array, labels_b.array)  # two different networks: the test can fail
    labels, probs = both.predict_probabilities(image)
    np.testing.assert_allclose(probs, (probs_a + probs_b) / 2, atol=1e-4)
    assert np.array_equal(labels.array, np.argmax(probs, axis=0))


def test_model_folders_that_prepare_scans_differently_are_refused(hippo_model_dir, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(hippo_model_dir, other)
    plans = json.loads((other / "plans.json").read_text())
    plans["configurations"]["3d_fullres"]["patch_size"] = [32, 48, 32]
    (other / "plans.json").write_text(json.dumps(plans))
    with pytest.raises(ModelLoadError, match=r"prepares scans other than .* \(patch_size differ\): ensemble their "
                                             "saved probabilities with segkit-ensemble instead"):
        Predictor.from_model_folder([hippo_model_dir, other])


def test_weights_that_do_not_load_are_a_model_load_error(hippo_model_dir, tmp_path):
    folder = _identical_folds(hippo_model_dir, tmp_path, 1)
    checkpoint = folder / "fold_0" / "checkpoint_final.pth"
    checkpoint.unlink()
    checkpoint.write_bytes(b"not a checkpoint")
    with pytest.raises(ModelLoadError, match=f"^{folder}/fold_0/checkpoint_final.pth is not a readable"):
        Predictor.from_model_folder(folder, options=PredictOptions(tta=False))


def test_fold_ensemble_frees_each_folds_logits_before_the_next_fold(hippo_model_dir, predictions_dir, tmp_path,
                                                                     monkeypatch):
    """A fold's 118 CT logits are 325 MB: holding every fold's logits and probabilities took a five-fold ensemble
    of a 3 mm CT model to 8.9 GB."""
    predictor = Predictor.from_model_folder(_identical_folds(hippo_model_dir, tmp_path, 3),
                                            options=PredictOptions(tta=False))
    returned, alive_at_call = [], []

    def tracked(*args, **kwargs):
        gc.collect()
        alive_at_call.append(sum(ref() is not None for ref in returned))
        logits = predict_sliding_window(*args, **kwargs)
        returned.append(weakref.ref(logits))
        return logits

    monkeypatch.setattr(predictor_module, "predict_sliding_window", tracked)
    predictor.predict(read_image(_inputs(predictions_dir)[0]))
    assert alive_at_call == [0, 0, 0]


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
    with pytest.raises(InputMismatchError, match=r"one voxel thick along an axis \(2D or less\); the model is 3D"):
        hippo_predictor_notta.predict(flat)
    with pytest.raises(ImageReadError, match="expected an image: a path, a list of channel files"):
        hippo_predictor_notta.predict(image.array)


def test_inputs_are_images_paths_channel_files_or_nibabel_images(hippo_predictor_notta, predictions_dir, tmp_path):
    path = _inputs(predictions_dir)[0]
    expected = hippo_predictor_notta.predict(read_image(path)).array
    for source in (path, str(path), [path], nib.load(path)):
        assert np.array_equal(hippo_predictor_notta.predict(source).array, expected), type(source)
    assert all(np.array_equal(labels.array, expected)
               for labels in hippo_predictor_notta.predict_many([path, nib.load(path)]))
    with pytest.raises(InputMismatchError, match="one image file or a folder of them, got list"):
        predict_folder(hippo_predictor_notta, [path], tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_predictions_are_plain_results(hippo_predictor_notta, predictions_dir):
    image = read_image(_inputs(predictions_dir)[0])
    tagged = Image(image.array, image.affine, {"label_names": {1: "liver"}})
    assert hippo_predictor_notta.predict(tagged).meta == {}  # the input's label table does not describe the output
    logits, _ = hippo_predictor_notta.predict_logits(image)
    before = logits.float().mean()
    logits += 1  # an ordinary tensor, not one locked by inference mode
    assert torch.isclose(logits.float().mean(), before + 1, atol=1e-2)


def test_resampling_to_the_model_spacing_and_back(hippo_predictor_notta, predictions_dir):
    image = read_image(_inputs(predictions_dir)[0])
    coarse = Image(image.array, image.affine @ np.diag([1.5, 1.5, 1.25, 1.0]))  # same voxels, larger spacing
    logits, case = hippo_predictor_notta.predict_logits(coarse)
    assert case.geometry.network_shape != case.geometry.cropped_shape
    assert tuple(case.data.shape[1:]) == case.geometry.network_shape == tuple(logits.shape[1:])
    setup = hippo_predictor_notta.setup
    out = labels_from_logits(logits, case.geometry, setup, image=coarse)  # what `predict` returns
    assert out.spatial_shape == coarse.spatial_shape and np.array_equal(out.affine, coarse.affine)
    assert set(np.unique(out.array)) <= {0, 1, 2} and (out.array > 0).any()
    fast = labels_from_logits(logits, case.geometry, setup, image=coarse, fast=True)  # fast_export's labels
    assert fast.same_grid(coarse) and (fast.array == out.array).mean() > 0.95


def test_cascade_stage_gets_the_previous_prediction_as_one_hot_channels(hippo_model_dir, predictions_dir):
    from dataclasses import replace

    from segkit.infer.preprocessing import preprocess

    loaded = Predictor.from_model_folder(hippo_model_dir, options=PredictOptions(tta=False, precision="fp32"))
    cascade = replace(loaded.setup, previous_stage="3d_lowres")
    image = read_image(_inputs(predictions_dir)[0])
    previous = read_image(predictions_dir / "hippocampus_notta" / "hippocampus_033.nii.gz")
    plain = preprocess(image, loaded.setup)
    case = preprocess(image, cascade, previous=previous)
    assert case.data.shape[0] == 3  # image + one channel per foreground label
    assert np.array_equal(case.data[0].numpy(), plain.data[0].numpy())
    box = tuple(slice(a, b) for a, b in case.geometry.box)
    for channel, label in ((1, 1), (2, 2)):
        assert np.array_equal(case.data[channel].numpy() == 1, previous.array[box] == label)
    with pytest.raises(InputMismatchError, match="cascade"):
        preprocess(image, cascade)
    with pytest.raises(InputMismatchError, match="is not a cascade stage: it takes no previous stage's prediction"):
        preprocess(image, loaded.setup, previous=previous)  # --prev-stage for a plain model: not silently ignored


@pytest.mark.parametrize(("options", "message"), [
    ({"tta": "false"}, "tta must be True or False, got 'false'"),  # a truthy string would turn mirroring on
    ({"fast_export": 1}, "fast_export must be True or False, got 1"),
    ({"step": 0}, r"step must be in \(0, 1\], got 0"),
    ({"batch_size": 0}, "batch_size must be >= 1, got 0"),
    ({"shift_tta": -2}, "shift_tta must be a whole number of voxels >= 0, got -2"),
    ({"shift_tta": True}, "shift_tta must be a whole number of voxels >= 0, got True"),
])
def test_prediction_options_are_checked(options, message):
    with pytest.raises(InferError, match=message):
        PredictOptions(**options)
