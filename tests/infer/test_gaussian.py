import numpy as np

from segkit.infer.gaussian import gaussian_importance_map


def test_gaussian_shape_peak_and_positive():
    w = gaussian_importance_map((40, 56, 40))
    assert w.shape == (40, 56, 40) and w.dtype == np.float32
    assert w.max() == 1.0 and w[20, 28, 20] == 1.0
    assert w.min() > 0
    assert not w.flags.writeable


def test_gaussian_sigma_is_an_eighth_of_the_tile():
    w = gaussian_importance_map((64, 64, 64))
    line = w[:, 32, 32].astype(np.float64)
    # one sigma (8 voxels) from the centre the profile has fallen to exp(-1/2)
    assert abs(line[32 + 8] / line[32] - np.exp(-0.5)) < 1e-3
    # separable: the map is the outer product of its profiles
    outer = np.einsum("i,j,k->ijk", line, w[32, :, 32], w[32, 32, :])
    np.testing.assert_allclose(w, outer, rtol=1e-4, atol=1e-7)


def test_gaussian_equals_filtering_the_whole_tile():
    """The per-axis outer product is the N-d Gaussian filter of an impulse, bit for bit (nnU-Net's construction)."""
    from scipy.ndimage import gaussian_filter

    for tile in [(40, 56, 40), (33, 17, 24), (96, 160)]:
        delta = np.zeros(tile)
        delta[tuple(s // 2 for s in tile)] = 1.0
        full = gaussian_filter(delta, [s / 8 for s in tile], order=0, mode="constant", cval=0.0)
        full = (full / full.max()).astype(np.float32)
        full[full == 0] = full[full > 0].min()
        np.testing.assert_array_equal(gaussian_importance_map(tile), full)
