"""1D interpolation kernels: exactness on simple signals, taps restricted to a window."""

import torch

from segkit.planning.interpolation import apply_taps, interpolation_matrix, resize_axis, taps, window_taps


def test_orders_on_a_ramp():
    ramp = torch.arange(8.0).view(1, 8)
    up = resize_axis(ramp, 1, 16, order=1)
    assert torch.allclose(up[0, 1:-1], torch.arange(1, 15) / 2 - 0.25)  # interior of a ramp stays a ramp
    cubic = resize_axis(ramp, 1, 16, order=3)
    assert torch.allclose(cubic[0, 3:-3], up[0, 3:-3], atol=1e-5)  # Keys' cubic reproduces linear functions
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
