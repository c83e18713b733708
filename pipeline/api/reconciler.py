"""Keeps the store in step with Ray: a background loop over the active jobs.

The first round after the service starts is what makes a restart safe: every job the store
still calls PENDING, RUNNING or CANCELLING is looked up on Ray by its submission id. A job
still running is followed on; one that finished while the service was down gets its final
state, time and logs; one Ray has never heard of (a new cluster) is marked FAILED with a
message saying how to resume it.
"""

from __future__ import annotations

import asyncio
import logging
import time

from pipeline.api.jobs import JobService

log = logging.getLogger("pipeline.api")


class Reconciler:
    def __init__(self, service: JobService, interval: float = 1.0):
        self.service = service
        self.interval = interval
        self.rounds = 0
        self._task: asyncio.Task | None = None

    def round(self) -> None:
        """One pass over the active jobs (blocking: Ray calls and file reads)."""
        first = self.rounds == 0
        self.service.ray_reachable = self.service.launcher.ping()
        for job in self.service.store.active():
            try:
                self.service.sync(job, after_restart=first)
            except Exception:  # one bad job must not stop the others being followed
                log.exception("could not reconcile job %s", job.id)
        self.rounds += 1

    async def run(self) -> None:
        while True:
            started = time.monotonic()
            try:
                await asyncio.to_thread(self.round)
            except Exception:
                log.exception("reconciliation round failed")
            # A round over many big jobs may take a while; never poll Ray back to back.
            spent = time.monotonic() - started
            await asyncio.sleep(max(self.interval, 2 * spent))

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self.run(), name="reconciler")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
