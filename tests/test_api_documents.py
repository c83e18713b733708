"""The documents and what-if routes of the control plane (docs/control_plane.md, "Documents
and what-if"): pages equal to plain DuckDB queries over the job's output, one document with
every column, what-if figures equal to the data's own counts, the token on every route, 422
for malformed filters and settings, and no server error for any request (schemathesis, and
random expressions built from the filter grammar's own pieces)."""

from __future__ import annotations

import base64
import math
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.api.documents import MAX_PAGE
from stages._shared.words import count_words
from tests.api_support import TOKEN
from tests.documents_support import (JOB_ID, MAX_WORDS, MIN_WORDS, SLASHED_ID, all_rows,
                                     build_job_output, register_finished_job, start_service)


@pytest.fixture(scope="module")
def job(tmp_path_factory, ray_cluster):
    tmp = tmp_path_factory.mktemp("documents")
    root = tmp / "root"
    output = build_job_output(root)
    with start_service(tmp, root) as running:
        register_finished_job(running, output)
        running.output = output
        running.root = root
        yield running


def pages(client, limit: int, **filters) -> tuple[list[dict], int]:
    """Every document the filters select, read a page at a time."""
    found, offset = [], 0
    while True:
        response = client.get(f"/jobs/{JOB_ID}/documents",
                              params={**filters, "offset": offset, "limit": limit})
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["offset"] == offset and body["limit"] == limit
        found += body["documents"]
        offset += limit
        if offset >= body["total"]:
            return found, body["total"]


def _reason_matches(reason: str | None, wanted: str) -> bool:
    return reason is not None and wanted in (reason, reason.split("=")[0],
                                             reason.split(":")[0])


FILTERS = [
    ({}, lambda r: True),
    ({"kept": "true"}, lambda r: r["kept"]),
    ({"kept": "false"}, lambda r: not r["kept"]),
    ({"stage": "url_filter"}, lambda r: r.get("stage") == "url_filter"),
    ({"stage": "length_filter", "reason": "too_short"},
     lambda r: r.get("stage") == "length_filter" and _reason_matches(r["reason"], "too_short")),
    ({"reason": "too_long:words"}, lambda r: _reason_matches(r.get("reason"), "too_long:words")),
    ({"where": "n_words >= 30 and url like '%site1%'"},
     lambda r: (r.get("n_words") or 0) >= 30 and "site1" in r["url"]),
    ({"kept": "false", "where": "score between 0.2 and 0.9 and not (tags is null)"},
     lambda r: not r["kept"] and 0.2 <= r["score"] <= 0.9),
]


@pytest.mark.parametrize("filters,wanted", FILTERS, ids=[str(f) for f, _ in FILTERS])
def test_pages_hold_what_a_plain_query_selects_in_file_order(job, filters, wanted):
    expected = [r for r in all_rows(job.output) if wanted(r)]
    assert expected, filters
    found, total = pages(job.client(), 7, **filters)  # pages cross shard files
    assert total == len(expected)
    assert [d["id"] for d in found] == [r["id"] for r in expected]
    for doc, row in zip(found, expected):
        assert (doc["kept"], doc["stage"], doc["reason"], doc["url"]) == \
            (row["kept"], row.get("stage"), row.get("reason"), row["url"])
        text = row["text"]
        assert doc["snippet"] == " ".join(text[:300].split()) + ("..." if len(text) > 300 else "")


def test_the_outcome_filters_really_split_the_output(job):
    every = all_rows(job.output)
    assert {r["kept"] for r in every} == {True, False}
    assert {r.get("stage") for r in every if not r["kept"]} == {"url_filter", "length_filter"}
    _, total = pages(job.client(), MAX_PAGE)
    assert total == len(every) == 160


def test_a_page_past_the_end_is_empty_and_pages_are_bounded(job):
    client = job.client()
    body = client.get(f"/jobs/{JOB_ID}/documents", params={"offset": 10_000}).json()
    assert body["documents"] == [] and body["total"] == 160
    assert len(client.get(f"/jobs/{JOB_ID}/documents",
                          params={"limit": MAX_PAGE}).json()["documents"]) == 160
    for params in ({"limit": MAX_PAGE + 1}, {"limit": 0}, {"offset": -1}, {"kept": "maybe"}):
        assert client.get(f"/jobs/{JOB_ID}/documents", params=params).status_code == 422


def test_concurrent_pages_of_one_job_each_get_their_own_rows(job):
    # a finished job's output stays open between requests: one query at a time uses it
    every = all_rows(job.output)
    offsets = list(range(0, len(every), 9)) * 2

    def page(offset: int) -> list[str]:
        response = job.client().get(f"/jobs/{JOB_ID}/documents",
                                    params={"offset": offset, "limit": 9})
        assert response.status_code == 200, response.text
        return [d["id"] for d in response.json()["documents"]]

    with ThreadPoolExecutor(8) as pool:
        for offset, ids in zip(offsets, pool.map(page, offsets)):
            assert ids == [r["id"] for r in every[offset:offset + 9]]


def test_one_document_comes_with_its_full_text_and_every_column(job):
    client = job.client()
    every = {r["id"]: r for r in all_rows(job.output)}
    row = every[SLASHED_ID]  # slashes, a space and a percent sign in the id
    response = client.get(f"/jobs/{JOB_ID}/documents/site%2Fa%20b%2F100%25")
    assert response.status_code == 200, response.text
    doc = response.json()
    assert (doc["id"], doc["kept"], doc["stage"], doc["reason"], doc["matches"]) == \
        (SLASHED_ID, row["kept"], row.get("stage"), row.get("reason"), 1)
    assert doc["text"] == row["text"]
    assert set(doc["columns"]) == set(row) - {"kept"} | {"stage", "reason"}
    assert doc["columns"]["blob"] == base64.b64encode(row["blob"]).decode()
    assert doc["columns"]["meta"] == row["meta"]
    assert doc["columns"]["tags"] == row["tags"]
    nan_row = next(r for r in every.values() if math.isnan(r["vector"][1]) and not r["kept"])
    nan_doc = client.get(f"/jobs/{JOB_ID}/documents/{nan_row['id']}").json()
    assert nan_doc["columns"]["vector"] == [nan_row["vector"][0], "nan"]  # no JSON numbers
    assert doc["columns"]["vector"][1] in ("nan", "-inf")
    missing = client.get(f"/jobs/{JOB_ID}/documents/no-such-doc")
    assert missing.status_code == 404 and "no-such-doc" in missing.json()["detail"]


@pytest.mark.parametrize("where,says", [
    ("n_words > 5; DROP TABLE x", "unexpected ';'"),
    ("read_csv('/etc/passwd') is null", "function calls are not allowed"),
    ("n_word > 5", "unknown column 'n_word'"),
    ("n_words > 'many'", "compared with 'many'"),
    ("1 = 1", "a comparison needs a column"),
    ("n_words > 5 -- comment", "comments are not allowed"),
    ("(n_words > 5", "expected `)`"),
    ("id in (select id from x)", "subqueries and statements are not allowed"),
    ("n_words > 99999999999999999999999999999999999999999", "cannot be applied"),
    ("n_words >: 5", "unexpected ':'"),
])
def test_malformed_filters_are_422_with_the_parsers_message(job, where, says):
    response = job.client().get(f"/jobs/{JOB_ID}/documents", params={"where": where})
    assert response.status_code == 422, response.text
    assert says in response.json()["detail"]
    assert "--where" not in response.json()["detail"]  # named as the query parameter


def test_kept_documents_have_no_stage_to_filter_by(job):
    response = job.client().get(f"/jobs/{JOB_ID}/documents",
                                params={"kept": "true", "stage": "url_filter"})
    assert response.status_code == 422
    assert "kept=true" in response.json()["detail"]


def _whatif(job, *settings: str, **params):
    return job.client().get(f"/jobs/{JOB_ID}/whatif", params={"set": list(settings), **params})


@pytest.mark.parametrize("min_words,max_words", [(30, MAX_WORDS), (10, 80), (MIN_WORDS, 40)])
def test_whatif_keeps_what_the_data_says_it_would(job, min_words, max_words):
    every = all_rows(job.output)
    # length_filter is the last step: every document that reached it is decided anew
    reached = [r for r in every if r.get("stage") != "url_filter"]
    kept = [r for r in reached if min_words <= r["n_words"] <= max_words]
    words = count_words(pa.array([r["text"] for r in kept], pa.string())).to_pylist()
    response = _whatif(job, f"length_filter.min_words={min_words}",
                       f"length_filter.max_words={max_words}", sample=3)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["kept"]["before"]["docs"] == sum(r["kept"] for r in every)
    assert body["kept"]["after"] == {"docs": len(kept), "words": sum(words), "unsure": 0,
                                     "unsure_words": 0}
    step = next(f for f in body["funnel"] if f["stage"] == "length_filter")
    assert step["after"]["in"] == len(reached) and step["after"]["kept"] == len(kept)
    changed = body["changed"]
    now_kept = {r["id"] for r in kept} - {r["id"] for r in every if r["kept"]}
    assert changed["now_kept"]["docs"] == len(now_kept)
    assert {d["id"] for d in changed["now_kept"]["sample"]} <= now_kept
    assert len(changed["now_kept"]["sample"]) == min(3, len(now_kept))
    assert body["changes"] == [{"step": 1, "stage": "length_filter",
                                "set": {"min_words": min_words, "max_words": max_words}}]


@pytest.mark.parametrize("setting,says", [
    ("length_filter.min_words", "write STAGE.OPTION=VALUE"),
    ("nope.min_words=3", "not a step of this job"),
    ("url_filter.banned_words=[x]", "no rule maps its options"),
    ("length_filter.min_chars=5", "characters are not written"),
    ("length_filter.min_words=[", "not YAML"),
    ("length_filter.min_words=lots", "min_words"),
    ("length_filter.min_words=" + "9" * 600, "longer than 500"),
])
def test_whatif_refuses_what_it_cannot_evaluate_with_422(job, setting, says):
    response = _whatif(job, setting)
    assert response.status_code == 422, response.text
    assert says in response.json()["detail"]


def test_whatif_needs_a_setting(job):
    assert job.client().get(f"/jobs/{JOB_ID}/whatif").status_code == 422


def test_every_route_needs_the_token(job):
    routes = [f"/jobs/{JOB_ID}/documents", f"/jobs/{JOB_ID}/documents/d001",
              f"/jobs/{JOB_ID}/whatif?set=length_filter.min_words=30"]
    for token in (None, "wrong", TOKEN + "x"):
        for route in routes:
            response = job.client(token).get(route)
            assert response.status_code == 401, (token, route)
            assert "documents" not in response.text
    for route in routes:
        assert job.client().get(route).status_code == 200, route


def test_jobs_without_documents_and_outputs_outside_the_roots(job, tmp_path):
    client = job.client()
    assert client.get("/jobs/no-such-job/documents").status_code == 404
    assert client.get("/jobs/no-such-job/documents/d001").status_code == 404
    assert client.get("/jobs/bad%20id!/documents").status_code == 422  # the job-id rule
    register_finished_job(job, job.root / "out" / "never-ran", "never-ran-1")
    response = client.get("/jobs/never-ran-1/documents")
    assert response.status_code == 404 and "no documents yet" in response.json()["detail"]
    # a record whose output lies outside the roots (they changed since): never read
    outside = tmp_path / "elsewhere"
    shutil.copytree(job.output, outside)
    register_finished_job(job, outside, "moved-1")
    for route in ("/jobs/moved-1/documents", "/jobs/moved-1/documents/d001",
                  "/jobs/moved-1/whatif?set=length_filter.min_words=30"):
        response = client.get(route)
        assert response.status_code == 409, (route, response.text)
        assert "outside the storage roots" in response.json()["detail"]


# -- no request gets a server error ----------------------------------------------------------
PIECES = ["n_words", "score", "url", "id", "tags", "meta", "blob", "stage", "reason", '"text"',
          "and", "or", "not", "in", "is", "null", "like", "ilike", "between", "true", "false",
          "(", ")", ",", "=", "!=", "<", ">=", "-", "3", "2.5", "1e400", "'x'", "'%site%'",
          "99999999999999999999999", "''", "'it''s'", ";", "--", "select", "read_csv("]


@settings(max_examples=100, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
@given(pieces=st.lists(st.sampled_from(PIECES), min_size=1, max_size=9),
       kept=st.sampled_from([None, "true", "false"]))
def test_random_filters_from_the_grammars_pieces_are_answered_or_refused(job, pieces, kept):
    params = {"where": " ".join(pieces), "limit": 5} | ({"kept": kept} if kept else {})
    response = job.client().get(f"/jobs/{JOB_ID}/documents", params=params)
    assert response.status_code in (200, 422), (params, response.text)


def test_schemathesis_finds_no_server_error_on_these_routes(job):
    schemathesis = pytest.importorskip("schemathesis")
    from hypothesis import Phase
    from schemathesis import GenerationMode
    from schemathesis.checks import not_a_server_error

    auth = {"Authorization": f"Bearer {TOKEN}"}
    schema = schemathesis.openapi.from_url(f"{job.url}/openapi.json", headers=auth)
    operations = [result.ok() for result in schema.get_all_operations()
                  if result.ok().path.startswith(("/jobs/{job_id}/documents",
                                                  "/jobs/{job_id}/whatif"))]
    assert {op.path for op in operations} == {"/jobs/{job_id}/documents",
                                             "/jobs/{job_id}/documents/{doc_id}",
                                             "/jobs/{job_id}/whatif"}
    statuses: set[int] = set()
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(max_examples=30, deadline=None, database=None,
                      phases=[Phase.explicit, Phase.generate],
                      suppress_health_check=list(HealthCheck))
            def call(case):
                if mode is GenerationMode.POSITIVE:  # the real job, so the filters run
                    case.path_parameters["job_id"] = JOB_ID
                response = case.call(headers=auth, timeout=30)
                statuses.add(response.status_code)
                case.validate_response(response, checks=[not_a_server_error])

            call()
    assert 200 in statuses and 422 in statuses


def test_docs_page_states_the_page_limit():
    text = (Path(__file__).resolve().parents[1] / "docs" / "control_plane.md").read_text()
    assert f"at most {MAX_PAGE}" in text
