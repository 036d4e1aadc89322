"""Planning one configuration: initial patch, shrinking to the budget, batch size limits."""

from segkit.planning.configuration_planner import Budget, initial_patch_size, plan_network
from segkit.planning.presets import get_preset


def test_initial_patch_follows_spacing_and_median():
    assert initial_patch_size((1.0, 1.0, 1.0), (35, 50, 36)) == (35, 50, 36)
    patch = initial_patch_size((0.5, 0.5, 2.0), (1000, 1000, 1000))
    assert patch[0] == patch[1] and abs(patch[0] / patch[2] - 4) < 0.02
    assert abs(patch[0] * patch[1] * patch[2] / 256**3 - 1) < 0.01


def test_budget_shrinks_patch_and_fills_batch():
    preset, _ = get_preset("default")
    small = plan_network((1.0, 1.0, 1.0), (400, 400, 400), budget=Budget(preset, 8, 1, 3), dataset_voxels=1e12)
    large = plan_network((1.0, 1.0, 1.0), (400, 400, 400), budget=Budget(preset, 80, 1, 3), dataset_voxels=1e12)
    assert small.patch_size == (128, 128, 128) and small.batch_size == 2
    assert large.patch_size == (256, 256, 256)  # ten times the memory: the whole initial patch fits
    assert large.estimate * large.batch_size > small.estimate * small.batch_size
    tiny = plan_network((1.0, 1.0, 1.0), (40, 40, 40), budget=Budget(preset, 8, 1, 3), dataset_voxels=64000)
    assert tiny.batch_size == 2  # 5% of the dataset is less than one patch: the minimum batch size applies
