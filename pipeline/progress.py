"""Live progress: workers add counts per batch to a small actor; the driver shows them.

On a terminal a `rich` table refreshes in place; otherwise (CI, logs, the control plane) a
plain line per stage is printed every `interval` seconds.
"""

from __future__ import annotations

import os
import sys
import time

import ray


@ray.remote(num_cpus=0)
class ProgressActor:
    def __init__(self):
        self.counts: dict[str, list[int]] = {}  # stage -> [docs_in, docs_kept]
        self.order: list[str] = []

    def add(self, stage: str, docs_in: int, docs_kept: int) -> None:
        if stage not in self.counts:
            self.counts[stage] = [0, 0]
            self.order.append(stage)
        self.counts[stage][0] += docs_in
        self.counts[stage][1] += docs_kept

    def snapshot(self) -> list[tuple[str, int, int]]:
        return [(s, *self.counts[s]) for s in self.order]


class ProgressDisplay:
    def __init__(self, actor, enabled: bool = True, stream=sys.stderr):
        self.actor, self.enabled, self.stream = actor, enabled, stream
        self.interval = float(os.environ.get("PIPELINE_PROGRESS_INTERVAL", "10"))
        self.tty = enabled and stream.isatty()
        self.started = time.monotonic()
        self._last_print = 0.0
        self._live = None
        self.phase = ""
        self.done, self.total = 0, 0

    def set_phase(self, phase: str, done: int, total: int) -> None:
        self.phase, self.done, self.total = phase, done, total

    def refresh(self, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if not self.tty and not force and now - self._last_print < self.interval:
            return
        rows = ray.get(self.actor.snapshot.remote())
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
