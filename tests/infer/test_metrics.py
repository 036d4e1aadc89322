import math

import numpy as np

from segkit.infer.metrics import case_metrics, class_metrics, surface


def _boxes():
    pred = np.zeros((6, 6, 6), bool)
    ref = np.zeros((6, 6, 6), bool)
    pred[1:3, 1:3, 1:3] = True  # 8 voxels
    ref[1:3, 1:3, 1:4] = True  # 12 voxels, holds pred
    return pred, ref


def test_overlap_metrics_by_hand():
    pred, ref = _boxes()
    m = class_metrics(pred, ref, (1, 1, 1))
    assert m.dice == 2 * 8 / 20
    assert m.iou == 8 / 12
    assert (m.n_pred, m.n_ref) == (8, 12)


def test_surface_metrics_by_hand_and_spacing_aware():
    pred, ref = _boxes()
    # every voxel of these thin boxes is on the surface; the 4 ref voxels of the k=3 layer are one voxel away
    m = class_metrics(pred, ref, (1, 1, 1), tolerance_mm=1.0)
    assert m.hd95 == 1.0 and m.nsd == 1.0
    m = class_metrics(pred, ref, (1, 1, 2.5), tolerance_mm=1.0)
    assert m.hd95 == 2.5
    assert m.nsd == (8 + 8) / 20  # the 4 voxels 2.5 mm away are outside the tolerance
    m = class_metrics(pred, ref, (1, 1, 2.5), tolerance_mm=2.5)
    assert m.nsd == 1.0


def test_hd95_of_a_shifted_large_cube():
    a = np.zeros((30, 30, 30), bool)
    a[5:25, 5:25, 5:25] = True
    b = np.roll(a, 3, axis=0)
    m = class_metrics(a, b, (2.0, 1.0, 1.0))
    assert m.hd95 == 6.0  # 3 voxels of 2 mm along the shifted axis
    assert math.isclose(m.dice, 17 / 20)


def test_surface_of_a_solid_cube_is_its_shell():
    a = np.zeros((7, 7, 7), bool)
    a[1:6, 1:6, 1:6] = True
    assert surface(a).sum() == 5 ** 3 - 3 ** 3


def test_empty_classes():
    empty = np.zeros((4, 4, 4), bool)
    full = empty.copy()
    full[1, 1, 1] = True
    both = class_metrics(empty, empty, (1, 1, 1))
    assert all(math.isnan(v) for v in (both.dice, both.iou, both.nsd, both.hd95))
    one = class_metrics(full, empty, (1, 1, 1))
    assert (one.dice, one.iou, one.nsd, one.hd95) == (0.0, 0.0, 0.0, math.inf)
    assert one.to_dict()["HD95"] is None


def test_ignore_label_is_masked_out():
    ref = np.zeros((6, 6, 6), np.uint8)
    pred = np.zeros((6, 6, 6), np.uint8)
    ref[1:3, 1:3, 1:3] = 1
    pred[1:3, 1:3, 1:3] = 1
    ref[4:6] = 255
    pred[4:6] = 1  # predicted foreground where the reference says "ignore"
    scores = case_metrics(pred, ref, (1, 1, 1), labels=[1], ignore_label=255)
    assert scores[1].dice == 1.0
    assert case_metrics(pred, ref, (1, 1, 1), labels=[1])[1].dice < 1.0
