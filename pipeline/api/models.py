"""What the API answers with: the response bodies, as they appear in the OpenAPI schema."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from pipeline.api.states import JobState
from pipeline.api.store import JobRecord, Transition


class Docs(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    in_: int = Field(0, alias="in", description="documents read")
    kept: int = Field(0, description="documents in data/ (after the last stage)")
    rejected: int = Field(0, description="documents in rejected/ (all stages)")


class StageProgress(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    step: int = Field(description="position in the spec's stage list; -1 = reading input")
    stage: str
    shards_done: int
    shards_planned: int
    in_: int = Field(alias="in")
    kept: int
    rejected: int
    seconds: float = Field(description="stage time summed over workers")
    docs_per_s: float | None = Field(description="documents per second of stage time")


class Shards(BaseModel):
    planned: int
    done: int
    failed: int


class TimelinePoint(BaseModel):
    t: float = Field(description="seconds since the job started")
    docs_per_s: float = Field(description="documents finished per second in this interval")


class Progress(BaseModel):
    shards: Shards
    fraction: float = Field(description="0..1: mean over stages of shards done / planned")
    docs: Docs
    elapsed_s: float
    docs_per_s: float | None = Field(description="documents read per second of wall time")
    eta_s: float | None = Field(description="estimated seconds left; null when unknown/done")
    stages: list[StageProgress]
    timeline: list[TimelinePoint]
    read_at: float = Field(description="when the manifests were read (epoch seconds)")


class TransitionOut(BaseModel):
    state: JobState
    at: datetime
    message: str | None


class Job(BaseModel):
    id: str
    name: str
    state: JobState
    submitter: str
    output: str = Field(description="the job's output folder (layout: docs/architecture.md, "
                        "'Data layout')")
    gpus: float = Field(description="resources.gpus of the spec")
    message: str | None = Field(description="the last word from Ray or the service")
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    fraction: float = Field(description="0..1, from the last progress snapshot")
    docs: Docs


class JobDetail(Job):
    progress: Progress | None
    transitions: list[TransitionOut]
    spec: str = Field(description="the spec as submitted")
    resolved_spec: str = Field(description="the spec as it runs (absolute paths, defaults)")


class JobList(BaseModel):
    jobs: list[Job]
    total: int = Field(description="jobs matching the filter, in all")
    limit: int
    offset: int


class SpecProblem(BaseModel):
    line: int | None = Field(description="line of the spec the problem is on")
    message: str


class Problems(BaseModel):
    detail: str
    errors: list[SpecProblem] = []
    spec_text: str | None = Field(None, description="for a spec sent as a JSON object: the "
                                                    "text the line numbers refer to")


class Message(BaseModel):
    detail: str


class Health(BaseModel):
    status: Literal["ok"]
    ray: Literal["reachable", "unreachable"]


def _time(ts: float | None) -> datetime | None:
    return datetime.fromtimestamp(ts, tz=timezone.utc) if ts is not None else None


def job_out(job: JobRecord) -> dict:
    return {"id": job.id, "name": job.name, "state": job.state, "submitter": job.submitter,
            "output": job.output, "gpus": job.gpus, "message": job.message,
            "created_at": _time(job.created_at), "updated_at": _time(job.updated_at),
            "started_at": _time(job.started_at), "finished_at": _time(job.finished_at),
            "fraction": job.fraction,
            "docs": {"in": job.docs_in, "kept": job.docs_kept, "rejected": job.docs_rejected}}


def transitions_out(transitions: list[Transition]) -> list[dict]:
    return [{"state": t.state, "at": _time(t.at), "message": t.message} for t in transitions]
