"""Pooling and kernel rules."""

from segkit.planning.topology import pad_to_multiple, plan_topology


def test_isotropic_hippocampus_topology():
    t = plan_topology((1.0, 1.0, 1.0), (35, 50, 36))
    assert t.strides == ((1, 1, 1), (2, 2, 2), (2, 2, 2), (2, 2, 2))
    assert t.kernel_sizes == ((3, 3, 3),) * 4 and t.patch_size == (40, 56, 40) and t.divisor == (8, 8, 8)


def test_coarse_axis_joins_later():
    t = plan_topology((0.78, 0.78, 6.5), (256, 256, 24))
    assert t.kernel_sizes[0] == (3, 3, 1)
    assert t.strides[1] == (2, 2, 1)
    # once the in-plane spacing is coarse enough, the slice axis pools and gets 3-wide kernels
    assert any(s[2] == 2 for s in t.strides) and t.kernel_sizes[-1] == (3, 3, 3)
    assert all(p % d == 0 for p, d in zip(t.patch_size, t.divisor, strict=True))


def test_short_axis_stops_pooling_at_min_edge():
    t = plan_topology((1.0, 1.0), (128, 12))
    assert t.pools_per_axis[1] == 0 or 12 / 2 ** t.pools_per_axis[1] >= 4
    assert t.patch_size[0] % t.divisor[0] == 0


def test_pad_to_multiple_keeps_exact_multiples():
    assert pad_to_multiple((32, 33, 1), (8, 8, 1)) == (32, 40, 1)
