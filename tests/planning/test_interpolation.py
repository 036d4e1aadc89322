"""1D interpolation kernels: exactness on simple signals, taps restricted to a window."""

import numpy as np
import torch
from scipy import ndimage

from segkit.planning.interpolation import (
    NEGLIGIBLE_WEIGHT,
    apply_taps,
    interpolation_matrix,
    resize_axis,
    taps,
    window_taps,
)


def test_orders_on_a_ramp():
    ramp = torch.arange(8.0).view(1, 8)
    up = resize_axis(ramp, 1, 16, order=1)
    assert torch.allclose(up[0, 1:-1], torch.arange(1, 15) / 2 - 0.25)  # interior of a ramp stays a ramp
    long_ramp = torch.arange(40.0).view(1, 40)
    cubic = resize_axis(long_ramp, 1, 80, order=3)
    expected = torch.arange(80) / 2 - 0.25
    assert torch.allclose(cubic[0, 20:-20], expected[20:-20], atol=1e-4)  # the B-spline reproduces a ramp inside
    assert not torch.allclose(cubic[0, :2], expected[:2], atol=1e-2)  # edges repeat the end sample (scipy "nearest")
    assert resize_axis(ramp, 1, 4, order=0).tolist() == [[1.0, 3.0, 5.0, 7.0]]


def test_window_taps_match_full_resize():
    signal = torch.zeros(1, 20)
    signal[0, 7:11] = 1.0
    full = resize_axis(signal, 1, 33, order=1)
    rows, restricted = window_taps(taps(20, 33, 1, torch.device("cpu")), 7, 11)
    window = apply_taps(signal[:, 7:11], 1, restricted)
    assert torch.allclose(full[:, rows], window)
    assert full[:, : rows.start].abs().sum() == 0 and full[:, rows.stop :].abs().sum() == 0


def test_matrix_rows_sum_to_one():
    for order in (0, 1, 3):
        assert torch.allclose(interpolation_matrix(7, 19, order=order).sum(1), torch.ones(19))


def test_cubic_matrix_drops_only_negligible_weights():
    # a long axis (a CT's 244 -> 122) reaches weights that float32 holds only as slow denormal numbers
    matrix = interpolation_matrix(244, 122, order=3)
    assert matrix[matrix != 0].abs().min() >= NEGLIGIBLE_WEIGHT and (matrix == 0).float().mean() > 0.3
    signal = np.random.default_rng(3).normal(size=(3, 244, 5))
    exact = ndimage.zoom(signal, (1, 0.5, 1), order=3, mode="nearest", grid_mode=True)
    ours = resize_axis(torch.from_numpy(signal).float(), 1, 122, order=3).numpy()
    assert np.abs(ours - exact).max() < 1e-5
