"""The HTTP API. Handlers stay thin: they translate between HTTP and `JobService`, and run
anything that blocks (Ray calls, file reads, spec validation) in a worker thread."""

from __future__ import annotations

import asyncio
from typing import Literal

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, StreamingResponse

from pipeline.api import models
from pipeline.api.jobs import Conflict, JobService, NotFound
from pipeline.api.launcher import RayError, RayUnavailable
from pipeline.api.metrics import CONTENT_TYPE, Metrics
from pipeline.api.states import JobState
from pipeline.api.submission import JobSubmission, SubmissionError, prepare, read_body
from pipeline.api.views import JobViews
from pipeline.report import render_html

JOB_ID = Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$", description="the job's id")
LOG_POLL_S = 1.0

_SUBMIT_BODY = {
    "required": True,
    "content": {
        "application/json": {"schema": JobSubmission.model_json_schema()},
        "application/yaml": {"schema": {"type": "string", "description": "the spec as YAML"}},
    },
}
_ERRORS = {
    404: {"model": models.Message, "description": "no such job"},
    409: {"model": models.Message, "description": "not possible in the job's state"},
    503: {"model": models.Message, "description": "Ray cannot be reached"},
}


def api_router(service: JobService, metrics: Metrics) -> APIRouter:
    router = APIRouter()
    store = service.store
    views = JobViews(store)

    def detail(job_id: str, status: int = 200, headers: dict | None = None) -> Response:
        body = views.detail(job_id)
        if body is None:
            raise NotFound(job_id)
        return Response(body, status_code=status, media_type="application/json",
                        headers=headers)

    @router.post("/jobs", status_code=201, response_model=models.JobDetail, tags=["jobs"],
                 summary="Submit a spec",
                 openapi_extra={"requestBody": _SUBMIT_BODY},
                 responses={422: {"model": models.Problems,
                                  "description": "the spec is invalid or names paths outside "
                                                 "the storage roots; `errors` carry lines"},
                            413: {"model": models.Problems, "description": "too large"},
                            415: {"model": models.Problems,
                                  "description": "unsupported content type"},
                            409: _ERRORS[409], 503: _ERRORS[503]})
    async def submit_job(request: Request,
                         base_dir: str | None = Query(None, max_length=4096, description=(
                             "YAML bodies: folder relative paths start at")),
                         submitter: str | None = Query(None, max_length=64, description=(
                             "YAML bodies: who submits"))):
        """Validate a spec (as `pipeline validate` does, plus the storage-root check) and run
        it on Ray. Send YAML with `Content-Type: application/yaml`, or JSON
        `{"spec": ..., "base_dir": ..., "submitter": ...}`."""
        body = await request.body()
        try:
            text, base, who, from_object = read_body(request.headers.get("content-type", ""),
                                                     body, base_dir, submitter)
            submission = await asyncio.to_thread(
                prepare, text, base, who, service.roots, service.config.max_spec_bytes,
                from_object)
        except SubmissionError as exc:
            return JSONResponse(exc.payload(), status_code=exc.status)
        client = request.client.host if request.client else None
        job = await asyncio.to_thread(service.submit, submission, client)
        return detail(job.id, 201, {"Location": f"/jobs/{job.id}"})

    @router.get("/jobs", response_model=models.JobList, tags=["jobs"], summary="List jobs")
    async def list_jobs(state: list[JobState] | None = Query(None, description=(
                            "only jobs in these states (repeat the parameter for several)")),
                        limit: int = Query(50, ge=1, le=500),
                        offset: int = Query(0, ge=0, le=1_000_000_000)):
        """Newest first."""
        jobs, total = store.list(state or (), limit=limit, offset=offset)
        return {"jobs": [models.job_out(j) for j in jobs], "total": total, "limit": limit,
                "offset": offset}

    @router.get("/jobs/{job_id}", response_model=models.JobDetail, tags=["jobs"],
                summary="A job: state, progress per stage, history", responses=_ERRORS)
    async def get_job(job_id: str = JOB_ID):
        """Progress comes from the job's manifests (shards done of planned, documents in,
        kept and rejected per stage, throughput, ETA), read by the service about once a
        second while the job runs."""
        return detail(job_id)

    @router.get("/jobs/{job_id}/logs", tags=["jobs"], summary="The job's log",
                response_class=PlainTextResponse, responses=_ERRORS)
    async def job_logs(job_id: str = JOB_ID,
                       tail: int = Query(200, ge=1, le=100_000, description="last lines"),
                       follow: bool = Query(False, description="keep streaming new lines "
                                                               "until the job finishes")):
        """The driver's output as Ray keeps it (saved by the service once the job ends)."""
        text = await asyncio.to_thread(service.logs, job_id)
        head = _tail(text, tail)
        if not follow:
            return PlainTextResponse(head)
        return StreamingResponse(_follow(service, job_id, head, len(text)),
                                 media_type="text/plain; charset=utf-8")

    @router.post("/jobs/{job_id}/cancel", status_code=202, response_model=models.JobDetail,
                 tags=["jobs"], summary="Cancel a job", responses=_ERRORS)
    async def cancel_job(job_id: str = JOB_ID):
        """Ask Ray to stop the job; its state is CANCELLING until Ray confirms, then
        CANCELLED. Shards committed so far stay, and running the spec again resumes."""
        await asyncio.to_thread(service.cancel, job_id)
        return detail(job_id, 202)

    @router.get("/jobs/{job_id}/report", tags=["jobs"], summary="The job's report",
                responses=_ERRORS | {200: {"content": {"application/json": {},
                                                       "text/html": {}}}})
    async def job_report(job_id: str = JOB_ID,
                         format: Literal["json", "html"] = Query("json")):
        """The funnel per stage, rejection reasons, languages and histograms
        (docs/architecture.md, "Data layout") as JSON or as the static HTML page. While a
        job runs: over the shards committed so far."""
        summary = await asyncio.to_thread(service.report, job_id)
        if summary is None:
            return JSONResponse({"detail": f"job {job_id} has no report yet"}, status_code=404)
        if format == "html":
            return HTMLResponse(render_html(summary))
        return JSONResponse(summary)

    @router.delete("/jobs/{job_id}", status_code=204, tags=["jobs"], summary="Delete a job",
                   responses=_ERRORS)
    async def delete_job(job_id: str = JOB_ID,
                         purge_output: bool = Query(False, description=(
                             "also delete the job's output folder"))):
        """Finished jobs only (SUCCEEDED, FAILED, CANCELLED): removes the record, the stored
        spec and the saved log, and Ray's record of the job."""
        await asyncio.to_thread(service.delete, job_id, purge_output)
        views.forget(job_id)
        return Response(status_code=204)

    @router.get("/metrics", tags=["service"], summary="Prometheus metrics",
                response_class=PlainTextResponse)
    async def prometheus():
        return Response(await asyncio.to_thread(metrics.render), media_type=CONTENT_TYPE)

    return router


def public_router(service: JobService) -> APIRouter:
    router = APIRouter()

    @router.get("/healthz", response_model=models.Health, tags=["service"],
                summary="Liveness (no token needed)")
    async def healthz():
        service.store.schema_version()  # the store answers
        return {"status": "ok", "ray": "reachable" if service.ray_reachable else "unreachable"}

    return router


def install_error_handlers(app) -> None:
    @app.exception_handler(NotFound)
    async def _not_found(request, exc):
        return JSONResponse({"detail": f"no job {exc}"}, status_code=404)

    @app.exception_handler(Conflict)
    async def _conflict(request, exc):
        return JSONResponse({"detail": str(exc)}, status_code=409)

    @app.exception_handler(RayError)
    async def _ray_error(request, exc):
        detail = str(exc) if isinstance(exc, RayUnavailable) else f"Ray answered: {exc}"
        return JSONResponse({"detail": detail}, status_code=503)


def _tail(text: str, lines: int) -> str:
    parts = text.splitlines(keepends=True)
    return "".join(parts[-lines:])


async def _follow(service: JobService, job_id: str, head: str, sent: int):
    yield head
    while True:
        await asyncio.sleep(LOG_POLL_S)
        job = service.store.get(job_id)
        if job is None:
            return
        try:
            text = await asyncio.to_thread(service.logs, job_id)
        except (RayError, NotFound):
            return
        if len(text) > sent:
            yield text[sent:]
            sent = len(text)
        if job.state.is_terminal:
            return
