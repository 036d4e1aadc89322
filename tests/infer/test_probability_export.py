"""Probabilities are exported a slab of the input's first axis at a time and streamed into the ``.npz``: the
values of resampling, softmax, uncropping and reorienting the whole array, in any orientation."""

import tracemalloc

import numpy as np
import pytest
import torch

from segkit.infer.export import probabilities_from_logits, probability_slabs
from segkit.infer.probabilities import load_probabilities, write_probabilities
from segkit.io import Image, read_image
from segkit.planning.cropping import uncrop
from segkit.planning.resampling import resample_logits


def _case(predictions_dir, spacing, codes) -> Image:
    """A real hippocampus scan, zero-padded (so the crop box is smaller than the grid), at another spacing, turned."""
    scan = read_image(sorted((predictions_dir / "inputs").glob("*_0000.nii.gz"))[0])
    padded = np.pad(scan.array, ((3, 0), (0, 5), (2, 4)))
    return Image(padded, np.diag([*spacing, 1.0])).reorient(codes)


def _whole_array(predictor, logits, geometry, image) -> np.ndarray:
    """The reference: every step on the whole array at once."""
    setup, options = predictor.setup, predictor.setup.resampling
    resampled = resample_logits(logits.float(), to_shape=geometry.cropped_shape, from_spacing=geometry.network_spacing,
                                to_spacing=geometry.spacing, order=options.order_probabilities,
                                order_z=options.order_z, separate_z=options.force_separate_z)
    shape = tuple(geometry.canonical_shape[p] for p in setup.axis_permutation)
    full = uncrop(torch.softmax(resampled, 0).numpy(), geometry.box, shape)
    full[0][full.sum(0) == 0] = 1.0  # background outside the crop box
    canonical = np.transpose(full, (0, *(1 + int(i) for i in np.argsort(setup.axis_permutation))))
    return Image(canonical, geometry.canonical_affine).reorient(image.axis_codes).array


@pytest.mark.parametrize(("spacing", "codes"), [
    ((1.3, 0.8, 1.1), ("P", "I", "R")),  # first input axis: a reversed network axis
    ((1.0, 1.0, 3.5), ("S", "L", "A")),  # a separate z axis (order_z 0), which is the input's first axis
    ((1.0, 1.0, 3.5), ("R", "A", "S")),  # the separate z axis (order_z 0) within each slab
    ((0.9, 1.2, 1.0), ("R", "A", "S")),
])
def test_slabs_equal_the_whole_array_and_stream_into_the_file(hippo_predictor_notta, predictions_dir, tmp_path,
                                                              spacing, codes):
    image = _case(predictions_dir, spacing, codes)
    logits, case = hippo_predictor_notta.predict_logits(image)
    geometry, setup = case.geometry, hippo_predictor_notta.setup
    assert geometry.cropped_shape != geometry.network_shape
    assert any(b - a < s for (a, b), s in zip(geometry.box, geometry.canonical_shape, strict=True))

    expected = _whole_array(hippo_predictor_notta, logits, geometry, image)
    probabilities = probabilities_from_logits(logits, geometry, setup, image=image)
    assert probabilities.shape == (3, *image.spatial_shape)
    assert probabilities.strides[0] == 4  # a voxel's outputs side by side, as the slabs and the file hold them
    np.testing.assert_allclose(probabilities, expected, rtol=0, atol=1e-5)  # rounding: other axis order

    row_bytes = probabilities[:, :1].nbytes
    slabs = list(probability_slabs(logits, geometry, setup, image=image, budget_bytes=3 * row_bytes))
    assert len(slabs) == -(-image.spatial_shape[0] // 3)  # rows of at most 3, one after the other, in order
    assert [s.start for s, _ in slabs] == [0] + [s.stop for s, _ in slabs[:-1]]
    assert slabs[-1][0].stop == image.spatial_shape[0]
    stacked = np.concatenate([slab for _, slab in slabs], axis=1)
    np.testing.assert_allclose(stacked, probabilities, rtol=0, atol=1e-6)  # matrix products of other row counts

    path = tmp_path / "case.npz"
    tracemalloc.start()
    write_probabilities(path, probabilities.shape,
                        probability_slabs(logits, geometry, setup, image=image, budget_bytes=3 * row_bytes))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < probabilities.nbytes / 4  # a few slabs at a time, never the whole array
    assert np.array_equal(load_probabilities(path), stacked)
    stored = np.load(path)["probabilities"]  # nnU-Net's layout: (c, z, y, x)
    assert stored.shape == (3, *image.spatial_shape[::-1])


def test_slabs_out_of_order_are_refused_and_nothing_is_written(tmp_path):
    slab = np.zeros((2, 1, 3, 4), np.float32)
    path = tmp_path / "case.npz"
    with pytest.raises(ValueError, match="does not continue"):
        write_probabilities(path, (2, 2, 3, 4), [(slice(1, 2), slab)])
    with pytest.raises(ValueError, match="end at row 1"):
        write_probabilities(path, (2, 2, 3, 4), [(slice(0, 1), slab)])
    assert list(tmp_path.iterdir()) == []


def test_float32_logits_on_the_input_spacing_are_left_as_they_are(hippo_predictor_notta, predictions_dir):
    image = _case(predictions_dir, (1.0, 1.0, 1.0), ("R", "A", "S"))  # the model's spacing: nothing to resample
    logits, case = hippo_predictor_notta.predict_logits(image)
    logits = logits.float()
    before = logits.clone()
    probabilities = probabilities_from_logits(logits, case.geometry, hippo_predictor_notta.setup, image=image)
    assert torch.equal(logits, before)
    np.testing.assert_allclose(probabilities, _whole_array(hippo_predictor_notta, logits, case.geometry, image),
                               rtol=0, atol=1e-6)


def test_predict_writing_probabilities_gives_the_labels_and_streams_the_file(hippo_predictor_notta, predictions_dir,
                                                                              tmp_path):
    image = _case(predictions_dir, (1.0, 1.0, 1.0), ("P", "I", "R"))  # turned, at the model's spacing
    labels = hippo_predictor_notta.predict_writing_probabilities(image, tmp_path / "case.npz")
    expected_labels, expected = hippo_predictor_notta.predict_probabilities(image)
    assert np.array_equal(labels.array, expected_labels.array) and labels.same_grid(image)
    np.testing.assert_allclose(load_probabilities(tmp_path / "case.npz"), expected, rtol=0, atol=1e-6)
