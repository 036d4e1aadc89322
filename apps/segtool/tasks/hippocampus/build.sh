#!/usr/bin/env bash
# Rebuild segtool's task "hippocampus" from the raw MSD data, on CPU:
# plan, add the 16-feature configuration, train fold "all" (shipped) and the 5 cross-validation folds
# on the same schedule (100 x 50 iterations: 45-130 min each on 2 cores of a CPU where bf16 pays, AMX or a Zen 5
# EPYC, depending on the host; about 10 h in fp32 on a 2-core AVX2 CPU), then write the float16 model
# zip and print its sha256 and size for weights_registry.json.
# trainer_final.json is nnU-Net's default trainer on that schedule, mirrored along the left-right axis only: the
# crops share one orientation, and the head lies in front of and below the tail in every case (RESULTS.md).
# At test time the registry entry adds translation TTA (shift_tta 6: 6 zero voxels padded before, then after the
# image, along each axis in turn; segkit-predict --shift-tta).
# Usage: apps/segtool/tasks/hippocampus/build.sh [WORK_DIR]   (after scripts/install.sh)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../../../.." && pwd)
data=${SEGKIT_TEST_DATA:-$repo/../shared/data}/Dataset004_Hippocampus
work=${1:-$repo/out/hippocampus_task}
bin=$repo/.venv/bin
name=segkit_hippocampus_v3

"$bin/segkit-plan" run "$data" -o "$work/pre" -c 3d_fullres --quiet
"$bin/python" - "$work/pre/plans.json" "$here/configuration.json" <<'PY'
import json, sys
plans, extra = (json.load(open(p)) for p in sys.argv[1:])
plans["configurations"].update(extra)
json.dump(plans, open(sys.argv[1], "w"), indent=2)
PY
"$bin/segkit-train" "$work/pre" 3d_fullres_16 all -o "$work/$name" -tr "$here/trainer_final.json" --device cpu
for fold in 0 1 2 3 4; do
  "$bin/segkit-train" "$work/pre" 3d_fullres_16 "$fold" -o "$work/cv" -tr "$here/trainer_final.json" --device cpu
done
# per-fold Dice on the raw images, with the test-time augmentation of the task's registry entry
"$bin/segkit-crossval" -m "$work/cv" -d "$data" -o "$work/cv/crossval" --shift-tta 6
"$bin/segkit-export" "$work/$name" "$here/$name.zip" --half
sha256sum "$here/$name.zip"
stat -c 'size %s bytes' "$here/$name.zip"
