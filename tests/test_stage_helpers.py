"""The helpers for stage authors in pipeline/stage.py, and the tiny filter of
docs/architecture.md ("Adding a stage") run as a real stage through the runner on Ray."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pydantic import Field

from pipeline.registry import register
from pipeline.runner import run_job
from pipeline.spec import load_spec
from pipeline.stage import (EMPTY_TEXT, DocumentFilter, StageConfig, column_or_nulls,
                            format_value, has_text, on_rows_with_text, reason, reasons_or_none,
                            reasons_where, scatter)
from tests.conftest import assert_accounting, write_jsonl, write_spec


# -- the example of docs/architecture.md, as written there ----------------------------------
class LongLinesConfig(StageConfig):
    max_line_chars: int = Field(1000, ge=1, description="reject a document with a longer line")


@register
class LongLines(DocumentFilter):
    name = "long_lines"
    config_model = LongLinesConfig
    description = "Reject documents with a line longer than max_line_chars."

    def judge(self, text: str) -> str | None:
        longest = max(len(line) for line in text.split("\n"))
        if longest > self.config.max_line_chars:
            return reason("long_lines", "chars", longest)
        return None


def test_the_example_filter_runs_through_the_runner_with_reasons_and_accounting(
        tmp_path, ray_cluster):
    texts = ["short line\nanother short one", "x" * 45, "fine\n" + "y" * 31 + "\nfine",
             "", "  \n\t ", "\u00a0\u3000", "exactly thirty characters long"]
    write_jsonl(tmp_path / "in" / "a.jsonl", [{"id": f"d{i}", "text": t}
                                              for i, t in enumerate(texts)])
    spec = write_spec(tmp_path / "job.yaml", """\
name: long-lines
input: {format: jsonl, paths: ["in/*.jsonl"]}
output: {path: out}
stages: [{long_lines: {max_line_chars: 30}}]
""")
    result = run_job(load_spec(spec), progress=False)
    out = tmp_path / "out"
    kept = pq.read_table(out / "data").to_pylist()
    rejected = pq.read_table(out / "rejected").to_pylist()
    assert sorted(r["id"] for r in kept) == ["d0", "d6"]
    assert {r["id"]: (r["stage"], r["reason"]) for r in rejected} == {
        "d1": ("long_lines", "long_lines:chars=45"),
        "d2": ("long_lines", "long_lines:chars=31"),
        "d3": ("long_lines", EMPTY_TEXT),
        "d4": ("long_lines", EMPTY_TEXT),
        "d5": ("long_lines", EMPTY_TEXT)}
    (manifest,) = assert_accounting(out)
    step = next(s for s in manifest["stages"] if s["stage"] == "long_lines")
    assert (step["in"], step["kept"], step["rejected"]) == (7, 2, 5)
    assert result.docs_in == 7


# -- reason ------------------------------------------------------------------------------------
def test_reason_has_one_format_for_code_value_and_measure():
    assert reason("empty_text") == "empty_text"
    assert reason("lang", value="de") == "lang:de"
    assert reason("rephrase", "refusal") == "rephrase:refusal"
    assert reason("too_short", "words", 12) == "too_short:words=12"
    assert reason("gopher_repetition", "dup_line_frac", 0.412345) == \
        "gopher_repetition:dup_line_frac=0.4123"


@pytest.mark.parametrize("value, shown", [
    (12, "12"), (12.0, "12"), (True, "1"), (0.0098, "0.0098"), (0.41234, "0.4123"),
    (123.456, "123.5"), (12345.6, "12346"), (np.float32(0.5), "0.5"), (np.int64(7), "7"),
    (np.float64(2 / 3), "0.6667")])
def test_numbers_keep_four_significant_digits(value, shown):
    assert format_value(value) == shown
    assert reason("c", "m", value) == f"c:m={shown}"


def test_a_value_given_as_a_string_is_shown_as_it_is():
    assert reason("rephrase", "ratio", "1.00") == "rephrase:ratio=1.00"


# -- reasons_where, reasons_or_none -------------------------------------------------------------
def test_reasons_where_fills_failing_rows_and_keeps_the_others():
    failed = pa.array([True, False, None, True])
    values = pa.array([2, 9, 1, 0], pa.int64())
    assert reasons_where(failed, "too_short", "words", values).to_pylist() == \
        ["too_short:words=2", None, None, "too_short:words=0"]
    assert reasons_where(failed, "lang_low_score").to_pylist() == \
        ["lang_low_score", None, None, "lang_low_score"]
    langs = pa.chunked_array([["fr"], ["en", "de", "it"]])
    earlier = pa.array([None, "first", "first", None], pa.string())
    assert reasons_where(failed, "lang", values=langs, otherwise=earlier).to_pylist() == \
        ["lang:fr", "first", "first", "lang:it"]


def test_reasons_where_without_a_failing_row_returns_otherwise():
    earlier = pa.array(["a", None], pa.string())
    assert reasons_where(pa.array([False, None]), "x", "m", pa.array([1, 2])).to_pylist() == \
        [None, None]
    assert reasons_where(pa.array([False, False]), "x", otherwise=earlier).to_pylist() == \
        ["a", None]


def test_reasons_or_none():
    assert reasons_or_none([None, None]) is None
    assert reasons_or_none([]) is None
    out = reasons_or_none([None, "x"])
    assert out.type == pa.string() and out.to_pylist() == [None, "x"]


# -- columns and text --------------------------------------------------------------------------
def test_column_or_nulls():
    table = pa.table({"text": ["a", "b"], "url": ["u1", None]})
    assert column_or_nulls(table, "url").to_pylist() == ["u1", None]
    missing = column_or_nulls(table, "charset", pa.int32())
    assert missing.type == pa.int32() and missing.to_pylist() == [None, None]


def test_has_text_agrees_with_python_isspace_for_every_character():
    chars = [chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]
    found = has_text(pa.array(chars))
    assert [c for c, f in zip(chars, found) if f == c.isspace()] == []
    assert has_text(pa.chunked_array([[None, ""], [" \n\v\x85\u00a0\u3000", " a "]])).tolist() \
        == [False, False, False, True]


def test_on_rows_with_text_scores_only_rows_with_text_once_and_scatters_back():
    calls = []

    def lengths(texts):
        calls.append(texts)
        return [len(t) for t in texts]

    texts = pa.array(["abc", None, "  ", "hello", "\t"])
    column, mask = on_rows_with_text(texts, lengths, pa.int64())
    assert calls == [["abc", "hello"]]
    assert column.to_pylist() == [3, None, None, 5, None]
    assert mask.tolist() == [True, False, False, True, False]

    calls.clear()
    column, mask = on_rows_with_text(pa.array(["", None]), lengths, pa.int64())
    assert calls == [] and column.to_pylist() == [None, None] and not mask.any()


def test_scatter():
    mask = np.array([False, True, False, True])
    assert scatter(["a", "b"], mask, pa.string()).to_pylist() == [None, "a", None, "b"]
    assert scatter([1.5], np.array([True]), pa.float64()).to_pylist() == [1.5]


# -- DocumentFilter ------------------------------------------------------------------------------
class _UrlAndLang(DocumentFilter):
    """Rejects by a required column (`url`) and reports an optional one (`lang`)."""

    name = "test_url_and_lang"
    optional_columns = ("lang",)

    def __init__(self):
        super().__init__()
        self.seen = []

    def requires(self):
        return ("text", "url")

    def judge(self, text, url, lang):
        self.seen.append((text, url, lang))
        return reason("bad_url", value=url) if url.startswith("http:") else None


def test_document_filter_skips_empty_text_and_passes_required_and_optional_columns():
    stage = _UrlAndLang()
    table = pa.table({"text": ["one", None, " \n", "two", "\u2003"],
                      "url": ["https://a", "https://b", "http://c", "http://d", "http://e"]})
    out = stage.process(table)
    assert out.table is table
    assert out.reasons.to_pylist() == [None, EMPTY_TEXT, EMPTY_TEXT, "bad_url:http://d",
                                       EMPTY_TEXT]
    assert stage.seen == [("one", "https://a", None), ("two", "http://d", None)]

    stage.seen.clear()
    with_lang = table.append_column("lang", pa.array(["en", "de", None, "fr", "it"]))
    stage.process(with_lang)
    assert stage.seen == [("one", "https://a", "en"), ("two", "http://d", "fr")]


def test_document_filter_keeping_everything_returns_no_reasons():
    out = LongLines(LongLinesConfig(max_line_chars=10)).process(pa.table({"text": ["ok", "fine"]}))
    assert out.reasons is None
