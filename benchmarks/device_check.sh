#!/usr/bin/env bash
# On a lent GPU machine (Python 3.12 with CUDA torch, no network): install this tree beside the image's torch,
# offline, from the wheels benchmarks/device_check_stage.sh put in .device/wheels, then run
# benchmarks/device_check.py on CUDA. Its report goes to $OUT/device_check.json (the device tool fetches $OUT).
# Usage there: bash benchmarks/device_check.sh [--only reference large segtool train]
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-/tmp/device_check}"
venv=/tmp/segkit-device
python3 -m venv --system-site-packages "$venv"  # the image's torch, numpy, scipy, typer, rich...
"$venv/bin/pip" install -q --no-index --find-links .device/wheels nibabel platformdirs blosc2 hatchling editables
"$venv/bin/pip" install -q --no-index --no-build-isolation --no-deps \
  -e packages/io -e packages/nets -e packages/planning -e packages/train -e packages/infer -e apps/segtool
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
"$venv/bin/python" -u benchmarks/device_check.py --data .device/data --out "$OUT" "$@"
