"""The whole tree passes ruff with the rules in pyproject.toml (style, imports, likely bugs)."""

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_code_passes_ruff():
    command = [sys.executable, "-m", "ruff", "check", "--no-cache", "packages", "apps", "tests", "benchmarks"]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:]
