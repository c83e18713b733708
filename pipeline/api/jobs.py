"""What the service does with a job: store and submit it, follow it on Ray, cancel, delete,
and read its progress, logs and report. Routes and the reconciler call this; it calls the
store, the launcher and the job's output folder (through `JobLayout` and `pipeline.report`).

Blocking methods (Ray calls, file reads, DuckDB) are meant to run in a worker thread.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import threading
import time
from collections import OrderedDict

import yaml

from pipeline.api.config import ServiceConfig
from pipeline.api.launcher import RayError, RayLauncher, RayUnavailable
from pipeline.api.progress import JobProgress
from pipeline.api.states import JobState, from_ray
from pipeline.api.storage import StorageRoots
from pipeline.api.store import JobRecord, JobStore, NewJob, SpecRecord
from pipeline.api.submission import Submission
from pipeline.io.layout import JobLayout
from pipeline.report import build_summary

log = logging.getLogger("pipeline.api")

REPORT_TTL_S = 5.0
TRACKERS_KEPT = 64


class Conflict(Exception):
    """The request does not fit the job's state (409)."""


class NotFound(Exception):
    """No such job (404)."""


class JobService:
    def __init__(self, config: ServiceConfig, store: JobStore, launcher: RayLauncher,
                 roots: StorageRoots):
        self.config, self.store, self.launcher, self.roots = config, store, launcher, roots
        self.ray_reachable = True
        self._trackers: OrderedDict[str, JobProgress] = OrderedDict()
        self._reports: dict[str, tuple[float, bool, dict]] = {}  # (when, final, summary)
        self._report_locks: dict[str, threading.Lock] = {}
        self._submitting: set[str] = set()  # being handed to Ray by a request right now
        self._lock = threading.Lock()
        self._submit_lock = threading.Lock()
        config.specs_dir.mkdir(parents=True, exist_ok=True)
        config.logs_dir.mkdir(parents=True, exist_ok=True)

    # -- submit ------------------------------------------------------------------------------
    def submit(self, submission: Submission, client: str | None) -> JobRecord:
        spec = submission.spec
        output = spec.output.path
        job_id = f"{spec.name[:40]}-{secrets.token_hex(4)}"
        spec_dir = self.config.specs_dir / job_id
        with self._submit_lock:  # two requests must not both claim one output folder
            for other in self.store.active():
                if _overlaps(other.output, output):
                    raise Conflict(f"job {other.id} ({other.state.value}) writes to "
                                   f"{other.output}; wait for it, cancel it, or choose another "
                                   "output.path")
            spec_dir.mkdir(parents=True)
            (spec_dir / "spec.yaml").write_text(submission.resolved, encoding="utf-8")
            with self._lock:
                self._submitting.add(job_id)
            job = self.store.create(NewJob(
                id=job_id, name=spec.name, submitter=submission.submitter or "anonymous",
                client=client, output=output, gpus=spec.resources.gpus,
                spec=SpecRecord(text=submission.text, resolved=submission.resolved,
                                path=str(spec_dir / "spec.yaml"), base_dir=submission.base_dir)))
        try:
            self._hand_to_ray(job)
        finally:
            with self._lock:
                self._submitting.discard(job_id)
        return self.store.get(job_id)

    def _hand_to_ray(self, job: JobRecord) -> None:
        try:
            self.launcher.submit(job.id, str(self.config.specs_dir / job.id), job.gpus,
                                 {"submitter": job.submitter, "name": job.name})
        except RayUnavailable as exc:
            self.ray_reachable = False
            self.store.transition(job.id, JobState.FAILED, f"not submitted: {exc}")
            raise
        except RayError as exc:
            self.store.transition(job.id, JobState.FAILED, f"Ray refused the job: {exc}")
            raise
        self.ray_reachable = True
        self.store.mark_submitted(job.id)

    # -- cancel / delete ---------------------------------------------------------------------
    def cancel(self, job_id: str) -> JobRecord:
        job = self._get(job_id)
        if job.state.is_terminal:
            raise Conflict(f"job {job_id} already finished ({job.state.value})")
        if job.state is JobState.CANCELLING:
            return job
        if self.launcher.stop(job_id):
            self.store.transition(job_id, JobState.CANCELLING, "cancel requested")
        elif self.launcher.info(job_id) is None:
            self.store.transition(job_id, JobState.CANCELLED, "cancelled before Ray had it")
        else:  # it finished on its own just before
            self.sync(self._get(job_id))
        return self._get(job_id)

    def delete(self, job_id: str, purge_output: bool = False) -> None:
        job = self._get(job_id)
        if job.state.is_active:
            raise Conflict(f"job {job_id} is {job.state.value}; cancel it first")
        if purge_output:
            self._purge(job)
        try:
            self.launcher.delete(job_id)
        except RayError as exc:
            log.warning("Ray keeps its record of job %s: %s", job_id, exc)
        self.store.delete(job_id)
        shutil.rmtree(self.config.specs_dir / job_id, ignore_errors=True)
        (self.config.logs_dir / f"{job_id}.log").unlink(missing_ok=True)
        with self._lock:
            self._trackers.pop(job_id, None)
            self._reports.pop(job_id, None)

    def _purge(self, job: JobRecord) -> None:
        problem = self.roots.output_problem(job.output)
        if problem:
            raise Conflict(f"not deleting {job.output}: {problem}")
        layout = JobLayout(job.output)
        if not layout.fs.exists(layout.base):
            return
        if not layout.exists(layout.spec()):
            raise Conflict(f"not deleting {job.output}: it holds no spec.yaml, so it does not "
                           "look like a job's output")
        layout.fs.rm(layout.base, recursive=True)

    # -- following a job ---------------------------------------------------------------------
    def sync(self, job: JobRecord, after_restart: bool = False) -> JobRecord:
        """Bring one active job's state and progress up to date with Ray and its output."""
        if job.submitted_at is None:
            with self._lock:
                if job.id in self._submitting:
                    return job  # a request is handing it over as we speak
            job = self._get(job.id)
        if job.submitted_at is None:
            # Stored but never handed over (the service stopped in between): hand it over now.
            try:
                self._hand_to_ray(job)
            except RayError:
                return self._get(job.id)
            job = self._get(job.id)
        try:
            ray_job = self.launcher.info(job.id)
        except RayUnavailable:
            self.ray_reachable = False
            return job
        self.ray_reachable = True
        note = " (found on Ray after the service restarted)" if after_restart else ""
        if ray_job is None:
            self._finish(job, JobState.FAILED, "Ray has no record of this job (was its cluster "
                         "restarted?); submit the spec again: committed shards are kept",
                         time.time(), None)
            return self._get(job.id)
        state = from_ray(ray_job.status, job.state)
        if state.is_terminal:
            self._finish(job, state, (ray_job.message or state.value.lower()) + note,
                         ray_job.end_time or time.time(), ray_job.start_time)
            return self._get(job.id)
        if state != job.state:
            self.store.transition(job.id, state, ("running" + note)
                                  if state is JobState.RUNNING else None)
            job = self._get(job.id)
        if job.state is not JobState.PENDING:
            self.refresh_progress(job)
        return job

    def _finish(self, job: JobRecord, state: JobState, message: str, at: float,
                ray_started: float | None) -> None:
        """The final progress and log first, then the final state: whoever sees the job
        finished also sees its final counts."""
        self.refresh_progress(job, started_at=job.started_at or ray_started, finished_at=at)
        self._save_logs(job.id)
        self.store.transition(job.id, state, message, at=at)
        with self._lock:
            self._trackers.pop(job.id, None)

    def refresh_progress(self, job: JobRecord, started_at: float | None = None,
                         finished_at: float | None = None) -> None:
        tracker = self._tracker(job)
        try:
            snapshot = tracker.snapshot(started_at or job.started_at,
                                        finished_at or job.finished_at)
        except (OSError, ValueError) as exc:
            log.warning("cannot read the progress of %s: %s", job.id, exc)
            return
        self.store.save_progress(job.id, snapshot)

    def _tracker(self, job: JobRecord) -> JobProgress:
        with self._lock:
            tracker = self._trackers.get(job.id)
            if tracker is None:
                tracker = JobProgress(job.output, self._stage_names(job.id))
                self._trackers[job.id] = tracker
                while len(self._trackers) > TRACKERS_KEPT:
                    self._trackers.popitem(last=False)
            self._trackers.move_to_end(job.id)
            return tracker

    def _stage_names(self, job_id: str) -> list[str]:
        spec = self.store.spec(job_id)
        try:
            stages = yaml.safe_load(spec.resolved).get("stages") or []
            return [next(iter(entry)) for entry in stages]
        except (AttributeError, TypeError, StopIteration, yaml.YAMLError):
            return []

    # -- logs and report ---------------------------------------------------------------------
    def logs(self, job_id: str) -> str:
        job = self._get(job_id)
        saved = self.config.logs_dir / f"{job_id}.log"
        if job.state.is_terminal and saved.exists():
            return saved.read_text(encoding="utf-8", errors="replace")
        text = self.launcher.logs(job_id)
        if text is None:
            return saved.read_text(encoding="utf-8", errors="replace") if saved.exists() else ""
        return text

    def _save_logs(self, job_id: str) -> None:
        try:
            text = self.launcher.logs(job_id)
        except RayError:
            return
        if text is not None:
            path = self.config.logs_dir / f"{job_id}.log"
            tmp = path.with_suffix(".tmp")
            tmp.write_text(text, encoding="utf-8")
            tmp.replace(path)

    def report(self, job_id: str) -> dict | None:
        """The job's report summary: report/summary.json once the job has written it;
        otherwise (running, cancelled, failed) one built from the shards committed so far,
        cached for a few seconds while the job is active."""
        job = self._get(job_id)
        layout = JobLayout(job.output)
        summary_path = os.path.join(layout.report_dir(), "summary.json")
        if job.state.is_terminal and layout.exists(summary_path):
            return layout.read_json(summary_path)
        if not layout.exists(layout.plan()):
            return None
        with self._lock:
            lock = self._report_locks.setdefault(job_id, threading.Lock())
        with lock:  # many viewers of one job share one DuckDB pass
            cached = self._reports.get(job_id)
            if cached and (cached[1] or time.monotonic() - cached[0] < REPORT_TTL_S):
                return cached[2]
            summary = build_summary(job.output)
            self._reports[job_id] = (time.monotonic(), job.state.is_terminal, summary)
            return summary

    def _get(self, job_id: str) -> JobRecord:
        job = self.store.get(job_id)
        if job is None:
            raise NotFound(job_id)
        return job


def _overlaps(a: str, b: str) -> bool:
    a, b = a.rstrip("/"), b.rstrip("/")
    return a == b or a.startswith(b + "/") or b.startswith(a + "/")

