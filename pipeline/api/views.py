"""A job's detail as the API answers it, rendered once per change of the job.

Dashboards poll `GET /jobs/{id}` every second or two, many at once. Every write to a job
bumps its `version` in the store, so a poll costs one indexed lookup of that number while
nothing changed, and the JSON is only rendered again when something did.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from pipeline.api import models
from pipeline.api.store import JobStore

KEPT = 4096


class JobViews:
    def __init__(self, store: JobStore):
        self.store = store
        self._cache: OrderedDict[str, tuple[int, bytes]] = OrderedDict()
        self._lock = threading.Lock()

    def detail(self, job_id: str) -> bytes | None:
        """The JobDetail JSON of a job, or None if there is no such job."""
        version = self.store.version(job_id)
        if version is None:
            self.forget(job_id)
            return None
        with self._lock:
            cached = self._cache.get(job_id)
            if cached and cached[0] == version:
                self._cache.move_to_end(job_id)
                return cached[1]
        job = self.store.get(job_id, with_progress=True)
        if job is None:
            return None
        spec = self.store.spec(job_id)
        rendered = models.JobDetail.model_validate(models.job_out(job) | {
            "progress": job.progress,
            "transitions": models.transitions_out(self.store.transitions(job_id)),
            "spec": spec.text if spec else "",
            "resolved_spec": spec.resolved if spec else ""}).model_dump_json(by_alias=True)
        body = rendered.encode()
        with self._lock:
            self._cache[job_id] = (job.version, body)
            while len(self._cache) > KEPT:
                self._cache.popitem(last=False)
        return body

    def forget(self, job_id: str) -> None:
        with self._lock:
            self._cache.pop(job_id, None)
