"""Jobs go to Ray through the Ray Jobs API (`ray.job_submission.JobSubmissionClient`).

Each job's resolved spec is stored in its own folder and shipped as the job's
`runtime_env.working_dir`, so the entrypoint `python -m pipeline run spec.yaml --no-progress`
finds it on any cluster, not only one that shares the service's disk. Our job id is Ray's
`submission_id`, which is what lets a restarted service find its jobs again.

GPUs: the runner's stage actors request the GPUs they need themselves. Ray's
`entrypoint_num_gpus` reserves GPUs for the *driver* process in addition, which would leave a
one-GPU machine with none for the stages and hang the job; so it is only passed (as the
spec's `resources.gpus`) when `reserve_driver_gpus` is set, e.g. to make Ray place the driver
on a GPU node of a cluster with GPUs to spare. The request is always recorded in the job's
metadata.

The client's calls block (plain HTTP without timeouts); callers run them in a worker thread.
"""

from __future__ import annotations

import shlex
import threading
from dataclasses import dataclass

import requests

from pipeline.api import ray_auth


class RayError(RuntimeError):
    """Ray answered with an error (other than "no such job")."""


class RayUnavailable(RayError):
    """The Ray cluster (its dashboard / job server) cannot be reached right now."""


_RAISE = object()


@dataclass
class RayJob:
    status: str             # PENDING, RUNNING, STOPPED, SUCCEEDED, FAILED
    message: str | None
    start_time: float | None  # seconds since the epoch
    end_time: float | None


class RayLauncher:
    """Submits, watches and stops pipeline jobs on one Ray cluster."""

    def __init__(self, address: str, python: str = "python", reserve_driver_gpus: bool = False):
        self.address = address
        self.python = python
        self.reserve_driver_gpus = reserve_driver_gpus
        self._client = None
        self._lock = threading.Lock()

    def entrypoint(self) -> str:
        return f"{shlex.quote(self.python)} -m pipeline run spec.yaml --no-progress"

    def submit(self, job_id: str, spec_dir: str, gpus: float, metadata: dict[str, str]) -> None:
        options = {}
        if gpus and self.reserve_driver_gpus:
            options["entrypoint_num_gpus"] = gpus
        metadata = dict(metadata, pipeline_job_id=job_id, gpus=f"{gpus:g}")
        try:
            self._call("submit_job", entrypoint=self.entrypoint(), submission_id=job_id,
                       runtime_env={"working_dir": spec_dir}, metadata=metadata, **options)
        except RayUnavailable:
            raise
        except RayError as exc:
            # A retry after a crash between submitting and recording it: already there is fine.
            if "already exists" not in str(exc):
                raise

    def info(self, job_id: str) -> RayJob | None:
        """The job as Ray sees it, or None if Ray does not know it."""
        info = self._call("get_job_info", job_id, missing=None)
        if info is None:
            return None
        return RayJob(status=str(getattr(info.status, "value", info.status)),
                      message=info.message,
                      start_time=info.start_time / 1000 if info.start_time else None,
                      end_time=info.end_time / 1000 if info.end_time else None)

    def stop(self, job_id: str) -> bool:
        """True if Ray was running (or about to run) the job and now stops it."""
        return bool(self._call("stop_job", job_id, missing=False))

    def logs(self, job_id: str) -> str | None:
        return self._call("get_job_logs", job_id, missing=None)

    def delete(self, job_id: str) -> None:
        self._call("delete_job", job_id, missing=None)

    def ping(self) -> bool:
        try:
            return requests.get(f"{self._http_address()}/api/version", timeout=2,
                                headers=ray_auth.http_headers()).ok
        except (requests.RequestException, RayUnavailable):
            return False

    # -- the client --------------------------------------------------------------------------
    def _http_address(self) -> str:
        return self.address if "://" in self.address else f"http://{self.address}"

    def _client_or_connect(self):
        with self._lock:
            if self._client is None:
                from ray.job_submission import JobSubmissionClient

                try:
                    self._client = JobSubmissionClient(self.address)
                except (ConnectionError, requests.RequestException, RuntimeError) as exc:
                    raise RayUnavailable(f"cannot reach Ray at {self.address}: {exc}") from None
            return self._client

    def _call(self, method: str, *args, missing=_RAISE, **kwargs):
        """Call a client method; `missing` is returned when Ray has no such job."""
        client = self._client_or_connect()
        try:
            return getattr(client, method)(*args, **kwargs)
        except (ConnectionError, requests.ConnectionError, requests.Timeout) as exc:
            raise RayUnavailable(f"cannot reach Ray at {self.address}: {exc}") from None
        except RayError:
            raise
        except RuntimeError as exc:
            if missing is not _RAISE and _is_not_found(exc):
                return missing
            raise RayError(str(exc)) from None


def _is_not_found(exc: Exception) -> bool:
    # The client raises RuntimeError("Request failed with status code 404: ...").
    text = str(exc).lower()
    return "status code 404" in text or "does not exist" in text
