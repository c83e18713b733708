"""The bad-input suite (docs/architecture.md, "Invariants" 5): hostile files, written here
into tmp_path, run through the full CPU recipe on the real runner. Each job proves the same
three things: it does not crash (or fails with a JobError naming the file, once the error
budget is spent), every record written is accounted for (a row in `data/` or `rejected/`
with a reason, or a failed shard whose error names its file), and the report's reason table
says why.

What counts as a record: a WARC `response` record, a non-blank JSONL line (blank lines are
not documents, by design), a Parquet row.
"""

from __future__ import annotations

import json
import random
import time
import tracemalloc
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.io import formats
from pipeline.runner import JobError, run_job
from pipeline.spec import InputSpec, load_spec
from stages.extract import Extract, ExtractConfig
from tests.conftest import assert_accounting, write_jsonl, write_spec
from tests.warc_files import article, record_id, response, write_warc

pytestmark = pytest.mark.hostile

MiB = 2**20
# everything after `extract`; `license` reads `html`, so it runs where the input has some
RECIPE = """\
  - langid: {{}}
  - quality: {{rules: [gopher, c4, fineweb]}}
  - dedup_exact: {{}}
  - dedup_minhash: {{}}
{license}\
  - decontam: {{benchmarks: [bench.jsonl]}}
errors: {{max_failed_fraction: {budget}}}
"""
LICENSE = "  - license: {policy: any}\n"
BENCH_ITEM = {"id": "toy-1", "question": "A lighthouse keeper climbs one hundred and twelve "
              "steps four times a night and twice more at dawn. How many steps does the "
              "keeper climb before breakfast?", "answer": "He climbs 112 * 6 = 672 steps."}

# -- documents that pass every quality rule, so the later stages see real work ---------------
_SUBJECTS = ("The old ferry", "A small museum", "Our town council", "The river bridge",
             "Every volunteer", "The local bakery", "A quiet library", "The harvest market",
             "Each teacher", "The island station", "The choir", "A new clinic")
_VERBS = ("opened", "repaired", "described", "welcomed", "collected", "painted", "measured",
          "visited", "planned", "celebrated", "photographed", "restored")
_OBJECTS = ("a new garden behind the school", "the records of the winter storm",
            "several boxes of donated books", "the path along the northern forest",
            "a bright mural near the harbour", "the wheat fields after the rain",
            "an exhibition about solar power", "the fresh bread for the weekend fair",
            "a concert for the whole village", "the timetable of the morning trains",
            "the roof of the chapel", "a map of the old mines")
_TAILS = ("before the first snow arrived.", "with help from their neighbours.",
          "although the weather was cold.", "because many families asked for it.",
          "and everyone seemed pleased with the result.", "while the children watched.",
          "after a long debate in the evening.", "so that visitors could find their way.",
          "even though the budget was small.", "during the busy summer months.",
          "as the council had promised.", "without much fuss at all.")


def prose(seed: int) -> str:
    """~140 words of plain English in three paragraphs, different for each seed."""
    rng = random.Random(seed)
    columns = [rng.sample(words, 9) for words in (_SUBJECTS, _VERBS, _OBJECTS, _TAILS)]
    sentences = [" ".join(parts) for parts in zip(*columns)]
    return "\n".join(" ".join(sentences[i:i + 3]) for i in (0, 3, 6))


def html_page(seed: int, text: str | None = None, charset: str | None = None) -> str:
    return article(f"Notes {seed}", (text or prose(seed)).split("\n"), charset=charset)


def nested_divs(depth: int = 100_000) -> str:
    return f"<html><body>{'<div>' * depth}deep text{'</div>' * depth}</body></html>"


def unclosed_tags(count: int) -> str:
    """A paragraph, then `count` formatting elements never closed, each with its own id."""
    return f"<html><body><p>{prose(1)}" + "".join(f"<b id=b{i}>w " for i in range(count))


# -- reading the outcome -----------------------------------------------------------------------
def rows(out: Path, folder: str) -> list[dict]:
    return [r for f in sorted((out / folder).glob("part-*.parquet"))
            for r in pq.read_table(f).to_pylist()]


def assert_every_record_accounted(out: Path, written: dict[str, int], unreadable: set[str],
                                  failed: list[dict]) -> tuple[list[dict], list[dict]]:
    """Each readable file has one row (kept or rejected with a reason) per record written
    into it; each unreadable file is named by a failed shard's error; the manifests' read
    counts and every stage's in = kept + rejected agree. Returns (kept, rejected) rows."""
    manifests = assert_accounting(out)
    kept, rejected = rows(out, "data"), rows(out, "rejected")
    per_file = Counter(r["source"].split("#")[0] for r in kept + rejected)
    assert per_file == Counter({f: n for f, n in written.items() if f not in unreadable})
    assert sum(s["in"] for m in manifests for s in m["stages"] if s["stage"] == "read") \
        == len(kept) + len(rejected)
    assert not {r["id"] for r in kept} & {r["id"] for r in rejected}
    assert all(r["reason"] and r["stage"] for r in rejected)
    assert len(failed) == len(unreadable) and all(
        sum(name in f["error"] for f in failed) == 1 for name in unreadable), failed
    return kept, rejected


def reason_table(out: Path) -> set[tuple[str, str]]:
    summary = json.loads((out / "report" / "summary.json").read_text())
    return {(r["stage"], r["reason"]) for r in summary["reasons"]}


def reasons_of(out) -> list[str | None]:
    """A stage output's reason per row (None: kept; a stage may leave out an all-None array)."""
    return out.reasons.to_pylist() if out.reasons is not None else [None] * out.table.num_rows


def fates(rejected: list[dict]) -> dict[str, tuple[str, str]]:
    return {r["id"]: (r["stage"], r["reason"]) for r in rejected}


# -- the WARC side -----------------------------------------------------------------------------
ENCODED = {  # record -> (text, HTTP charset, bytes encoded as, a word the text must keep)
    20: ("Grüße aus Köln: die Brücke über den Fluss wurde im Frühling erneuert.",
         "iso-8859-1", "latin-1", "Brücke"),
    21: ("Москва и Санкт-Петербург соединены новой железной дорогой вдоль реки.",
         "windows-1251", "cp1251", "железной"),
    22: ("東京の図書館は新しい展示を開きました。多くの家族が週末に訪れました。",
         None, "shift_jis", "図書館"),  # declared in <meta> only
    23: ("Ein Text in UTF-16 mit Byte-Order-Mark: Straße, Größe, Übung.",
         "utf-16", "utf-16", "Straße"),  # Python's utf-16 codec writes the BOM
    24: ("Ein Text in UTF-16 ohne Byte-Order-Mark: Straße, Größe, Übung.",
         "utf-16le", "utf-16-le", "Größe"),
}


def write_warc_inputs(folder: Path) -> tuple[dict[str, int], dict[str, tuple[str, str]]]:
    """The WARC files. Returns the records written per file, and (stage, reason prefix)
    for each record whose fate is known in advance."""
    rng = random.Random(7)
    written: dict[str, int] = {}
    good = [response(n, html_page(n)) for n in range(1, 7)]
    good.append(response(7, html_page(1)))  # the same page again, at another URL
    good.append(response(8, html_page(8, f"{prose(8)}\n{BENCH_ITEM['question']} "
                                        f"{BENCH_ITEM['answer']}")))
    hostile = [
        response(10, nested_divs()),
        response(17, unclosed_tags(40_000)),
        response(11, rng.randbytes(8192)),  # random bytes: NULs early on
        response(12, bytes(rng.randrange(1, 256) for _ in range(8192))),  # and without NULs
        response(13, b"\x89PNG\r\n\x1a\n" + rng.randbytes(4096)),
        response(14, html_page(14), status="404 Not Found"),
        response(15, b"<html><body><p>" + prose(15).encode() + b" \xc3\x28\xa0\xa1\xed\xa0"
                 b"\x80\xff caf\xe9 " + prose(16).encode() + b"</p></body></html>"),
        # over extract's max_bytes (10 MB), under the reader's max_record_bytes (32 MiB)
        response(16, "<html><body><p>" + "big page words " * (12 * MiB // 15) + "</p>"),
    ]
    encoded = []
    for n, (text, declared, codec, _) in ENCODED.items():
        body = html_page(n, f"{text}\n{prose(n)}",
                         charset=None if declared else codec).encode(codec)
        encoded.append(response(n, body, content_type=f"text/html; charset={declared}"
                                if declared else "text/html"))
    write_warc(folder / "pages.warc.gz", good + hostile + encoded)
    written["pages.warc.gz"] = len(good + hostile + encoded)

    # 50 MB of HTML in one record: over the reader's max_record_bytes, skipped unread
    write_warc(folder / "huge.warc.gz", [
        response(30, b"<html><body>" + b"<p>more words here</p>" * (50 * MiB // 22)),
        response(31, html_page(31))])
    written["huge.warc.gz"] = 2

    # truncated gzip: the file ends in the middle of its last member
    path = folder / "truncated.warc.gz"
    offsets = write_warc(path, [response(n, html_page(n)) for n in (40, 41, 42)])
    data = path.read_bytes()
    path.write_bytes(data[:offsets[2] + (len(data) - offsets[2]) // 2])
    written["truncated.warc.gz"] = 3

    # corrupt record headers: a first line that is not `WARC/1.0`, a non-numeric length
    path = folder / "headers.warc"
    write_warc(path, [response(n, html_page(n)) for n in (50, 51, 52, 53)], gzip=False)
    raw = path.read_bytes()
    start = raw.rindex(b"WARC/1.0", 0, raw.index(f"<{record_id(51)}>".encode()))
    raw = raw[:start] + b"WARX/1.0" + raw[start + 8:]
    length_at = raw.index(b"Content-Length: ", raw.index(f"<{record_id(52)}>".encode()))
    path.write_bytes(raw[:length_at] + b"Content-Length: 12x4" + raw[length_at + 20:])
    written["headers.warc"] = 4

    (folder / "empty.warc.gz").write_bytes(b"")
    written["empty.warc.gz"] = 0

    known = {7: ("dedup_exact", "duplicate"), 8: ("decontam", "contaminated:bench"),
             10: ("extract", "no_content"), 11: ("read", "binary_payload"),
             13: ("read", "binary_payload"), 14: ("read", "http_status:404"),
             16: ("extract", "too_large:bytes="),
             17: ("quality", "gopher_quality:mean_word_len="),
             30: ("read", "too_large:bytes=")}
    return written, {record_id(n): fate for n, fate in known.items()}


def warc_spec(tmp_path: Path, budget: float) -> Path:
    return write_spec(tmp_path / f"warc-{budget}.yaml", f"""\
name: hostile-warc
input: {{format: warc, paths: ["in/*"]}}
output: {{path: out}}
stages:
  - extract: {{keep_html: true}}
{RECIPE.format(license=LICENSE, budget=budget)}""")


def test_hostile_warc_files_run_the_full_recipe_and_every_record_is_accounted(
        tmp_path, ray_cluster):
    written, known = write_warc_inputs(tmp_path / "in")
    write_jsonl(tmp_path / "bench.jsonl", [BENCH_ITEM])
    result = run_job(load_spec(warc_spec(tmp_path, budget=0.25)), progress=False)

    out = tmp_path / "out"
    kept, rejected = assert_every_record_accounted(out, written, {"empty.warc.gz"},
                                                   result.failed)
    assert f"{tmp_path / 'in' / 'empty.warc.gz'}: file is empty" in result.failed[0]["error"]
    fate = fates(rejected)
    for record, (stage, reason) in known.items():
        assert fate[record][0] == stage and fate[record][1].startswith(reason), \
            (record, fate.get(record))
    damage = {name: sorted(r["reason"] for r in rejected if r["source"].startswith(name))
              for name in ("truncated.warc.gz", "headers.warc")}
    assert damage == {"truncated.warc.gz": ["truncated_gzip"], "headers.warc": [
        "corrupt_record:bad_content_length", "corrupt_record:not_a_warc_header"]}
    texts = {r["id"]: r["text"] for r in kept + rejected if r.get("text")}
    for n, (_, _, _, word) in ENCODED.items():  # decoded right, wherever the page ended up
        assert word in texts.get(record_id(n), ""), (n, fate.get(record_id(n)))
    assert texts.get(record_id(15))  # invalid UTF-8 still decodes
    # 40k unclosed <b>: read by trafilatura (the default engine) in linear time, its paragraph
    # kept, then refused by quality for the thousands of one-letter words the tags wrap
    assert prose(1).split(". ")[0] in texts.get(record_id(17), "")
    # the ordinary pages beside the hostile ones went through every stage
    assert {record_id(n) for n in (1, 2, 3, 4, 5, 6, 31, 40, 41, 50, 53)} \
        <= {r["id"] for r in kept}
    assert {("read", "binary_payload"), ("read", "http_status:404"),
            ("read", "too_large:bytes"), ("read", "truncated_gzip"),
            ("read", "corrupt_record:not_a_warc_header"), ("extract", "no_content"),
            ("extract", "too_large:bytes"), ("dedup_exact", "duplicate"),
            ("decontam", "contaminated:bench")} <= reason_table(out)

    # the default error budget (5%) fails the job on the same output, naming the file, and
    # keeps the shards it finished
    with pytest.raises(JobError, match=r"1 of 5 shards failed(.|\n)*empty.warc.gz: file is "
                                       r"empty"):
        run_job(load_spec(warc_spec(tmp_path, budget=0.05)), progress=False)
    assert len(rows(out, "data")) == len(kept)

    # the 50 MB record streams past: reading its file never holds anything near its size
    spec = InputSpec(format="warc", paths=[str(tmp_path / "in" / "huge.warc.gz")])
    reader = formats.get("warc")
    tracemalloc.start()
    try:
        for shard in reader.plan_shards(spec, spec.paths):
            for _ in reader.read(spec, shard, "html", 64):
                pass
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 32 * MiB, peak


@pytest.mark.parametrize("engine", ["trafilatura", "resiliparse", "auto"])
def test_deeply_nested_html_is_rejected_quickly_by_every_engine(engine):
    # resiliparse alone took minutes on the deep page, in one C call no time limit stops
    stage = Extract(ExtractConfig(engine=engine))
    stage.setup()
    pages = [nested_divs(), f"<html><body>{'<div>' * 3000}{prose(1)}{'</div>' * 3000}"]
    started = time.process_time()
    out = stage.process(pa.table({"id": ["deep", "deep-but-allowed"], "html": pages}))
    assert time.process_time() - started < 5
    deep, allowed = reasons_of(out)
    if engine == "trafilatura":  # lxml stops building the tree at depth 256
        assert deep == "no_content"
    else:  # resiliparse refuses more than 4,096 levels, and reads the page under that
        assert (deep, allowed) == ("extract_error:NestingTooDeep", None)


@pytest.mark.parametrize("engine", ["trafilatura", "resiliparse", "auto"])
def test_unclosed_formatting_tags_are_refused_before_a_quadratic_parse(engine):
    # 40,000 `<b id=N>` never closed: resiliparse's HTML5 parse alone took ~5 s (quadratic)
    stage = Extract(ExtractConfig(engine=engine))
    stage.setup()
    started = time.process_time()
    out = stage.process(pa.table({"id": ["many", "some"], "html": [unclosed_tags(40_000),
                                                                  unclosed_tags(3_000)]}))
    assert time.process_time() - started < 2
    (many, some), texts = reasons_of(out), out.table["text"].to_pylist()
    first_sentence = prose(1).split(". ")[0]
    assert some is None and first_sentence in texts[1]  # a page with fewer left open is read
    if engine == "trafilatura":  # lxml parses it in linear time and reads it
        assert many is None and first_sentence in texts[0]
    else:
        assert many == "extract_error:NestingTooDeep" and not texts[0]


# -- the tabular side --------------------------------------------------------------------------
def doc(n: int, text: str | None = None, **fields) -> dict:
    text = text or prose(n)
    return {"id": f"doc-{n}", "text": text, "url": f"https://example.org/{n}",
            "html": html_page(n, text), **fields}


def tabular_spec(tmp_path: Path, fmt: str, license: str = "") -> Path:
    return write_spec(tmp_path / f"{fmt}.yaml", f"""\
name: hostile-{fmt}
input: {{format: {fmt}, paths: ["{fmt}/*"]}}
output: {{path: out-{fmt}}}
stages:
{RECIPE.format(license=license, budget=0.5)}""")


def write_parquet_inputs(folder: Path) -> dict[str, int]:
    """Parquet files; the first (by name) is well-formed, so that validation sees `html`."""
    folder.mkdir(parents=True)
    good = [doc(n) for n in range(1, 6)] + [doc(1, id="doc-1-copy")]
    pq.write_table(pa.Table.from_pylist(good), folder / "a-good.parquet")
    extra = pa.Table.from_pylist([doc(10), doc(11), doc(12, "Too short.")])
    for name, values in (("views", pa.array([1, None, 3], pa.int64())),
                         ("tags", pa.array([["a"], [], None], pa.list_(pa.string()))),
                         ("meta", pa.array([{"k": 1}, None, {"k": 3}])),
                         ("lang", pa.array([7, 8, 9], pa.int64()))):  # a stage's column
        extra = extra.append_column(name, values)
    pq.write_table(extra, folder / "b-extra-columns.parquet")
    pq.write_table(pa.table({"id": ["m1", "m2"], "body": [prose(20), prose(21)]}),
                   folder / "c-no-text-column.parquet")
    pq.write_table(pa.table({"id": ["i1", "i2"], "text": pa.array([1, 2], pa.int64())}),
                   folder / "d-text-as-int64.parquet")
    floats = [doc(30, id=1.5), doc(31, id=float("nan")), doc(32, id=None),
              dict(doc(33), id=4.0, text=None)]
    pq.write_table(pa.Table.from_pylist(floats), folder / "e-id-as-float.parquet")
    (folder / "f-empty.parquet").write_bytes(b"")
    return {"a-good.parquet": 6, "b-extra-columns.parquet": 3, "c-no-text-column.parquet": 2,
            "d-text-as-int64.parquet": 2, "e-id-as-float.parquet": 4, "f-empty.parquet": 0}


def test_hostile_parquet_files_run_the_full_recipe_and_every_row_is_accounted(
        tmp_path, ray_cluster):
    written = write_parquet_inputs(tmp_path / "parquet")
    write_jsonl(tmp_path / "bench.jsonl", [BENCH_ITEM])
    result = run_job(load_spec(tabular_spec(tmp_path, "parquet", LICENSE)), progress=False)

    out = tmp_path / "out-parquet"
    unreadable = {"c-no-text-column.parquet", "d-text-as-int64.parquet", "f-empty.parquet"}
    kept, rejected = assert_every_record_accounted(out, written, unreadable, result.failed)
    errors = "\n".join(f["error"] for f in result.failed)
    for message in ("no column 'text'", "column 'text' has type int64",
                    "not a readable Parquet file"):
        assert message in errors
    fate = fates(rejected)
    assert fate["doc-1-copy"] == ("dedup_exact", "duplicate")
    assert fate["doc-12"][0] in ("langid", "quality")  # "Too short."
    assert {r["id"] for r in kept} >= {"doc-1", "doc-10", "1.5", "nan"}  # ids cast to text
    assert {r["views"] for r in kept if r["id"] in ("doc-10", "doc-11")} == {1, None}
    assert all(isinstance(r["lang"], str) for r in kept)  # langid's, not the input's
    assert {("read", "missing_text"), ("dedup_exact", "duplicate")} <= reason_table(out)


def test_input_columns_named_like_the_rejection_columns_do_not_break_a_shard(
        tmp_path, ray_cluster):
    rows_in = [doc(1), doc(1, id="doc-1-copy"), doc(2, "Too short.")]
    table = pa.Table.from_pylist(rows_in).append_column("reason", pa.array(["a", "b", "c"]))
    write_spec(tmp_path / "job.yaml", """\
name: reserved-columns
input: {format: parquet, paths: ["in.parquet"]}
output: {path: out}
stages:
  - length_filter: {min_words: 5}
  - dedup_exact: {}
errors: {max_failed_fraction: 1.0}
""")
    pq.write_table(table.append_column("stage", pa.array(["x", "y", "z"])),
                   tmp_path / "in.parquet")
    result = run_job(load_spec(tmp_path / "job.yaml"), progress=False)
    assert result.failed == []
    assert sorted(r["reason"].split(":")[0] for r in rows(tmp_path / "out", "rejected")) \
        == ["duplicate", "too_short"]


def write_jsonl_inputs(folder: Path) -> dict[str, int]:
    folder.mkdir(parents=True)
    lines = [json.dumps(doc(n)).encode() for n in (1, 2, 3)] + [
        b'{"text": "an unterminated string',                    # bad_json:col
        b"[1, 2, 3]", b'"just a string"', b"42", b"null",       # bad_json:not_an_object
        json.dumps({"id": "no-text", "url": "https://x.org"}).encode(),   # missing_text
        b'{"id": "latin-1", "text": "caf\xe9 cr\xe8me"}',         # invalid_utf8
        json.dumps({"id": "null-text", "text": None}).encode(),           # missing_text
        json.dumps({"id": "int-text", "text": 12}).encode(),              # bad_text:type
        json.dumps({"id": "dict-text", "text": {"a": 1}}).encode(),
        json.dumps(doc(4, meta=1)).encode(),  # a field whose type changes from line to line
        json.dumps(doc(5, meta="five")).encode(),
        json.dumps(doc(1, id="doc-1-copy")).encode(),
    ]
    blank = [b"", b"   ", b"\t"]
    body = b"\n".join(lines[:4] + blank[:1] + lines[4:8] + blank[1:] + lines[8:])
    # a byte-order mark first (as Windows tools write), no newline at the end
    (folder / "a-broken-lines.jsonl").write_bytes(b"\xef\xbb\xbf" + body)
    (folder / "b-empty.jsonl").write_bytes(b"")
    (folder / "c-crlf.jsonl").write_bytes(b"".join(json.dumps(doc(n)).encode() + b"\r\n"
                                                   for n in (6, 7)))
    return {"a-broken-lines.jsonl": len(lines), "b-empty.jsonl": 0, "c-crlf.jsonl": 2}


def test_hostile_jsonl_lines_run_the_full_recipe_and_every_line_is_accounted(
        tmp_path, ray_cluster):
    written = write_jsonl_inputs(tmp_path / "jsonl")
    write_jsonl(tmp_path / "bench.jsonl", [BENCH_ITEM])
    # no `license`: the JSONL reader declares id, text, url and source only
    result = run_job(load_spec(tabular_spec(tmp_path, "jsonl")), progress=False)

    out = tmp_path / "out-jsonl"
    kept, rejected = assert_every_record_accounted(out, written, {"b-empty.jsonl"},
                                                   result.failed)
    assert "b-empty.jsonl: file is empty" in result.failed[0]["error"]
    fate = fates(rejected)
    assert fate["doc-1-copy"] == ("dedup_exact", "duplicate")
    assert {fate[i] for i in ("no-text", "null-text")} == {("read", "missing_text")}
    assert {r["id"] for r in kept} == {f"doc-{n}" for n in range(1, 8)}
    read = Counter(reason.split(":")[0] for stage, reason in fate.values() if stage == "read")
    assert read == {"bad_json": 5, "missing_text": 2, "invalid_utf8": 1, "bad_text": 2}
    assert {("read", "bad_json:col"), ("read", "bad_json:not_an_object"),
            ("read", "missing_text"), ("read", "invalid_utf8:byte"),
            ("read", "bad_text:type"), ("dedup_exact", "duplicate")} <= reason_table(out)
