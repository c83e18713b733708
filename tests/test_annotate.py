"""`annotate` end to end: the openai engine against a scripted OpenAI-compatible server on
loopback (valid, fenced, malformed, out-of-range, refused, timed-out and rate-limited
answers), the transformers engine on tiny models built here, both through the real runner;
the answer parser, the sample and the token budget on their own."""

from __future__ import annotations

import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from tokenizers import Tokenizer

from pipeline.runner import run_job
from pipeline.spec import SpecError, load_spec
from stages._annotate.answer import AnswerField, json_schema, parse_answer
from stages._annotate.selection import Truncator, in_sample
from stages.annotate import Annotate, AnnotateConfig
from tests.conftest import WORDS, assert_accounting, make_text, write_jsonl, write_spec
from tests.scripted_lm import build_scripted_lm
from tests.tiny_lm import build_tiny_lm

EDU_FIELDS = {"rationale": AnswerField(type="str", required=False),
              "score": AnswerField(type="int", min=0, max=5)}


# -- a scripted OpenAI-compatible server -----------------------------------------------------
class _ScriptedServer(ThreadingHTTPServer):
    """Answers each document by the `case_<name>` word in its text: `valid` (score = the
    document's number mod 6), `fenced`, `malformed`, `prose`, `range`, `refusal`; `timeout`
    stalls the first request past the client's timeout, `ratelimit` answers the first with
    429 and Retry-After: 1. Records every request with its arrival time."""

    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _ScriptedHandler)
        self.lock = threading.Lock()
        self.requests: list[dict] = []

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"

    def seen(self, doc: int) -> list[dict]:
        return [r for r in self.requests if r["doc"] == doc]


class _ScriptedHandler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_POST(self):
        server: _ScriptedServer = self.server
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        prompt = body["messages"][-1]["content"]
        doc = int(re.search(r"docnum_(\d+)", prompt).group(1))
        case = re.search(r"case_(\w+)", prompt).group(1)
        with server.lock:
            first = not server.seen(doc)
            server.requests.append({"doc": doc, "at": time.monotonic(), "body": body})
        if case == "ratelimit" and first:
            return self._send(429, {"error": {"message": "slow down"}}, {"Retry-After": "1"})
        if case == "timeout" and first:
            time.sleep(1.0)  # the client gave up at 0.4 s and retries
        answers = {
            "valid": json.dumps({"rationale": "explains a topic", "score": doc % 6}),
            "fenced": 'Here you go:\n```json\n{"Rationale": "ok", "SCORE": "4",}\n```',
            "malformed": '{"rationale": "unfinished", "score": }',
            "prose": "This page is quite educational, I would say high.",
            "range": json.dumps({"rationale": "very good", "score": 9}),
            "refusal": "I'm sorry, but I can't help with rating this document.",
            "timeout": json.dumps({"rationale": "late", "score": 2}),
            "ratelimit": json.dumps({"rationale": "patient", "score": 5}),
        }
        self._send(200, {"id": "x", "object": "chat.completion", "model": body["model"],
                         "choices": [{"index": 0, "finish_reason": "stop",
                                      "message": {"role": "assistant",
                                                  "content": answers[case]}}],
                         "usage": {"completion_tokens": 7}})

    def _send(self, status: int, payload: dict, headers: dict | None = None) -> None:
        data = json.dumps(payload).encode()
        try:
            self.send_response(status)
            for name, value in {"Content-Type": "application/json", **(headers or {})}.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client timed out and left


@pytest.fixture()
def server():
    server = _ScriptedServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def doc(i: int, case: str, words: int = 20) -> dict:
    return {"id": f"d{i}", "text": f"docnum_{i} case_{case} " + make_text(i, words)}


def annotate_spec(tmp_path: Path, out: str, options: str) -> Path:
    return write_spec(tmp_path / f"{out}.yaml", f"""\
name: annotate-test
input: {{format: jsonl, paths: ["in/*.jsonl"]}}
output: {{path: {out}}}
stages:
  - annotate: {options}
""")


def rows(out: Path, folder: str) -> list[dict]:
    return [r for f in sorted((out / folder).glob("part-*.parquet"))
            for r in pq.read_table(f).to_pylist()]


def openai_options(server: _ScriptedServer, extra: str = "") -> str:
    return (f"{{preset: edu, engine: openai, model: judge, {extra}openai: {{base_url: "
            f"'{server.base_url}', timeout_s: 0.4, backoff_s: 0.01, max_concurrency: 4}}}}")


# -- openai engine through the runner --------------------------------------------------------
def test_openai_answers_become_typed_columns_or_a_stated_error(tmp_path, ray_cluster, server):
    cases = ["valid", "valid", "valid", "fenced", "malformed", "prose", "range", "refusal",
             "timeout", "ratelimit", "valid"]
    docs = [doc(i, case) for i, case in enumerate(cases)]
    docs.append(doc(11, "valid", words=300))  # past the budget below
    docs.append({"id": "d12", "text": "   "})
    write_jsonl(tmp_path / "in" / "a.jsonl", docs[:7])
    write_jsonl(tmp_path / "in" / "b.jsonl", docs[7:])
    spec = annotate_spec(tmp_path, "out", openai_options(server, "max_input_tokens: 60, "))
    run_job(load_spec(spec), progress=False)

    manifests = assert_accounting(tmp_path / "out")
    assert rows(tmp_path / "out", "rejected") == []  # no threshold: every row kept
    kept = {r["id"]: r for r in rows(tmp_path / "out", "data")}
    assert sorted(kept) == sorted(d["id"] for d in docs)
    got = {i: (kept[f"d{i}"]["edu_score"], kept[f"d{i}"]["annotate_error"]) for i in range(13)}
    assert got == {0: (0, None), 1: (1, None), 2: (2, None), 3: (4, None),
                   4: (None, "missing:score"), 5: (None, "no_json"),
                   6: (None, "out_of_range:score=9"), 7: (None, "refusal"),
                   8: (2, None), 9: (5, None), 10: (4, None), 11: (5, None),
                   12: (None, "empty_text")}
    assert kept["d6"]["edu_rationale"] == "very good"  # the usable part of an answer stays
    schema = pq.read_schema(next((tmp_path / "out" / "data").glob("*.parquet")))
    assert schema.field("edu_score").type == pa.int64()
    assert schema.field("annotate_error").type == pa.string()

    # retries: the timed-out and the rate-limited requests were sent again, the latter only
    # after the server's Retry-After (our own backoff would have waited 0.01 s)
    assert len(server.seen(8)) == 2 and len(server.seen(9)) == 2
    first, second = server.seen(9)
    assert second["at"] - first["at"] >= 0.9
    assert {r["doc"] for r in server.requests} == set(range(12))  # the blank one never sent
    assert len(server.requests) == 14

    body = server.seen(0)[0]["body"]
    assert body["temperature"] == 0 and body["max_tokens"] == 160
    assert body["response_format"]["type"] == "json_schema"
    assert body["response_format"]["json_schema"]["schema"] == json_schema(EDU_FIELDS)
    assert '"score" (an integer from 0 to 5)' in body["messages"][-1]["content"]
    long_prompt = server.seen(11)[0]["body"]["messages"][-1]["content"]
    head = docs[11]["text"].split()
    assert " ".join(head[:60]) in long_prompt and " ".join(head[:61]) not in long_prompt
    counters = {}
    for step in (s for m in manifests for s in m["stages"] if s["stage"] == "annotate"):
        for name, value in step["counters"].items():
            counters[name] = counters.get(name, 0) + value
    assert counters == {"annotated": 12, "annotate_errors": 5, "truncated": 1}


def test_sample_is_chosen_by_id_and_only_sample_rejects_the_rest(tmp_path, ray_cluster, server):
    docs = [doc(i, "valid") for i in range(40)]
    write_jsonl(tmp_path / "in" / "a.jsonl", docs[:20])
    write_jsonl(tmp_path / "in" / "b.jsonl", docs[20:])
    expected = {d["id"] for d, chosen in zip(docs, in_sample([d["id"] for d in docs], 0.3, 5))
                if chosen}
    assert 4 <= len(expected) <= 20

    # keep the others, with null columns
    options = openai_options(server, "sample: 0.3, sample_seed: 5, ")
    run_job(load_spec(annotate_spec(tmp_path, "all", options)), progress=False)
    kept = rows(tmp_path / "all", "data")
    assert len(kept) == 40 and rows(tmp_path / "all", "rejected") == []
    assert {r["id"] for r in kept if r["edu_score"] is not None} == expected
    assert all(r["annotate_error"] is None for r in kept)
    assert {f"d{r['doc']}" for r in server.requests} == expected

    # only the sample, and a threshold: the rest rejected with a reason, never dropped
    server.requests.clear()
    options = openai_options(server, "sample: 0.3, sample_seed: 5, only_sample: true, "
                                     "threshold: 3, ")
    run_job(load_spec(annotate_spec(tmp_path, "only", options)), progress=False)
    assert_accounting(tmp_path / "only")
    kept, rejected = rows(tmp_path / "only", "data"), rows(tmp_path / "only", "rejected")
    assert len(kept) + len(rejected) == 40
    assert {r["id"] for r in kept} == {i for i in expected if int(i[1:]) % 6 >= 3}
    reasons = {r["id"]: r["reason"] for r in rejected}
    for i in range(40):
        if f"d{i}" not in expected:
            assert reasons[f"d{i}"] == "annotate:not_sampled"
        elif i % 6 < 3:
            assert reasons[f"d{i}"] == f"annotate:edu_score={i % 6}"
    assert {f"d{r['doc']}" for r in server.requests} == expected  # same sample again


# -- transformers engine through the runner --------------------------------------------------
@pytest.fixture(scope="module")
def scripted_lm(tmp_path_factory) -> Path:
    return build_scripted_lm(tmp_path_factory.mktemp("lm") / "scripted",
                             '{"rationale": "clear explanation", "score": 3}', [" ".join(WORDS)])


def test_transformers_engine_runs_end_to_end(tmp_path, ray_cluster, scripted_lm):
    docs = [{"id": f"d{i}", "text": make_text(i, 10 + 3 * i)} for i in range(6)]
    docs.append({"id": "blank", "text": ""})
    write_jsonl(tmp_path / "in" / "a.jsonl", docs)
    options = (f"{{preset: edu, engine: transformers, model: {scripted_lm}, threshold: 4, "
               "max_input_tokens: 16, transformers: {batch_size: 4}}")
    run_job(load_spec(annotate_spec(tmp_path, "out", options)), progress=False)
    assert_accounting(tmp_path / "out")
    kept, rejected = rows(tmp_path / "out", "data"), rows(tmp_path / "out", "rejected")
    # every document scored 3 - below the threshold of 4 - except the blank one, kept
    assert [(r["id"], r["edu_score"], r["annotate_error"]) for r in kept] == \
        [("blank", None, "empty_text")]
    assert sorted(r["id"] for r in rejected) == [f"d{i}" for i in range(6)]
    assert {(r["reason"], r["edu_score"], r["edu_rationale"]) for r in rejected} == \
        {("annotate:edu_score=3", 3, "clear explanation")}


def test_custom_prompt_and_schema_and_unparsable_babble(tmp_path):
    answer = '{"topic": "Science", "quality": 0.75, "ad": false}'
    model = build_scripted_lm(tmp_path / "custom", answer, [" ".join(WORDS)])
    schema = {"topic": {"type": "str", "enum": ["science", "sport", "other"]},
              "quality": {"type": "float", "min": 0, "max": 1},
              "ad": {"type": "bool"}}
    stage = Annotate(AnnotateConfig(
        preset="custom", engine="transformers", model=str(model), prefix="page",
        prompt="Page from {url}:\n{text}", answer=schema, threshold=0.8))
    stage.setup()
    assert stage.requires() == ("text", "url")
    table = pa.table({"id": ["a", "b"], "text": [make_text(1, 12), make_text(2, 12)],
                      "url": ["https://x.org/1", "https://x.org/2"]})
    out = stage.process(table)
    assert out.table["page_topic"].to_pylist() == ["science", "science"]  # as the enum spells it
    assert out.table["page_quality"].to_pylist() == [0.75, 0.75]
    assert out.table["page_ad"].to_pylist() == [False, False]
    assert out.table.schema.field("page_ad").type == pa.bool_()
    assert out.reasons.to_pylist() == ["annotate:page_quality=0.75"] * 2

    babble = build_tiny_lm(tmp_path / "babble", [" ".join(WORDS)], eos_logit=0.0)
    stage = Annotate(AnnotateConfig(preset="dataman", engine="transformers", model=str(babble),
                                    max_tokens=8))
    stage.setup()
    out = stage.process(table.select(["id", "text"]))
    assert out.reasons is None and out.table.num_rows == 2  # nothing dropped, nothing guessed
    assert out.table["dataman_overall"].null_count == 2
    assert set(out.table["annotate_error"].to_pylist()) <= {"no_json", "truncated"}
    assert out.counters["annotate_errors"] == 2


# -- the parts on their own ------------------------------------------------------------------
def test_parser_is_tolerant_of_form_and_never_guesses_content():
    def parse(text, finish="stop"):
        return parse_answer(text, finish, EDU_FIELDS, "edu")

    assert parse('{"rationale": "ok", "score": 3}') == ({"rationale": "ok", "score": 3}, None)
    assert parse("Sure.\n```json\n{'Rationale': 'ok', 'edu_score': 4.0,}\n```")[0] == \
        {"rationale": "ok", "score": 4}
    assert parse('{"score": "5"}') == ({"rationale": None, "score": 5}, None)
    assert parse("Rationale: short\nScore: 2") == ({"rationale": "short", "score": 2}, None)
    assert parse('{"score": 3.5}')[1] == "invalid:score=3.5"
    assert parse('{"score": true}')[1] == "invalid:score=true"
    assert parse("score: 3 out of 5")[1] == "invalid:score=3 out of 5"
    assert parse('{"score": -1}')[1] == "out_of_range:score=-1"
    assert parse('{"rationale": "why"}') == ({"rationale": "why", "score": None},
                                              "missing:score")
    assert parse('{"rationale": "cut off, so', "length")[1] == "truncated"
    assert parse('{"rationale": "x", "score": 9}', "length")[1] == \
        "out_of_range:score=9; truncated"
    assert parse("As an AI, I cannot judge this.")[1] == "refusal"
    assert parse("Fine text.", "content_filter")[1] == "refusal"
    assert parse("  ")[1] == "empty_answer"
    assert parse("It is good.")[1] == "no_json"
    domain = {"domain": AnswerField(type="str", enum=["law", "other"])}
    assert parse_answer('{"domain": "sports"}', "stop", domain)[1] == "invalid:domain=sports"
    assert parse_answer('{"domain": "LAW"}', "stop", domain)[0] == {"domain": "law"}


def test_sample_is_deterministic_nested_and_near_its_fraction():
    ids = [f"doc-{i}" for i in range(4000)]
    small, large = in_sample(ids, 0.02, 0), in_sample(ids, 0.1, 0)
    assert (small == in_sample(ids, 0.02, 0)).all()
    assert 40 <= small.sum() <= 120 and 320 <= large.sum() <= 480
    assert not (small & ~large).any()  # a larger fraction keeps the smaller one's choice
    assert (in_sample(ids, 0.02, 1) != small).any()
    assert in_sample(ids, 1.0, 0).all()


def test_truncation_cuts_at_a_token_boundary(scripted_lm):
    tokenizer = Tokenizer.from_file(str(scripted_lm / "tokenizer.json"))
    texts = ["river bridge library harvest orchestra", "river bridge", "a " * 10_000]
    cut, n = Truncator(3, tokenizer).cut(texts)
    assert cut[:2] == ["river bridge library", "river bridge"] and n == 2
    assert cut[2] == "a a a"
    assert Truncator(2).cut(["one  two three"]) == (["one  two"], 1)  # words without one
    assert Truncator(None).cut(texts) == (texts, 0)


def test_spec_errors_name_the_problem(tmp_path):
    write_jsonl(tmp_path / "in" / "a.jsonl", [doc(0, "valid")])

    def problem(options: str) -> str:
        with pytest.raises(SpecError) as info:
            load_spec(annotate_spec(tmp_path, "bad", options))
        return str(info.value)

    endpoint = "engine: openai, model: m, openai: {base_url: 'http://x/v1'}"
    assert "preset custom needs `prompt:`" in problem(f"{{preset: custom, {endpoint}}}")
    assert "has its own prompt and answer" in problem(f"{{prompt: 'Rate {{text}}', {endpoint}}}")
    assert "no {text} placeholder" in problem(
        f"{{preset: custom, prompt: 'Rate it', answer: {{s: {{type: int}}}}, {endpoint}}}")
    assert "needs column 'title'" in problem(
        f"{{preset: custom, prompt: '{{title}}: {{text}}', answer: {{s: {{type: int}}}}, "
        f"{endpoint}}}")
    assert "min/max apply to int and float" in problem(
        f"{{preset: custom, prompt: '{{text}}', answer: {{s: {{type: str, min: 1}}}}, "
        f"{endpoint}}}")
    assert "threshold_field 'quality'" in problem(
        f"{{threshold: 3, threshold_field: quality, {endpoint}}}")
    assert "threshold compares a number" in problem(
        f"{{preset: dataman, threshold: 3, threshold_field: domain, {endpoint}}}")
    assert "engine openai needs" in problem("{engine: openai, model: m}")
    assert "model folder not found" in problem("{engine: transformers, model: nowhere}")
    assert "exceed vllm.max_model_len (2048)" in problem(
        "{engine: vllm, model: /models/q, vllm: {max_model_len: 2048}}")
    spec = load_spec(annotate_spec(tmp_path, "ok", f"{{preset: dataman, sample: 0.1, "
                                                   f"{endpoint}}}"))
    assert spec.steps[0].stage.requires() == ("text", "id")
    assert spec.columns_after[0][-3:] == ["dataman_overall", "dataman_domain", "annotate_error"]


def test_vllm_gets_the_schema_under_the_name_its_release_uses(monkeypatch):
    """No vLLM here: stand-ins for its `sampling_params` module, new (structured_outputs)
    and old (guided_decoding), check which argument the engine builds from the schema."""
    import sys
    import types

    from stages._rephrase.engines.vllm import structured_outputs

    class Params:
        def __init__(self, json):
            self.json = json

    schema = json.dumps(json_schema(EDU_FIELDS))
    new, old = types.ModuleType("vllm.sampling_params"), types.ModuleType("vllm.sampling_params")
    new.StructuredOutputsParams, new.GuidedDecodingParams = Params, Params
    old.GuidedDecodingParams = Params
    monkeypatch.setitem(sys.modules, "vllm", types.ModuleType("vllm"))
    monkeypatch.setitem(sys.modules, "vllm.sampling_params", new)
    (name, params), = structured_outputs(schema).items()
    assert name == "structured_outputs" and params.json == json_schema(EDU_FIELDS)
    monkeypatch.setitem(sys.modules, "vllm.sampling_params", old)
    (name, params), = structured_outputs(schema).items()
    assert name == "guided_decoding" and params.json == json_schema(EDU_FIELDS)
    stage = Annotate(AnnotateConfig(engine="vllm", model="/models/q",
                                    vllm={"tensor_parallel_size": 2}))
    assert (stage.resources().gpus, stage.packages()) == (2, {"vllm": "gpu"})


# -- pipeline whatif on annotate's threshold -------------------------------------------------
def test_whatif_on_the_threshold_equals_a_rerun(tmp_path, ray_cluster, server, capsys):
    from tests.test_whatif import assert_same_as_rerun
    docs = [doc(i, "malformed" if i % 7 == 0 else "valid") for i in range(36)]
    write_jsonl(tmp_path / "in" / "a.jsonl", docs)
    base = openai_options(server, "sample: 0.7, ")
    run_job(load_spec(annotate_spec(tmp_path, "base", base)), progress=False)
    for settings, options in (
            (["annotate.threshold=3"], "sample: 0.7, threshold: 3, "),
            (["annotate.threshold=2", "annotate.reject_errors=true"],
             "sample: 0.7, threshold: 2, reject_errors: true, ")):
        out = "rerun" + str(len(settings))
        run_job(load_spec(annotate_spec(tmp_path, out, openai_options(server, options))),
                progress=False)
        result = assert_same_as_rerun(capsys, tmp_path / "base", tmp_path / out, settings)
        assert result["changed"]["now_rejected"]["docs"] > 0
