"""Target spacing (median with nnU-Net's anisotropy rule) and resampled shapes."""

import numpy as np
import pytest

from segkit.planning.spacing import compute_new_shape, target_spacing


def test_anisotropy_rule_takes_tenth_percentile():
    spacings = [(1.0, 1.0, z) for z in (3.5, 4.0, 5.0, 5.0, 5.0, 5.0, 6.0, 6.0, 6.0, 6.0)]
    shapes = [(300, 300, 40)] * 10
    assert target_spacing(spacings, shapes) == pytest.approx((1.0, 1.0, np.percentile([s[2] for s in spacings], 10)))
    assert target_spacing(spacings, [(100, 100, 40)] * 10)[2] == 5.0  # not thin along z: median kept


def test_isotropic_median_and_new_shape():
    spacings = [(1.0, 1.0, 1.0), (0.8, 0.9, 1.2), (1.2, 1.1, 1.0)]
    assert target_spacing(spacings, [(100, 100, 100)] * 3) == (1.0, 1.0, 1.0)
    assert compute_new_shape((35, 50, 36), (1.0, 1.0, 1.0), (0.5, 2.0, 1.0)) == (70, 25, 36)
    assert compute_new_shape((10, 10, 10), (1.0, 1.0, 1.0), (3.0, 3.0, 3.0)) == (3, 3, 3)


def test_coarse_axis_never_finer_than_the_others():
    spacings = [(2.0, 2.0, z) for z in (1.0, 1.0, 7.0, 7.0, 7.0, 7.0, 7.0, 7.0, 7.0, 7.0)]
    target = target_spacing(spacings, [(300, 300, 20)] * 10)
    assert target[2] == pytest.approx(2.0 + 1e-5)
