"""What other thresholds would keep, over HTTP: `pipeline whatif` (pipeline/browse/whatif.py)
for the dashboard's sliders. Settings are `STAGE.OPTION=VALUE` as on the command line; one
that cannot be evaluated, or a value the stage refuses, is a 422 naming it.
"""

from __future__ import annotations

from typing import Any

import yaml
from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from pipeline.api.documents import ERRORS, SNIPPET_CHARS, OpenOutputs, Unreadable, answer, \
    json_safe
from pipeline.api.jobs import JobService
from pipeline.api.routes import JOB_ID
from pipeline.browse.output import BrowseError
from pipeline.browse.show import snippet
from pipeline.browse.whatif import whatif

MAX_SETTINGS = 20
MAX_SAMPLE = 20
MAX_SETTING_CHARS = 500


class Figures(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    in_: int = Field(alias="in", description="documents that reached the step")
    kept: int = Field(description="documents that passed it")
    rejected: int = Field(description="documents it rejected")
    words_kept: int = Field(description="whitespace words of the documents it passed")


class FiguresAfter(Figures):
    unsure: int = Field(description="documents whose fate from this step on only a re-run "
                                    "can tell")


class StepFigures(BaseModel):
    step: int = Field(description="position in the spec's stage list; -1 = reading input")
    stage: str
    before: Figures
    after: FiguresAfter


class KeptBefore(BaseModel):
    docs: int
    words: int


class KeptAfter(KeptBefore):
    unsure: int
    unsure_words: int


class KeptTotals(BaseModel):
    before: KeptBefore
    after: KeptAfter


class ChangedDocument(BaseModel):
    id: str | None
    url: str | None
    before: dict[str, Any] = Field(description="`kept`, and the `stage` and `reason` if not")
    after: dict[str, Any] = Field(description="the same, or `unsure` with why")
    snippet: str


class ChangedGroup(BaseModel):
    docs: int = Field(description="how many documents")
    sample: list[ChangedDocument]


class Change(BaseModel):
    step: int
    stage: str
    set: dict[str, Any]


class WhatIf(BaseModel):
    changes: list[Change]
    funnel: list[StepFigures] = Field(description="per step, before and after the changes")
    kept: KeptTotals
    changed: dict[str, ChangedGroup] = Field(description="`now_rejected`, `now_kept` and "
                                                         "`unsure`: counts and a sample")
    notes: list[str]


def evaluate(outputs: OpenOutputs, service: JobService, job_id: str, settings: list[str],
             sample: int, seed: int) -> dict:
    try:
        with outputs(service, job_id) as output:
            result = whatif(output, settings, sample, seed)
    except BrowseError as exc:
        raise Unreadable(422, str(exc)) from None
    except yaml.YAMLError as exc:
        raise Unreadable(422, f"set: a value is not YAML: {exc}") from None
    for group in result["changed"].values():
        group["sample"] = [{"id": doc["id"], "url": doc["url"], "before": doc["before"],
                            "after": doc["after"],
                            "snippet": snippet(doc["text"], [], SNIPPET_CHARS, ("", ""))}
                           for doc in group["sample"]]
    result["changes"] = [c | {"set": json_safe(c["set"])} for c in result["changes"]]
    result.pop("output")
    return result


def whatif_router(service: JobService) -> APIRouter:
    router = APIRouter()
    # outputs of their own: a replay takes seconds at 1M documents and the job's pages should
    # not wait for it; kept open, a finished job's outcomes and word counts are read once
    # (pipeline/browse/whatif.py, `outcomes`), so a slider's next move skips that
    outputs = OpenOutputs()

    @router.get("/jobs/{job_id}/whatif", response_model=WhatIf, response_model_by_alias=True,
                tags=["documents"], summary="What other thresholds would keep",
                responses=ERRORS)
    async def what_if(
            job_id: str = JOB_ID,
            settings: list[str] = Query(..., alias="set", min_length=1,
                                        max_length=MAX_SETTINGS, description=(
                "`STAGE.OPTION=VALUE` (repeat for more), as `pipeline whatif --set`, e.g. "
                "`quality.max_symbol_word_ratio=0.05`; VALUE is YAML")),
            sample: int = Query(0, ge=0, le=MAX_SAMPLE, description=(
                "documents to show of each kind that changes side")),
            seed: int = Query(0, ge=0, le=2**31 - 1)):
        """Each document's path through the steps is replayed from the columns the run wrote
        (docs/inspect.md, "pipeline whatif"): per step, documents in, kept, rejected and
        words kept, before and after; what a re-run would have to tell is counted as
        `unsure`, never guessed."""
        if any(len(setting) > MAX_SETTING_CHARS for setting in settings):
            return JSONResponse({"detail": f"set: a setting is longer than "
                                           f"{MAX_SETTING_CHARS} characters"}, status_code=422)
        return await answer(evaluate, outputs, service, job_id, settings, sample, seed)

    return router
