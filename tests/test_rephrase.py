"""`rephrase` end to end on a tiny model built here: transformers through the real runner,
openai against a real HTTP server serving that model, vllm's configuration without a GPU."""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import xxhash
from tokenizers import Tokenizer

from pipeline.runner import JobError, _worker_options, run_job, segments_of
from pipeline.spec import SpecError, load_spec
from pipeline.stage import Resources
from stages._rephrase.checks import Checker, ChecksConfig
from stages._rephrase.chunking import Chunker
from stages._rephrase.engines import EngineError, Generation, Sampling
from stages._rephrase.engines.openai import OpenAIEngine, OpenAIOptions
from stages._rephrase.engines.transformers import TransformersEngine
from stages._rephrase.engines.vllm import VllmOptions, llm_kwargs, sampling_kwargs
from stages._rephrase.prompts import STYLES
from stages.rephrase import Rephrase, RephraseConfig
from tests.conftest import WORDS, assert_accounting, make_text, write_jsonl, write_spec
from tests.tiny_lm import build_tiny_lm

VOCABULARY = [" ".join(WORDS), "the a of and is . , question answer"]


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory) -> Path:
    """Stops on its own after ~15 words on average."""
    return build_tiny_lm(tmp_path_factory.mktemp("lm") / "tiny", VOCABULARY, eos_logit=0.5)


@pytest.fixture(scope="module")
def endless_lm(tmp_path_factory) -> Path:
    """Never emits end-of-sequence: every generation runs into max_tokens."""
    return build_tiny_lm(tmp_path_factory.mktemp("lm") / "endless", VOCABULARY, eos_logit=None)


def docs(n: int, offset: int = 0, words: int = 30) -> list[dict]:
    return [{"id": f"d{i}", "text": make_text(i, words + i % 7), "url": f"https://x.org/{i}"}
            for i in range(offset, offset + n)]


def rephrase_spec(tmp_path: Path, out: str, options: str, inputs: str = "in/*.jsonl",
                  resources: str = "") -> Path:
    return write_spec(tmp_path / f"{out}.yaml", f"""\
name: rephrase-test
input: {{format: jsonl, paths: ["{inputs}"]}}
output: {{path: {out}}}
{resources}
stages:
  - rephrase: {options}
""")


def rows(out: Path, folder: str) -> list[dict]:
    return [r for f in sorted((out / folder).glob("part-*.parquet"))
            for r in pq.read_table(f).to_pylist()]


def stage_entries(out: Path, name: str = "rephrase") -> list[dict]:
    return [s for p in sorted((out / "manifests").glob("part-*.json"))
            for s in json.loads(p.read_text())["stages"] if s["stage"] == name]


# -- transformers engine through the runner --------------------------------------------------
def test_append_adds_synthetic_rows_accounts_for_them_and_reruns_match(tmp_path, ray_cluster,
                                                                         tiny_lm):
    write_jsonl(tmp_path / "in" / "a.jsonl", docs(10))
    write_jsonl(tmp_path / "in" / "b.jsonl", docs(10, offset=10))
    options = (f"{{engine: transformers, model: {tiny_lm}, style: [wikipedia, qa], "
               "max_tokens: 40, temperature: 1.0, seed: 7, transformers: {batch_size: 6}}")
    outputs = []
    for out in ("out1", "out2"):
        run_job(load_spec(rephrase_spec(tmp_path, out, options)), progress=False)
        outputs.append((rows(tmp_path / out, "data"), rows(tmp_path / out, "rejected")))
    kept, rejected = outputs[0]
    assert outputs[0] == outputs[1]  # same seed, same texts and ids

    originals = [r for r in kept if not r["synthetic"]]
    assert sorted(r["id"] for r in originals) == sorted(f"d{i}" for i in range(20))
    synthetic = [r for r in kept if r["synthetic"]] + rejected
    assert len(synthetic) == 40  # one per document and style, kept or rejected
    for row in synthetic:
        assert row["style"] in ("wikipedia", "qa")
        assert row["id"] == xxhash.xxh3_64_hexdigest(f"{row['parent_id']}:{row['style']}".encode())
        assert row["url"] == f"https://x.org/{row['parent_id'][1:]}"  # parent's columns
    assert len([r for r in kept if r["synthetic"]]) >= 20
    assert all(r["reason"].startswith("rephrase:") and r["stage"] == "rephrase"
               for r in rejected)
    parent = None
    for row in kept:  # synthetic rows follow their parent
        if row["synthetic"]:
            assert row["parent_id"] == parent and row["text"] and row["rephrase_tokens"] > 0
        else:
            parent = row["id"]

    for entry in stage_entries(tmp_path / "out1"):
        assert entry["in"] == 10 and entry["added"] == 20
        assert entry["in"] + entry["added"] == entry["kept"] + entry["rejected"]
    summary = json.loads((tmp_path / "out1" / "report" / "summary.json").read_text())
    assert summary["docs"]["kept"] + summary["docs"]["rejected"] == 60

    before = {p: p.read_bytes() for p in (tmp_path / "out1" / "data").iterdir()}
    again = run_job(load_spec(rephrase_spec(tmp_path, "out1", options)), progress=False)
    assert again.skipped == 2  # committed shards are not generated again
    assert before == {p: p.read_bytes() for p in (tmp_path / "out1" / "data").iterdir()}


def test_replace_rewrites_long_documents_chunk_by_chunk(tmp_path, ray_cluster, endless_lm):
    paragraphs = [make_text(50 + k, 30) + "." for k in range(4)]
    long_text = "\n\n".join(paragraphs)
    write_jsonl(tmp_path / "in" / "a.jsonl", [{"id": "long", "text": long_text},
                                              {"id": "short", "text": make_text(3, 12)},
                                              {"id": "blank", "text": "   "}])
    # The endless model writes exactly max_tokens words per chunk: no chunk comes back empty.
    options = (f"{{engine: transformers, model: {endless_lm}, mode: replace, style: distill, "
               "chunk_tokens: 40, max_tokens: 12, temperature: 1.0, checks: {truncated: false}}")
    run_job(load_spec(rephrase_spec(tmp_path, "out", options)), progress=False)
    by_id = {r["id"]: r for r in rows(tmp_path / "out", "data") + rows(tmp_path / "out",
                                                                       "rejected")}
    assert by_id["long"]["original_text"] == long_text
    assert by_id["long"]["style"] == "distill" and "reason" not in by_id["long"]
    expected = Chunker(40, Tokenizer.from_file(str(endless_lm / "tokenizer.json"))).split(
        [long_text])[0]
    assert len(expected) == 4 and "".join(expected) == long_text  # cut at the paragraphs
    # one output per chunk, joined by blank lines (the tiny model never writes one itself)
    assert by_id["long"]["text"].count("\n\n") == len(expected) - 1
    assert by_id["long"]["rephrase_tokens"] == 12 * len(expected)
    assert by_id["short"]["text"] != make_text(3, 12) and "\n\n" not in by_id["short"]["text"]
    assert by_id["blank"]["reason"] == "rephrase:empty_input"
    assert by_id["blank"]["original_text"] == "   "


def test_generations_cut_off_at_max_tokens_are_rejected_as_truncated(tmp_path, ray_cluster,
                                                                    endless_lm):
    write_jsonl(tmp_path / "in" / "a.jsonl", docs(6))
    options = f"{{engine: transformers, model: {endless_lm}, max_tokens: 3, style: qa}}"
    run_job(load_spec(rephrase_spec(tmp_path, "out", options)), progress=False)
    kept, rejected = rows(tmp_path / "out", "data"), rows(tmp_path / "out", "rejected")
    assert sorted(r["id"] for r in kept) == sorted(f"d{i}" for i in range(6))
    assert [r["reason"] for r in rejected] == ["rephrase:truncated"] * 6
    assert all(r["rephrase_tokens"] == 3 and r["parent_id"] for r in rejected)


# -- post-checks and chunking, on their own --------------------------------------------------
def test_post_checks_find_empty_refusal_ratio_and_wrong_language():
    checker = Checker(ChecksConfig(min_ratio=0.2, max_ratio=2.0))
    checker.setup_language()
    assert checker.generation_reason(Generation("  \n", "stop", 1)) == "rephrase:empty"
    assert checker.generation_reason(Generation("The river", "length", 9)) == \
        "rephrase:truncated"
    assert checker.generation_reason(Generation("I'm sorry, but I can't help with that.",
                                                 "stop", 9)) == "rephrase:refusal"
    assert checker.generation_reason(Generation("Sure", "content_filter", 1)) == \
        "rephrase:refusal"
    assert checker.generation_reason(Generation("A sorry tale of a river.", "stop", 6)) is None
    assert checker.ratio_reason("ab", "a" * 100) == "rephrase:ratio=0.02"
    assert checker.ratio_reason("a" * 300, "a" * 100) == "rephrase:ratio=3.00"
    assert checker.ratio_reason("a" * 50, "a" * 100) is None
    english = "The river flows past the old library and the market, where farmers sell bread."
    german = "Der Fluss fließt an der alten Bibliothek und dem Markt vorbei, wo Bauern Brot " \
             "verkaufen."
    assert checker.language_reasons([english, german, german, "kurz"],
                                    ["en", "eng", None, "en"]) == [None, "rephrase:lang=de",
                                                                   None, None]
    silent = Checker(ChecksConfig(refusal=False, lang=False, truncated=False))
    silent.setup_language()
    assert silent.generation_reason(Generation("I'm sorry, but no.", "length", 3)) is None
    assert silent.language_reasons([german], ["en"]) == [None]


def test_outputs_not_in_the_rows_language_are_rejected(endless_lm):
    stage = Rephrase(RephraseConfig(engine="transformers", model=str(endless_lm),
                                    max_tokens=16, checks={"truncated": False}))
    stage.setup()
    table = pa.table({"id": ["a", "b"], "text": [make_text(1, 30), make_text(2, 30)],
                      "lang": ["en", "de"]})
    out = stage.process(table)
    synthetic = out.table.filter(out.table["synthetic"])
    reasons = dict(zip(synthetic["parent_id"].to_pylist(),
                       out.reasons.filter(out.table["synthetic"]).to_pylist()))
    # the tiny model writes English words: fine for `en`, the wrong language for `de`
    assert reasons == {"a": None, "b": "rephrase:lang=en"}


def test_chunks_are_exact_slices_cut_at_sentence_or_paragraph_ends(tiny_lm):
    tokenizer = Tokenizer.from_file(str(tiny_lm / "tokenizer.json"))
    text = ("river bridge library. harvest orchestra ferry museum volunteer. battery weather "
            "council wheat solar bread garden\nteacher station market island forest river")
    chunks = Chunker(8, tokenizer).split([text, "", None, "river bridge"])
    assert "".join(chunks[0]) == text and chunks[1:] == [[], [], ["river bridge"]]
    assert chunks[0][0] == "river bridge library. harvest orchestra ferry museum volunteer. "
    assert chunks[0][1:] == ["battery weather council wheat solar bread garden\n",
                             "teacher station market island forest river"]
    assert all(len(tokenizer.encode(c).ids) <= 8 for c in chunks[0])
    words = Chunker(4).split([text])[0]  # no tokenizer: words stand in for tokens
    assert "".join(words) == text and all(len(c.split()) <= 4 for c in words)
    assert Chunker(None).split([text]) == [[text]]


# -- spec validation -------------------------------------------------------------------------
def _spec_problem(tmp_path: Path, options: str, resources: str = "") -> str:
    write_jsonl(tmp_path / "in" / "a.jsonl", docs(2))
    with pytest.raises(SpecError) as info:
        load_spec(rephrase_spec(tmp_path, "bad", options, resources=resources))
    return str(info.value)


def test_spec_errors_name_the_problem(tmp_path, tiny_lm):
    model = f"model: {tiny_lm}, engine: transformers"
    assert "unknown style 'poem'" in _spec_problem(tmp_path, f"{{{model}, style: poem}}")
    assert "line 6" in _spec_problem(tmp_path, f"{{{model}, style: poem}}")
    assert "needs column 'title'" in _spec_problem(
        tmp_path, f"{{{model}, prompt: 'Summarise {{title}}: {{text}}'}}")
    assert "placeholder {text.upper} is not a plain column name" in _spec_problem(
        tmp_path, f"{{{model}, prompt: 'Say {{text.upper}}'}}")
    assert "no {text} placeholder" in _spec_problem(tmp_path, f"{{{model}, prompt: 'Hi {{url}}'}}")
    assert "mode replace rewrites text once" in _spec_problem(
        tmp_path, f"{{{model}, mode: replace, style: [qa, distill]}}")
    assert "`openai:` options are given but engine is 'transformers'" in _spec_problem(
        tmp_path, f"{{{model}, openai: {{base_url: 'http://x/v1'}}}}")
    assert "model folder not found: 'Qwen/Qwen3-1.7B'" in _spec_problem(
        tmp_path, "{model: Qwen/Qwen3-1.7B, engine: transformers}")
    assert "api_key_env" in _spec_problem(
        tmp_path, "{model: m, engine: openai, openai: {base_url: 'http://x/v1', "
                  "api_key_env: AWS_SECRET_ACCESS_KEY}}")
    assert "exceed vllm.max_model_len (1024)" in _spec_problem(
        tmp_path, "{model: /models/qwen, engine: vllm, chunk_tokens: 512, max_tokens: 1024, "
                  "vllm: {max_model_len: 1024}}", resources="resources: {gpus: 1}")
    prompt = "prompt: 'From {url}: {text}'"
    spec = load_spec(rephrase_spec(tmp_path, "ok", f"{{{model}, {prompt}}}"))
    assert spec.steps[0].stage.requires() == ("text", "id", "url")
    relative = os.path.relpath(tiny_lm, tmp_path)  # resolved against the spec's folder
    spec = load_spec(rephrase_spec(tmp_path, "rel", f"{{model: {relative}, engine: transformers}}"))
    assert spec.steps[0].stage.config.model == str(tiny_lm)
    assert spec.columns_after[0][-4:] == ["parent_id", "style", "synthetic", "rephrase_tokens"]


# -- vllm: configuration and resource requests, checked without a GPU or vllm ----------------
def test_vllm_engine_requests_gpus_and_builds_offline_engine_arguments(tmp_path, ray_cluster):
    write_jsonl(tmp_path / "in" / "a.jsonl", docs(2))
    options = ("{engine: vllm, model: /models/qwen, style: knowledge_list, max_tokens: 512, "
               "chunk_tokens: 256, seed: 3, vllm: {tensor_parallel_size: 2, "
               "max_model_len: 4096, max_num_seqs: 128}}")
    spec = load_spec(rephrase_spec(tmp_path, "gpu", options, resources="resources: {gpus: 2}"))
    stage = spec.steps[0].stage
    assert stage.resources() == Resources(cpus=2, gpus=2)
    assert _worker_options(segments_of(spec)[0])["num_gpus"] == 2
    assert llm_kwargs(stage.config.model, stage.config.vllm, None) == {
        "model": "/models/qwen", "tokenizer": "/models/qwen", "tensor_parallel_size": 2,
        "dtype": "auto", "gpu_memory_utilization": 0.9, "max_num_seqs": 128,
        "enforce_eager": False, "seed": 0, "trust_remote_code": False,
        "max_model_len": 4096, "distributed_executor_backend": "mp"}
    sampling = Sampling(0.7, 0.9, 512, 3)
    params = sampling_kwargs(sampling, "prompt one")
    assert params == {"n": 1, "temperature": 0.7, "top_p": 0.9, "max_tokens": 512,
                      "seed": sampling.seed_for("prompt one")}
    assert params["seed"] != sampling_kwargs(sampling, "prompt two")["seed"]
    shared = VllmOptions(gpus_per_replica=0.5, gpu_memory_utilization=0.4)
    assert shared.gpus == 0.5 and "distributed_executor_backend" not in llm_kwargs(
        "/m", shared, "/tok")

    # No GPU in the spec's resources: refused before any work, with the stage named.
    no_gpu = load_spec(rephrase_spec(tmp_path, "cpu-only", options))
    with pytest.raises(JobError, match=r"\['rephrase'\] need GPUs but resources.gpus is 0"):
        run_job(no_gpu, progress=False)
    # GPUs in the spec but none in the cluster: refused instead of waiting forever.
    with pytest.raises(RuntimeError, match=r"needs 2 GPU\(s\) per worker but the Ray "
                                           r"cluster has 0"):
        run_job(spec, progress=False)
    assert "vllm" not in sys.modules


# -- openai engine against a real server serving the tiny model -----------------------------
class _ChatServer(ThreadingHTTPServer):
    """OpenAI chat-completions over HTTP, generating with the tiny model. `fail` answers the
    next requests with 503, `stall` makes the next requests wait `stall_s` first."""

    daemon_threads = True

    def __init__(self, engine: TransformersEngine):
        super().__init__(("127.0.0.1", 0), _ChatHandler)
        self.engine, self.lock = engine, threading.Lock()
        self.fail, self.stall, self.stall_s = 0, 0, 0.0
        self.requests: list[dict] = []

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"


class _ChatHandler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_POST(self):
        server: _ChatServer = self.server
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with server.lock:
            server.requests.append({"auth": self.headers.get("Authorization"), **body})
            fail, stall = server.fail > 0, server.stall > 0
            server.fail -= fail
            server.stall -= stall
        if self.path != "/v1/chat/completions":
            return self._send(404, {"error": {"message": "not found"}})
        if fail:
            return self._send(503, {"error": {"message": "overloaded"}})
        if stall:
            time.sleep(server.stall_s)
        sampling = Sampling(body["temperature"], body["top_p"], body["max_tokens"], body["seed"])
        with server.lock:  # one generation at a time: torch's seed is process-wide
            text, finish, n = server.engine.generate([body["messages"]], sampling)[0]
        self._send(200, {"id": "chatcmpl-1", "object": "chat.completion",
                         "model": body["model"],
                         "choices": [{"index": 0, "finish_reason": finish,
                                      "message": {"role": "assistant", "content": text}}],
                         "usage": {"completion_tokens": n}})

    def _send(self, status: int, payload: dict) -> None:
        data = json.dumps(payload).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client timed out and left


@pytest.fixture(scope="module")
def chat_server(tiny_lm):
    server = _ChatServer(TransformersEngine(str(tiny_lm), None))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _client(server: _ChatServer, **options) -> OpenAIEngine:
    settings = {"base_url": server.base_url, "backoff_s": 0.05, **options}
    return OpenAIEngine("tiny", OpenAIOptions(**settings))


def test_openai_engine_retries_503_and_timeouts_then_gives_up_clearly(chat_server,
                                                                      monkeypatch):
    chat = STYLES["qa"].chat(make_text(1, 20), {})
    sampling = Sampling(1.0, 0.9, 16, 5)
    monkeypatch.setenv("TINY_API_KEY", "secret")
    engine = _client(chat_server, api_key_env="TINY_API_KEY")
    chat_server.requests.clear()
    chat_server.fail = 2
    first = engine.generate([chat], sampling)[0]
    assert engine.retries == 2 and len(chat_server.requests) == 3
    assert chat_server.requests[-1]["auth"] == "Bearer secret"
    assert first.finish_reason in ("stop", "length") and first.n_tokens > 0
    assert engine.generate([chat], sampling) == [first]  # the request's seed fixes the text

    chat_server.stall, chat_server.stall_s = 1, 1.5
    slow = _client(chat_server, timeout_s=0.5)
    started = time.monotonic()
    assert slow.generate([chat], sampling) == [first]  # timed out once, then retried
    assert slow.retries == 1 and time.monotonic() - started < 1.5

    chat_server.fail = 10
    with pytest.raises(EngineError, match=r"failed after 2 attempts \(last: HTTP 503"):
        _client(chat_server, max_retries=1).generate([chat], sampling)
    chat_server.fail = 0
    wrong = OpenAIEngine("tiny", OpenAIOptions(base_url=chat_server.base_url + "/nothing"))
    with pytest.raises(EngineError, match="HTTP 404"):
        wrong.generate([chat], sampling)
    assert wrong.retries == 0
    monkeypatch.delenv("TINY_API_KEY")
    with pytest.raises(EngineError, match="TINY_API_KEY is not set"):
        _client(chat_server, api_key_env="TINY_API_KEY")


def test_openai_engine_runs_a_user_prompt_through_the_runner(tmp_path, ray_cluster,
                                                             chat_server):
    write_jsonl(tmp_path / "in" / "a.jsonl", docs(5))
    chat_server.requests.clear()
    chat_server.fail = 1  # the first request of the job meets an overloaded server
    options = (f"{{engine: openai, model: tiny, prompt: 'Rewrite this page from {{url}}: "
               f"{{text}}', style: page_rewrite, max_tokens: 24, temperature: 1.0, "
               f"openai: {{base_url: '{chat_server.base_url}', max_concurrency: 2, "
               "backoff_s: 0.05}}")
    run_job(load_spec(rephrase_spec(tmp_path, "out", options)), progress=False)
    synthetic = [r for r in rows(tmp_path / "out", "data") + rows(tmp_path / "out", "rejected")
                 if r["synthetic"]]
    assert sorted(r["parent_id"] for r in synthetic) == [f"d{i}" for i in range(5)]
    assert {r["style"] for r in synthetic} == {"page_rewrite"}
    assert len(chat_server.requests) == 6  # five prompts, one retried
    prompts = [r["messages"][1]["content"] for r in chat_server.requests]
    assert "Rewrite this page from https://x.org/0: " + make_text(0, 30) in prompts
    entry, = stage_entries(tmp_path / "out")
    assert entry["in"] + entry["added"] == entry["kept"] + entry["rejected"]


def test_stage_lists_its_contract_without_options():
    stage = Rephrase()
    assert stage.requires() == ("text", "id")
    assert stage.produces() == ("parent_id", "style", "synthetic", "rephrase_tokens")
    assert RephraseConfig.model_fields["model"].is_required()


def test_a_stage_needing_other_resources_runs_in_its_own_pool_with_the_same_output(
        tmp_path, ray_cluster, tiny_lm):
    for i in range(4):
        write_jsonl(tmp_path / "in" / f"{i}.jsonl", docs(6, offset=6 * i))
    outputs = []
    for out, cpus in (("split", 0.5), ("fused", 1)):
        spec = load_spec(write_spec(tmp_path / f"{out}.yaml", f"""\
name: pools
input: {{format: jsonl, paths: ["in/*.jsonl"]}}
output: {{path: {out}}}
stages:
  - length_filter: {{min_words: 33}}
  - rephrase: {{engine: transformers, model: {tiny_lm}, style: qa, max_tokens: 30, seed: 3,
               transformers: {{cpus: {cpus}}}}}
"""))
        # a different worker shape cuts the stage list: two pools streaming shards
        assert [s.names for s in segments_of(spec)] == (
            [["length_filter"], ["rephrase"]] if out == "split"
            else [["length_filter", "rephrase"]])
        run_job(spec, progress=False)
        assert_accounting(tmp_path / out)
        outputs.append([sorted(rows(tmp_path / out, folder), key=lambda r: r["id"])
                        for folder in ("data", "rejected")])
    assert outputs[0] == outputs[1]
    assert {r["stage"] for r in outputs[0][1]} >= {"length_filter"}
    assert any(r["synthetic"] for r in outputs[0][0])
