"""Analytic activation counts against dynamic-network-architectures' own counts.

The reference numbers are ``compute_conv_feature_map_size`` of the networks nnU-Net builds
for these specs (dynamic_network_architectures with nnunetv2 2.8.1), computed once outside
the test suite.
"""

from __future__ import annotations

import dataclasses

from segkit.planning.architecture import ArchitectureSpec, Block
from segkit.planning.memory import feature_map_size

HIPPOCAMPUS = ArchitectureSpec.plain_unet(
    features_per_stage=(32, 64, 128, 256), kernel_sizes=((3, 3, 3),) * 4, strides=((1, 1, 1),) + ((2, 2, 2),) * 3
)


def test_plain_unet_matches_nnunet_count():
    assert feature_map_size(HIPPOCAMPUS, (40, 56, 40), num_classes=3) == 19_174_400


def test_residual_encoder_matches_nnunet_count():
    spec = dataclasses.replace(
        HIPPOCAMPUS, block=Block.RESIDUAL, blocks_per_stage=(1, 3, 4, 6), blocks_per_stage_decoder=(1, 1, 1)
    )
    assert feature_map_size(spec, (40, 56, 40), num_classes=3) == 23_609_600


def test_anisotropic_strides_match_nnunet_count():
    spec = ArchitectureSpec.plain_unet(
        features_per_stage=(32, 64, 128, 256, 320),
        kernel_sizes=((3, 3, 3),) * 5,
        strides=((1, 1, 1), (2, 2, 2), (2, 2, 2), (2, 2, 1), (2, 1, 1)),
    )
    assert feature_map_size(spec, (48, 40, 24), num_classes=4) == 10_149_120


def test_deep_supervision_adds_heads():
    plain = feature_map_size(HIPPOCAMPUS, (40, 56, 40), num_classes=3)
    deep = feature_map_size(HIPPOCAMPUS, (40, 56, 40), num_classes=3, deep_supervision=True)
    assert deep - plain == 3 * (20 * 28 * 20 + 10 * 14 * 10)


def test_equals_segkit_nets_count_for_planned_specs(hippocampus, hippocampus_fingerprint):
    # planning never imports nets; this test checks the analytic sums against the real networks
    from segkit.nets.counting import feature_map_size as nets_feature_map_size
    from segkit.nets.spec import ArchitectureSpec as NetsSpec
    from segkit.planning.planner import PlanOptions, plan_dataset

    checked = 0
    for preset in ("default", "resenc_m"):
        plans = plan_dataset(hippocampus_fingerprint, hippocampus.info, PlanOptions(preset=preset))
        for name in plans.configuration_names:
            config = plans.configuration(name)
            for deep_supervision in (True, False):
                spec = dataclasses.replace(config.architecture, deep_supervision=deep_supervision)
                theirs = nets_feature_map_size(NetsSpec.from_dict(spec.to_dict()), config.patch_size, num_classes=3)
                ours = feature_map_size(spec, config.patch_size, num_classes=3, deep_supervision=deep_supervision)
                assert ours == theirs, (preset, name, deep_supervision)
                checked += 1
    anisotropic = ArchitectureSpec.plain_unet(
        features_per_stage=(32, 64, 128, 256, 320),
        kernel_sizes=((3, 3, 1),) * 2 + ((3, 3, 3),) * 3,
        strides=((1, 1, 1), (2, 2, 1), (2, 2, 2), (2, 2, 2), (2, 2, 1)),
    )
    theirs = nets_feature_map_size(NetsSpec.from_dict(anisotropic.to_dict()), (160, 192, 48), num_classes=5)
    assert feature_map_size(anisotropic, (160, 192, 48), num_classes=5, deep_supervision=True) == theirs
    assert checked == 8
