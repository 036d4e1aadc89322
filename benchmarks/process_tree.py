"""Running a benchmarked command: wall and CPU time, peak memory of its whole process tree (Linux /proc)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path


def tree_pids(root: int) -> list[int]:
    """``root`` and every live descendant of it."""
    pids, queue = [], [root]
    while queue:
        pid = queue.pop()
        pids.append(pid)
        try:
            for task in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{task}/children") as handle:
                    queue.extend(int(c) for c in handle.read().split())
        except OSError:
            continue
    return pids


PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024


def rss_kb(pid: int) -> int:
    """Resident set size of one process in kB from its counters (cheap; 0 once it is gone)."""
    try:
        with open(f"/proc/{pid}/statm") as handle:
            return int(handle.read().split()[1]) * PAGE_KB
    except (OSError, IndexError, ValueError):
        return 0


def pss_kb(pid: int) -> int:
    """Proportional set size of one process in kB (shared pages split between sharers; 0 once it is gone)."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as handle:
            for line in handle:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class TreeMemory(threading.Thread):
    """Samples the RSS and PSS sums over a process tree until ``stop`` is set; keeps the peaks (kB).

    RSS comes from each process's counters every ``interval``. PSS needs ``smaps_rollup``, whose page-table
    walk takes milliseconds for a process of gigabytes, so it is read only after a pause of at least
    ``overhead`` times its last cost: the sampler stays a small fraction of one core instead of competing
    with the measured tools on a 2-core machine.
    """

    def __init__(self, pid: int, interval: float = 0.02, overhead: float = 20.0) -> None:
        super().__init__(daemon=True)
        self.pid, self.interval, self.overhead = pid, interval, overhead
        self.peak_rss_kb = self.peak_pss_kb = 0
        self.stop = threading.Event()

    def run(self) -> None:
        next_pss = 0.0
        while not self.stop.is_set():
            pids = tree_pids(self.pid)
            self.peak_rss_kb = max(self.peak_rss_kb, sum(rss_kb(pid) for pid in pids))
            if time.perf_counter() >= next_pss:
                start = time.perf_counter()
                self.peak_pss_kb = max(self.peak_pss_kb, sum(pss_kb(pid) for pid in pids))
                end = time.perf_counter()
                next_pss = end + self.overhead * (end - start)
            self.stop.wait(self.interval)


def run_measured(command: list[str], env: dict[str, str] | None = None, log: Path | None = None) -> dict:
    """Run ``command`` to the end with its output in ``log`` (or a temp file); return what it cost.

    Keys: ``returncode``, ``wall_s``, ``cpu_s`` (user + sys of the process and its reaped descendants),
    ``rss_mb`` / ``pss_mb`` (peak sums over the process tree, sampled as `TreeMemory` says; the RSS never below the
    kernel's exact per-process peak), ``max_single_rss_mb``, ``load_before`` / ``load_after`` and ``output_tail``.
    """
    load_before = os.getloadavg()[0]
    with open(log, "w+b") if log else tempfile.TemporaryFile() as out:
        start = time.perf_counter()
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
        monitor = TreeMemory(process.pid)
        monitor.start()
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - start
        monitor.stop.set()
        monitor.join()
        out.seek(0)
        tail = out.read().decode(errors="replace")[-3000:]
    return {
        "returncode": os.waitstatus_to_exitcode(status), "wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime,
        "rss_mb": max(monitor.peak_rss_kb, usage.ru_maxrss) / 1024, "pss_mb": monitor.peak_pss_kb / 1024,
        "max_single_rss_mb": usage.ru_maxrss / 1024, "load_before": load_before, "load_after": os.getloadavg()[0],
        "output_tail": tail,
    }


def run_measured_or_exit(command: list[str], env: dict[str, str] | None = None, log: Path | None = None) -> dict:
    """`run_measured`, exiting the benchmark with the output's tail if the command fails."""
    result = run_measured(command, env, log)
    if result["returncode"] != 0:
        sys.exit(f"{command[0]} failed ({result['returncode']}):\n{result['output_tail']}")
    return result
