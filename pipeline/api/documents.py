"""A job's documents over HTTP: a page of them, filtered by side, stage, reason and a `where`
condition, and one document in full with every column.

The reading is `pipeline inspect`'s (pipeline/browse/inspect.py): DuckDB finds the matching
positions from the columns the filters name (skipping row groups by their statistics), then
only the row groups holding the page are read. A client sends no SQL: `where` goes through
the validated grammar of pipeline/browse/where.py, and every value is a bound parameter.
A malformed filter is a 422 with the parser's message.
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import decimal
import math
import threading
import time
from collections import OrderedDict
from contextlib import contextmanager
from typing import Any, Iterator

import duckdb
from fastapi import APIRouter, Path, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from pipeline.api import models
from pipeline.api.jobs import JobService, NotFound
from pipeline.api.store import JobRecord
from pipeline.api.routes import JOB_ID
from pipeline.browse.inspect import Query as Selection
from pipeline.browse.inspect import find
from pipeline.browse.output import BrowseError, JobOutput
from pipeline.browse.show import CORE, snippet
from pipeline.browse.where import MAX_LENGTH as MAX_WHERE

MAX_PAGE = 200  # documents per page
SNIPPET_CHARS = 300
KEPT_OPEN, KEPT_OPEN_S = 16, 60.0  # finished jobs' outputs kept open, and for how long
DOC_ID = Path(min_length=1, max_length=1000, description="the document's `id`")
# DuckDB errors a validated filter can still meet with odd values (an integer past int64)
VALUE_ERRORS = (duckdb.ConversionException, duckdb.OutOfRangeException,
                duckdb.InvalidInputException, duckdb.BinderException,
                duckdb.TypeMismatchException)


class Unreadable(Exception):
    """The request cannot be answered from the job's output; `status` and message say why."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class DocumentSummary(BaseModel):
    id: str | None
    kept: bool
    stage: str | None = Field(description="the stage that rejected it (null when kept)")
    reason: str | None = Field(description="`code[:measure=value]` (null when kept)")
    url: str | None
    snippet: str = Field(description=f"the first {SNIPPET_CHARS} characters of the text, "
                                     "whitespace folded")


class DocumentPage(BaseModel):
    documents: list[DocumentSummary]
    total: int = Field(description="documents matching the filters, in all")
    offset: int
    limit: int


class Document(BaseModel):
    id: str | None
    kept: bool
    stage: str | None
    reason: str | None
    url: str | None
    text: str | None = Field(description="the full text, as written to the output")
    columns: dict[str, Any] = Field(description="every column of its row, text included "
                                                "(bytes as base64, NaN and infinities as "
                                                "strings)")
    matches: int = Field(description="documents in the output with this id (the first, in "
                                     "file order, is shown)")


ERRORS = {404: {"model": models.Message, "description": "no such job, no committed shard "
                                                        "yet, or no such document"},
           409: {"model": models.Message, "description": "the job's output lies outside the "
                                                        "storage roots"},
           422: {"model": models.Message, "description": "a malformed filter"}}


class OpenOutputs:
    """Finished jobs' outputs, kept open between requests: opening one (listing and reading
    the manifests, a DuckDB connection) costs about as much as reading a page. One request
    at a time uses an output (a DuckDB connection serves one query at a time); an active
    job's output is opened afresh for every request, as its shards keep coming. A finished
    job's is opened again when its record changes, and after a minute: a later job resuming
    into the same folder shows on the earlier job's pages by then."""

    def __init__(self, kept: int = KEPT_OPEN, ttl_s: float = KEPT_OPEN_S):
        self.kept, self.ttl_s = kept, ttl_s
        self._open: OrderedDict[str, tuple[tuple, float, JobOutput, threading.Lock]] = \
            OrderedDict()
        self._lock = threading.Lock()

    @contextmanager
    def __call__(self, service: JobService, job_id: str) -> Iterator[JobOutput]:
        job = readable_job(service, job_id)
        if not job.state.is_terminal:
            yield _opened(job_id, job.output)
            return
        key = (job.output, job.version)  # any change of the job record opens it again
        with self._lock:
            entry = self._open.get(job_id)
            if entry and (entry[0] != key or time.monotonic() - entry[1] > self.ttl_s):
                entry = None
            if entry:
                self._open.move_to_end(job_id)
        if entry is None:
            entry = (key, time.monotonic(), _opened(job_id, job.output), threading.Lock())
            with self._lock:
                self._open[job_id] = entry
                while len(self._open) > self.kept:
                    self._open.popitem(last=False)
        with entry[3]:
            yield entry[2]


def readable_job(service: JobService, job_id: str) -> JobRecord:
    """The job, if its output lies inside the service's storage roots (the roots may have
    changed since it ran)."""
    job = service.store.get(job_id)
    if job is None:
        raise NotFound(job_id)
    problem = service.roots.output_problem(job.output)
    if problem:
        raise Unreadable(409, f"not reading {job.output}: {problem}")
    return job


def _opened(job_id: str, output: str) -> JobOutput:
    try:
        return JobOutput(output)
    except BrowseError as exc:
        raise Unreadable(404, f"job {job_id} has no documents yet: {exc}") from None


def read_page(outputs: OpenOutputs, service: JobService, job_id: str,
              selection: Selection) -> dict:
    with outputs(service, job_id) as output:
        positions, total = _found(output, selection)
        docs = output.fetch(positions, list(CORE))
    return {"documents": [{"id": _text(d.get("id")), "kept": d["kept"],
                           "stage": d.get("stage"), "reason": d.get("reason"),
                           "url": _text(d.get("url")),
                           "snippet": snippet(d.get("text"), [], SNIPPET_CHARS, ("", ""))}
                          for d in docs],
            "total": total, "offset": selection.offset, "limit": selection.n}


def read_document(outputs: OpenOutputs, service: JobService, job_id: str,
                  doc_id: str) -> dict:
    with outputs(service, job_id) as output:
        positions, total = _found(output, Selection(doc_id=doc_id, n=1))
        if not positions:
            raise Unreadable(404, f"job {job_id} has no document {doc_id!r}")
        (doc,) = output.fetch(positions)
    columns = {k: json_safe(v) for k, v in doc.items() if k != "kept"}
    return {"id": _text(doc.get("id")), "kept": doc["kept"], "stage": doc.get("stage"),
            "reason": doc.get("reason"), "url": _text(doc.get("url")),
            "text": _text(doc.get("text")), "columns": columns, "matches": total}


def _found(output: JobOutput, selection: Selection):
    try:
        return find(output, selection)
    except BrowseError as exc:
        raise Unreadable(422, _api_words(str(exc))) from None
    except VALUE_ERRORS as exc:
        raise Unreadable(422, f"the filter cannot be applied: {exc}") from None


def _api_words(message: str) -> str:
    """BrowseError speaks of the CLI's options; name the query parameters instead."""
    for option, parameter in (("--where", "where"), ("--kept", "kept=true"),
                              ("--stage/--reason/--rejected", "stage/reason/kept=false")):
        message = message.replace(option, parameter)
    return message


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def json_safe(value: Any) -> Any:
    """A column value as JSON can carry it: bytes as base64, NaN and infinities as strings,
    dates as ISO text, lists and structs item by item."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, (datetime.timedelta, decimal.Decimal)):
        return str(value)
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def documents_router(service: JobService) -> APIRouter:
    router = APIRouter()
    outputs = OpenOutputs()

    @router.get("/jobs/{job_id}/documents", response_model=DocumentPage, tags=["documents"],
                summary="A page of the job's documents", responses=ERRORS)
    async def list_documents(
            job_id: str = JOB_ID,
            kept: bool | None = Query(None, description="true: kept only; false: rejected "
                                                        "only; absent: both, kept first"),
            stage: str | None = Query(None, min_length=1, max_length=100,
                                      description="rejected by this stage"),
            reason: str | None = Query(None, min_length=1, max_length=500, description=(
                "rejected for this reason: in full (`lang:de`), without its value "
                "(`too_short:words`) or by its code (`gopher_repetition`)")),
            where: str | None = Query(None, min_length=1, max_length=MAX_WHERE, description=(
                "a condition on the output's columns in the grammar of `pipeline inspect "
                "--where` (docs/inspect.md), e.g. `lang = 'en' and n_words > 100`")),
            offset: int = Query(0, ge=0, le=1_000_000_000),
            limit: int = Query(50, ge=1, le=MAX_PAGE)):
        """Documents in file order (kept, then rejected), with a snippet of each; `total`
        counts every match. Only committed shards are read, so a running job's pages grow."""
        selection = Selection(stage=stage, reason=reason, kept=kept is True,
                              rejected=kept is False, where=where, n=limit, offset=offset)
        return await answer(read_page, outputs, service, job_id, selection)

    @router.get("/jobs/{job_id}/documents/{doc_id:path}", response_model=Document,
                tags=["documents"], summary="One document in full", responses=ERRORS)
    async def get_document(job_id: str = JOB_ID, doc_id: str = DOC_ID):
        """The document with this `id`: its full text and every column of its row."""
        return await answer(read_document, outputs, service, job_id, doc_id)

    return router


async def answer(read, *args):
    """`read(*args)` in a worker thread; an Unreadable as its status and message."""
    try:
        return await asyncio.to_thread(read, *args)
    except Unreadable as exc:
        return JSONResponse({"detail": str(exc)}, status_code=exc.status)
