"""The Image contract: validation, derived geometry, exact reorientation."""

import numpy as np
import pytest

from segkit.io import Image, ImageGeometryError


def oblique_affine() -> np.ndarray:
    angle = np.deg2rad(10)
    rotation = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
    affine = np.eye(4)
    affine[:3, :3] = rotation @ np.diag([0.8, 1.2, 3.0])
    affine[:3, 3] = [-10.0, 20.0, 5.0]
    return affine


def test_geometry_properties_follow_the_affine():
    image = Image(np.zeros((4, 5, 6), np.float32), oblique_affine())
    assert image.spatial_shape == (4, 5, 6)
    assert image.spacing == pytest.approx((0.8, 1.2, 3.0))
    assert image.origin == pytest.approx((-10.0, 20.0, 5.0))
    np.testing.assert_allclose(np.linalg.norm(image.direction, axis=0), 1.0)
    assert image.num_channels == 1


@pytest.mark.parametrize("diagonal", [[0.0, 1, 1, 1], [1, 1, 0.0, 1]])
def test_zero_spacing_is_rejected(diagonal):
    with pytest.raises(ImageGeometryError, match="spacing must be positive"):
        Image(np.zeros((2, 2, 2)), np.diag(diagonal))


def test_wrong_dimensions_are_rejected():
    with pytest.raises(ImageGeometryError, match="got 2 dimensions"):
        Image(np.zeros((3, 3)), np.eye(4))


def test_reorient_round_trip_is_exact_for_multichannel_images():
    rng = np.random.default_rng(0)
    image = Image(rng.normal(size=(2, 4, 5, 6)), oblique_affine())
    lps = image.reorient("LPI")
    assert lps.axis_codes == ("L", "P", "I")
    assert lps.num_channels == 2
    back = lps.reorient(image.axis_codes)
    np.testing.assert_array_equal(back.array, image.array)
    np.testing.assert_allclose(back.affine, image.affine, atol=1e-9)


def test_reorient_keeps_every_voxel_at_its_world_position():
    rng = np.random.default_rng(1)
    image = Image(rng.normal(size=(4, 5, 6)), oblique_affine())
    flipped = image.reorient("PIL")
    index = np.array([1, 2, 3, 1.0])
    world = image.affine @ index
    new_index = np.round(np.linalg.solve(flipped.affine, world)[:3]).astype(int)
    assert flipped.array[tuple(new_index)] == image.array[1, 2, 3]


def test_with_array_requires_the_same_grid():
    image = Image(np.zeros((4, 5, 6)), np.eye(4))
    assert image.with_array(np.ones((3, 4, 5, 6))).num_channels == 3
    with pytest.raises(ImageGeometryError, match="expected \\(4, 5, 6\\)"):
        image.with_array(np.zeros((4, 5, 7)))


def test_crop_keeps_every_voxel_at_its_world_position():
    rng = np.random.default_rng(2)
    image = Image(rng.normal(size=(2, 6, 7, 8)), oblique_affine())
    crop = image.crop((slice(1, 4), slice(2, 7), slice(0, 5)))
    assert crop.spatial_shape == (3, 5, 5) and crop.num_channels == 2
    np.testing.assert_allclose(crop.affine @ [0, 0, 0, 1], image.affine @ [1, 2, 0, 1])
    np.testing.assert_array_equal(crop.array[:, 0, 0, 0], image.array[:, 1, 2, 0])
    with pytest.raises(ImageGeometryError, match="non-empty"):
        image.crop((slice(3, 3), slice(None), slice(None)))
