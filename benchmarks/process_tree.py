"""Peak memory of a process and all its descendants, sampled from /proc (Linux), for the benchmarks."""

from __future__ import annotations

import os
import threading
import time


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


def rss_pss_kb(pid: int) -> tuple[int, int]:
    """Resident and proportional set size of one process in kB (0, 0 once it is gone)."""
    rss = pss = 0
    try:
        with open(f"/proc/{pid}/smaps_rollup") as handle:
            for line in handle:
                if line.startswith("Rss:"):
                    rss = int(line.split()[1])
                elif line.startswith("Pss:"):
                    pss = int(line.split()[1])
    except OSError:
        pass
    return rss, pss


class TreeMemory(threading.Thread):
    """Samples the RSS and PSS sums over a process tree until ``stop`` is set; keeps the peaks (kB)."""

    def __init__(self, pid: int, interval: float = 0.02) -> None:
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.peak_rss_kb = self.peak_pss_kb = 0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            sums = [rss_pss_kb(pid) for pid in tree_pids(self.pid)]
            self.peak_rss_kb = max(self.peak_rss_kb, sum(s[0] for s in sums))
            self.peak_pss_kb = max(self.peak_pss_kb, sum(s[1] for s in sums))
            time.sleep(self.interval)
