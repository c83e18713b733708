"""The states of a job, as the service names them.

Ray's vocabulary (PENDING, RUNNING, STOPPED, SUCCEEDED, FAILED) is mapped onto ours: a job the
user asked to cancel is CANCELLING until Ray reports it stopped, then CANCELLED.
"""

from __future__ import annotations

from enum import Enum


class JobState(str, Enum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    CANCELLING = "CANCELLING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"

    @property
    def is_active(self) -> bool:
        return self in ACTIVE

    @property
    def is_terminal(self) -> bool:
        return not self.is_active


ACTIVE = frozenset({JobState.PENDING, JobState.RUNNING, JobState.CANCELLING})


def from_ray(ray_status: str, current: JobState) -> JobState:
    """Our state for a Ray job status. A cancel in progress stays CANCELLING until Ray has
    stopped the job (or it finished on its own first)."""
    mapped = {"PENDING": JobState.PENDING, "RUNNING": JobState.RUNNING,
              "STOPPED": JobState.CANCELLED, "SUCCEEDED": JobState.SUCCEEDED,
              "FAILED": JobState.FAILED}.get(str(ray_status).upper(), current)
    if current is JobState.CANCELLING and mapped.is_active:
        return JobState.CANCELLING
    return mapped
