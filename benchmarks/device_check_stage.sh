#!/usr/bin/env bash
# Prepare a lent GPU machine's run of benchmarks/device_check.sh, here: wheels of what its image lacks (for its
# Python 3.12) in .device/wheels, and .device/data linked to the shared data, whose files then travel through the
# device call's `carry` (about 62 MB with the tree, under the 64 MiB limit). Prints that call.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .device/wheels
ln -sfn "$(realpath "${SEGKIT_TEST_DATA:-../shared/data}")" .device/data
.venv/bin/pip download -q --no-deps --only-binary=:all: --python-version 3.12 --platform manylinux_2_28_x86_64 \
  --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .device/wheels \
  nibabel importlib-resources platformdirs blosc2 ndindex h2 hpack hyperframe pydantic pydantic-core \
  annotated-types typing-inspection hatchling editables tomlkit trove-classifiers
cat <<'CALL'
device run: command "bash benchmarks/device_check.sh", timeout_s 540, carry:
  .device/wheels
  .device/data/nnunet_reference/Dataset004_Hippocampus/nnUNetTrainer_refShort__nnUNetPlans__3d_fullres
  .device/data/nnunet_reference/predictions/inputs
  .device/data/nnunet_reference/predictions/hippocampus_tta
  .device/data/Dataset004_Hippocampus
CALL
