#!/usr/bin/env bash
# Install every segkit distribution and segtool (editable) into .venv, torch first.
# Usage: bash scripts/install.sh        (PYTHON=python3.11 to choose the interpreter)
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
# torch first and pinned: an unpinned torch pulls a multi-GB CUDA build.
.venv/bin/python -m pip install -q "torch==2.13.0"
.venv/bin/python -m pip install -q \
  -e packages/io -e packages/nets -e packages/planning \
  -e packages/train -e packages/infer -e "apps/segtool[dicom]" \
  -r requirements-dev.txt
# pip byte-compiles regular installs but not editable ones; where PYTHONDONTWRITEBYTECODE is set, every run would
# compile segkit's sources again (about 0.15 s per command)
.venv/bin/python -m compileall -q packages apps
