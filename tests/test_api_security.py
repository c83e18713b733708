"""The control plane never trusts a request (docs/architecture.md, "Invariants" 6): token on
every route but /healthz, paths only under the storage roots, bounded requests, no code from
a request.

The service here points at a port where no Ray listens: a spec that wrongly got through
validation would come back 503, never run.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from fastapi.openapi.utils import get_openapi

from pipeline.registry import get_stage_class
from stages.decontam import Decontam
from stages.langid import LangId, default_model_path
from tests.api_support import TOKEN, ServiceThread, make_root, service_config, submit_yaml

NO_RAY = "http://127.0.0.1:9"


@pytest.fixture
def svc(tmp_path):
    root = make_root(tmp_path)
    config = service_config(tmp_path, None, root, ray_address=NO_RAY,
                            max_request_bytes=64 << 10, max_spec_bytes=16 << 10)
    with ServiceThread(config, reconcile=False) as running:
        running.root = root
        yield running


def quickstart(output: str = "../out/q", paths: str = "[data/sample-*.jsonl]",
               stages: str = "  - length_filter: {min_words: 20}") -> str:
    return (f"name: q\ninput:\n  format: jsonl\n  paths: {paths}\noutput:\n  path: {output}\n"
            f"stages:\n{stages}\n")


def protected_operations(app) -> list[tuple[str, str]]:
    schema = get_openapi(title="t", version="1", routes=app.routes)
    return [(method.upper(), path.replace("{job_id}", "some-job"))
            for path, item in schema["paths"].items() for method in item
            if path != "/healthz"] + [("GET", "/openapi.json")]


@pytest.mark.parametrize("token", [None, "wrong-token", f"{TOKEN}x", ""])
def test_every_route_but_healthz_needs_the_token(svc, token):
    operations = protected_operations(svc.app)
    assert {"/jobs", "/jobs/some-job", "/jobs/some-job/logs", "/jobs/some-job/cancel",
            "/jobs/some-job/report", "/metrics", "/openapi.json"} <= {p for _, p in operations}
    client = svc.client(token)
    for method, path in operations:
        response = client.request(method, path, content=b"name: x\n",
                                  headers={"Content-Type": "application/yaml"})
        assert response.status_code == 401, (method, path, response.text)
        assert response.headers["www-authenticate"] == "Bearer"
    basic = svc.client(None).get("/jobs", headers={"Authorization": f"Basic {TOKEN}"})
    assert basic.status_code == 401
    assert svc.client(token).get("/healthz").json()["status"] == "ok"


def test_the_right_token_opens_every_route(svc):
    client = svc.client()
    for method, path in protected_operations(svc.app):
        response = client.request(method, path, content=b"name: x\n",
                                  headers={"Content-Type": "application/yaml"})
        assert response.status_code != 401, (method, path)
    # The dashboard's pages carry no data and load without the token.
    for page in ("/ui/", "/ui/submit", "/ui/jobs/some-job", "/ui/static/app.js"):
        response = svc.client(None).get(page)
        assert response.status_code == 200, page
    assert "script-src 'self'" in svc.client(None).get("/ui/").headers["content-security-policy"]


def _outside(tmp_path: Path) -> Path:
    outside = tmp_path / "outside"
    outside.mkdir(exist_ok=True)
    (outside / "secret.jsonl").write_text('{"text": "not yours"}\n')
    return outside


def escape_specs(tmp_path: Path, root: Path) -> dict[str, tuple[str, dict]]:
    outside = _outside(tmp_path)
    os.symlink(outside, root / "examples" / "link")
    return {
        "relative output climbing out": (quickstart(output="../../../outside/o"), {}),
        "absolute output elsewhere": (quickstart(output=str(outside / "o")), {}),
        "output is the root itself": (quickstart(output=".."), {}),
        "absolute input file": (quickstart(paths=f"[{outside}/secret.jsonl]"), {}),
        "input glob elsewhere": (quickstart(paths="['/etc/*.conf']"), {}),
        "dotdot after a wildcard": (quickstart(paths="['data/*/../../../outside/*']"), {}),
        "input through a symlink": (quickstart(paths="[link/*.jsonl]"), {}),
        "output through a symlink": (quickstart(output="link/o"), {}),
        "file url input": (quickstart(paths=f"['file://{outside}/secret.jsonl']"), {}),
        "file url output": (quickstart(output=f"file://{outside}/o"), {}),
        "url outside the roots": (quickstart(output="s3://bucket/o"), {}),
        "chained url": (quickstart(output="simplecache::s3://bucket/o"), {}),
        "nul byte": (quickstart(output='"o\\0ut"'), {}),
        "base_dir climbing out": (quickstart(output="o"), {"base_dir": "../.."}),
        "base_dir elsewhere": (quickstart(output="o"), {"base_dir": str(outside)}),
        "base_dir with a nul byte": (quickstart(output="o"), {"base_dir": "exam\0ples"}),
    }


def test_specs_cannot_reach_outside_the_storage_roots(svc, tmp_path):
    for case, (text, params) in escape_specs(tmp_path, svc.root).items():
        params = {"base_dir": "examples", **params}
        response = submit_yaml(svc.client(), text, **params)
        assert response.status_code == 422, (case, response.status_code, response.text)
        errors = response.json()["errors"]
        assert errors, case
        if "base_dir" not in case:
            assert all(e["line"] in (4, 6) for e in errors), (case, errors)
    assert svc.client().get("/jobs").json()["total"] == 0


def test_stage_options_naming_files_are_held_to_the_roots(svc, tmp_path):
    # both ship with the project: a broken import fails here, it is never a skip
    assert (get_stage_class("langid"), get_stage_class("decontam")) == (LangId, Decontam)
    outside = _outside(tmp_path)
    os.symlink(outside / "secret.jsonl", svc.root / "examples" / "lid.ftz")
    for stage, line in ((f"langid: {{model: '{outside}/secret.jsonl'}}", 8),
                        ("langid: {model: '~/lid.ftz'}", 8),
                        ("langid: {model: '../../outside/secret.jsonl'}", 8),
                        ("langid: {model: lid.ftz}", 8),  # a symlink leading out
                        (f"decontam:\n      benchmarks:\n        - {{path: {outside}/b.jsonl}}",
                         10)):
        text = quickstart(stages=f"  - {stage}")
        response = submit_yaml(svc.client(), text, base_dir="examples")
        assert response.status_code == 422, (stage, response.text)
        error = response.json()["errors"][0]
        assert "outside the storage roots" in error["message"], (stage, error)
        assert error["line"] == line, (stage, error)


def test_stage_files_inside_the_roots_pass(svc):
    assert get_stage_class("langid") is LangId
    models = svc.root / "examples" / "models"
    models.mkdir()
    shutil.copy(default_model_path(), models / "lid.ftz")
    text = quickstart(stages="  - langid: {model: models/lid.ftz, keep: [en]}")
    response = submit_yaml(svc.client(), text, base_dir="examples")
    # Valid and inside the roots: only the missing Ray (on purpose, here) stops it.
    assert response.status_code == 503, response.text


def test_invalid_specs_come_back_with_their_line(svc):
    text = quickstart(stages="  - length_filter: {min_word: 20}\n  - no_such_stage: {}")
    response = submit_yaml(svc.client(), text, base_dir="examples")
    assert response.status_code == 422
    errors = response.json()["errors"]
    assert [e["line"] for e in errors] == [8, 9]
    assert "did you mean 'min_words'" in errors[0]["message"]
    assert errors[0]["message"].startswith("line 8: ")
    # As a JSON object: the answer carries the text the line numbers refer to.
    response = svc.client().post("/jobs", json={"spec": {"name": "q", "input": {
        "format": "jsonl", "paths": ["data/*.jsonl"]}, "output": {"path": "o"},
        "stages": [{"length_filter": {"bogus": 1}}]}, "base_dir": "examples"})
    assert response.status_code == 422
    body = response.json()
    line = body["errors"][0]["line"]
    assert '"bogus"' in body["spec_text"].splitlines()[line - 1]


def test_requests_are_bounded(svc):
    client = svc.client()
    big = b"name: x\n" + b"#" * (70 << 10) + b"\n"
    assert submit_yaml(client, big.decode()).status_code == 413  # Content-Length

    def chunks():
        for _ in range(70):
            yield b"#" * 1024 + b"\n"
    response = client.post("/jobs", content=chunks(),
                           headers={"Content-Type": "application/yaml"})
    assert response.status_code == 413  # streamed, no Content-Length
    spec = quickstart() + "# " + "x" * (20 << 10) + "\n"
    assert submit_yaml(client, spec, base_dir="examples").status_code == 413  # spec limit
    bomb = "a: &a [x, x, x, x]\nb: &b [*a, *a, *a, *a]\nc: [*b, *b, *b, *b]\n"
    response = submit_yaml(client, bomb)
    assert response.status_code == 422 and "aliases" in response.json()["errors"][0]["message"]
    deep = "a: " + "[" * 200 + "]" * 200 + "\n"
    assert submit_yaml(client, deep).status_code == 422
    assert client.post("/jobs", content=b"name: x", headers={
        "Content-Type": "application/x-www-form-urlencoded"}).status_code == 415
    assert client.post("/jobs", content=b"{not json",
                       headers={"Content-Type": "application/json"}).status_code == 422


def test_no_request_makes_the_service_run_code(svc, tmp_path):
    marker = tmp_path / "pwned"
    for text in (f"!!python/object/apply:os.system ['touch {marker}']\n",
                 f"name: q\nx: !!python/object/apply:os.system ['touch {marker}']\n",
                 quickstart(stages="  - os.system: {}"),
                 quickstart(stages="  - pipeline.runner.run_job: {}")):
        response = submit_yaml(svc.client(), text, base_dir="examples")
        assert response.status_code == 422, response.text
    assert not marker.exists()


def crawl_spec(base_line: str = "") -> str:
    return ("name: cc\ninput:\n  format: warc\n  crawl: CC-MAIN-2024-51\n  files: '0:1'\n"
            f"{base_line}output:\n  path: ../out/cc\nstages:\n  - extract: {{}}\n")


def test_a_crawl_base_is_held_to_the_roots_before_anything_is_fetched(svc, tmp_path):
    outside = _outside(tmp_path)
    for text, line in ((crawl_spec(), 4),  # the default base, s3://commoncrawl/
                       (crawl_spec(f"  base: {outside}\n"), 6),
                       (crawl_spec("  base: s3://elsewhere/\n"), 6)):
        response = submit_yaml(svc.client(), text, base_dir="examples")
        assert response.status_code == 422, (text, response.text)
        errors = response.json()["errors"]
        assert [e["line"] for e in errors] == [line], errors
        assert "outside the storage roots" in errors[0]["message"], errors


def test_a_crawl_mirror_may_be_a_storage_root_itself(svc):
    # only read from, so the root itself is allowed; the listing is missing, which is the
    # next (and a different) complaint
    response = submit_yaml(svc.client(), crawl_spec(f"  base: {svc.root}\n"),
                           base_dir="examples")
    assert response.status_code == 422, response.text
    assert "storage root" not in response.text and "no listing at" in response.text
