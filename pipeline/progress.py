"""Live progress: the driver adds up the counts of each unit as its manifest commits.

A committed manifest already holds a shard's per-stage counts, so the driver reads them
there instead of keeping an actor that workers call per batch (an actor is a worker
process of its own, ~70 MiB, on every run). Counts therefore move a shard at a time.

On a terminal a `rich` table refreshes in place; otherwise (CI, logs, the control plane) a
plain line per stage is printed every `interval` seconds.
"""

from __future__ import annotations

import os
import sys
import time

READ_STAGE = "read"


def stage_label(entry: dict) -> str:
    """A manifest's stage entry as the display names it: `read`, or `N. name` by step."""
    return READ_STAGE if entry["step"] < 0 else f"{entry['step'] + 1}. {entry['stage']}"


class ProgressDisplay:
    def __init__(self, enabled: bool = True, stream=sys.stderr):
        self.enabled, self.stream = enabled, stream
        self.interval = float(os.environ.get("PIPELINE_PROGRESS_INTERVAL", "10"))
        self.tty = enabled and stream.isatty()
        self.started = time.monotonic()
        self._last_print = 0.0
        self._live = None
        self.phase = ""
        self.done, self.total = 0, 0
        self.counts: dict[str, list[int]] = {}  # stage label -> [docs in, docs kept]

    def add(self, stages: tuple[dict, ...]) -> None:
        """Adds a committed unit's counts: the manifest entries of its segment's own steps,
        as the worker reports them (`ShardResult.stages`)."""
        for entry in stages:
            counts = self.counts.setdefault(stage_label(entry), [0, 0])
            counts[0] += entry["in"]
            counts[1] += entry["kept"]

    def set_phase(self, phase: str, done: int, total: int) -> None:
        self.phase, self.done, self.total = phase, done, total

    def refresh(self, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if not self.tty and not force and now - self._last_print < self.interval:
            return
        rows = [(stage, *counts) for stage, counts in self.counts.items()]
        elapsed = max(now - self.started, 1e-6)
        eta = self._eta(elapsed)
        if self.tty:
            self._render_live(rows, elapsed, eta)
        else:
            self._last_print = now
            print(f"[progress] {self.phase}: shards {self.done}/{self.total}, "
                  f"{elapsed:.0f}s elapsed, ETA {eta}", file=self.stream, flush=True)
            for stage, docs_in, kept in rows:
                print(f"[progress]   {stage}: in={docs_in} out={kept} "
                      f"docs/s={docs_in / elapsed:.0f}", file=self.stream, flush=True)

    def _eta(self, elapsed: float) -> str:
        if not self.done or not self.total:
            return "?"
        return f"{elapsed * (self.total - self.done) / self.done:.0f}s"

    def _render_live(self, rows, elapsed, eta) -> None:
        from rich.live import Live
        from rich.table import Table

        table = Table(title=f"{self.phase}: shards {self.done}/{self.total}  ETA {eta}")
        for column in ("stage", "docs in", "docs out", "docs/s"):
            table.add_column(column, justify="right" if column != "stage" else "left")
        for stage, docs_in, kept in rows:
            table.add_row(stage, f"{docs_in:,}", f"{kept:,}", f"{docs_in / elapsed:,.0f}")
        if self._live is None:
            self._live = Live(table, refresh_per_second=2, transient=False)
            self._live.start()
        else:
            self._live.update(table)

    def close(self) -> None:
        self.refresh(force=True)
        if self._live is not None:
            self._live.stop()
