"""Memory and CPU of a set of processes, sampled on a background thread while a block runs.

The benchmarks measure jobs whose work happens in other processes (Ray's raylet and workers,
a subprocess under test). Those processes come and go, and one that exits takes its counters
with it, so they are sampled: every `interval_s`, once at the start and once at the end.

    with ProcessSampler(process_tree(), interval_s=0.1) as sampled:
        run_the_job()
    sampled.rss_peak, sampled.rss_single_peak, sampled.cpu_seconds
    sampled.pss_at_peak  # with pss_every: {process label: PSS} at the sample of the PSS peak

Which processes: `process_tree(root)` (a process and its descendants, found again at each
sample) or `ray_workers()` (every `ray::*` process on the machine).
"""

from __future__ import annotations

import threading
from typing import Callable

import psutil

Processes = Callable[[], list[psutil.Process]]


def process_tree(root: psutil.Process | None = None) -> Processes:
    """`root` (default: this process) and all its descendants; none once `root` is gone."""
    root = root or psutil.Process()

    def find() -> list[psutil.Process]:
        try:
            return [root, *root.children(recursive=True)]
        except psutil.Error:
            return []

    return find


def ray_workers() -> Processes:
    """Every Ray worker process on the machine (command line `ray::...`), whoever started it."""

    def find() -> list[psutil.Process]:
        return [p for p in psutil.process_iter(["cmdline"])
                if (p.info["cmdline"] or [""])[0].startswith("ray::")]

    return find


class ProcessSampler:
    """Peaks over the samples: `rss_peak` (the sum of RSS; shared pages count once per
    process), `rss_single_peak` (the largest process), `pss_peak` (the sum of PSS, shared pages
    split between processes, read every `pss_every`-th sample since smaps costs more; 0: never),
    and `cpu_seconds`: CPU the processes used while sampled, or, with `cpu_from_start`, over
    their whole lives (for a process started to be measured)."""

    def __init__(self, processes: Processes, interval_s: float, pss_every: int = 0,
                 cpu_from_start: bool = False):
        self.processes, self.interval_s, self.pss_every = processes, interval_s, pss_every
        self.cpu_from_start = cpu_from_start
        self.rss_peak = self.rss_single_peak = self.pss_peak = 0
        self.pss_at_peak: dict[str, int] = {}  # `label(process)` -> PSS, at the PSS peak
        self._cpu_first: dict[int, float] = {}  # per pid, at its first sample
        self._cpu_last: dict[int, float] = {}
        self._started_before: set[int] = set()  # pids alive at the start
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @property
    def cpu_seconds(self) -> float:
        if self.cpu_from_start:
            return sum(self._cpu_last.values())
        # a process alive at the start counts from there, a later one from its beginning
        return sum(last - (self._cpu_first[pid] if pid in self._started_before else 0.0)
                   for pid, last in self._cpu_last.items())

    def __enter__(self) -> "ProcessSampler":
        self._sample(pss=self.pss_every > 0)
        self._started_before = set(self._cpu_first)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self._sample(pss=False)

    def _run(self) -> None:
        n = 1
        while not self._stop.wait(self.interval_s):
            self._sample(pss=self.pss_every > 0 and n % self.pss_every == 0)
            n += 1

    def _sample(self, pss: bool) -> None:
        sizes, pss_sum, by_label = [], 0, {}
        for process in self.processes():
            try:
                with process.oneshot():
                    rss = process.memory_info().rss
                    times = process.cpu_times()
                    name = label(process) if pss else ""
            except psutil.Error:  # it exited meanwhile
                continue
            sizes.append(rss)
            cpu = times.user + times.system
            self._cpu_first.setdefault(process.pid, cpu)
            self._cpu_last[process.pid] = cpu
            if pss:
                size = _pss(process.pid)
                pss_sum += size
                by_label[name] = by_label.get(name, 0) + size
        self.rss_peak = max(self.rss_peak, sum(sizes))
        self.rss_single_peak = max(self.rss_single_peak, max(sizes, default=0))
        if pss_sum > self.pss_peak:
            self.pss_peak, self.pss_at_peak = pss_sum, by_label


def label(process: psutil.Process) -> str:
    """A short name for what a process is: a Ray worker's task or actor (`ray::_run_shard`,
    `ray::IDLE`), a Ray daemon by its program (`raylet`, `gcs_server`, `log_monitor.py`), or
    the script a Python process runs; the pid is added where several may share a name."""
    cmdline = process.cmdline() or [process.name()]
    if cmdline[0].startswith("ray::"):
        return f"{cmdline[0].split()[0]} [{process.pid}]"
    program = cmdline[0].rsplit("/", 1)[-1]
    if program.startswith("python"):
        if "-c" in cmdline:  # a multiprocessing child: its code, not a script
            return f"python -c [{process.pid}]"
        script = next((a for a in cmdline[1:] if not a.startswith("-")), "")
        if script:
            return f"{script.rsplit('/', 1)[-1]} [{process.pid}]"
    return f"{program} [{process.pid}]"


def _pss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as handle:
            for line in handle:
                if line.startswith(b"Pss:"):
                    return int(line.split()[1]) * 1024
    except OSError:  # it exited meanwhile
        pass
    return 0
