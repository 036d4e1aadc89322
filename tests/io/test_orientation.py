"""All 48 axis orientations of one brain volume read back to the same canonical voxels."""

import numpy as np
import pytest

from segkit.io import read_image


@pytest.fixture(scope="module")
def orientation_files(data_dir):
    files = sorted((data_dir / "misc" / "orientations").glob("*.nii.gz"))
    assert len(files) == 48
    return files


def test_every_orientation_gives_identical_canonical_voxels(orientation_files):
    reference = read_image(orientation_files[0]).to_canonical()
    assert reference.axis_codes == ("R", "A", "S")
    for path in orientation_files[1:]:
        canonical = read_image(path).to_canonical()
        assert canonical.axis_codes == ("R", "A", "S"), path.name
        np.testing.assert_array_equal(canonical.array, reference.array, err_msg=path.name)
        np.testing.assert_allclose(canonical.affine, reference.affine, atol=1e-4, err_msg=path.name)


def test_canonical_is_undone_exactly(orientation_files):
    for path in orientation_files:
        original = read_image(path)
        assert "".join(original.axis_codes) == path.name.split(".")[0]
        back = original.to_canonical().reorient(original.axis_codes)
        np.testing.assert_array_equal(back.array, original.array, err_msg=path.name)
        np.testing.assert_allclose(back.affine, original.affine, atol=1e-5, err_msg=path.name)
