"""How many CPUs this process may use: its affinity mask where the platform has one (Linux), else the CPU count."""

from __future__ import annotations

import os


def available_cpus() -> int:
    """Number of CPUs this process may use (at least 1)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
