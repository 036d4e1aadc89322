"""Worker pools: results, errors, and a dying worker reported instead of a hang."""

from __future__ import annotations

import os

import pytest

from segkit.planning.errors import PlanningError, WorkerError
from segkit.planning.parallel import map_cases


def _square(x: int) -> int:
    return x * x


def _die_on_three(x: int) -> int:
    if x == 3:
        os._exit(1)  # simulates the OOM killer
    return x


def _raise_on_two(x: int) -> int:
    if x == 2:
        raise PlanningError("case 2 is bad")
    return x


@pytest.mark.parametrize("workers", [1, 2])
def test_all_results_come_back(workers):
    results = dict(map_cases(_square, list(range(10)), workers=workers))
    assert results == {i: i * i for i in range(10)}


def test_dead_worker_is_reported_with_case_name():
    # every unfinished case fails with the dead worker, so the message names the suspects, case_3 among them
    with pytest.raises(WorkerError, match=r"died while processing (one of (case_\d, )*)?case_3\b"):
        list(map_cases(_die_on_three, list(range(6)), workers=2, names=[f"case_{i}" for i in range(6)]))


def test_worker_exception_propagates():
    with pytest.raises(PlanningError, match="case 2 is bad"):
        list(map_cases(_raise_on_two, list(range(5)), workers=2))
