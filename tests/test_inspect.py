"""`pipeline inspect` on a real job's output (the common_crawl recipe): every combination of
side, stage, reason and --where returns the rows a plain DuckDB query returns, in file order;
samples, columns and the text view; and --where refuses anything but a condition on columns."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.browse.show import snippet, spans_of
from tests.browse_runs import RECIPE, cli, cli_json, rows, run_spec

STAGES = [None, "quality", "langid", "decontam"]
# in full, without the value, by the code alone, one that matches nothing
REASONS = [None, "lang:de", "gopher_quality:words", "c4", "lang", "no_such_reason"]
WHERES = [None, "lang = 'en' and lang_score > 0.9",
          "url like '%harbourtimes%' or not (license is null)",
          "(lang_score between 0.8 and 0.97) and lang in ('en', 'de')",
          "contamination_ngrams >= 1 or title ilike 'THEME%'"]


@pytest.fixture(scope="module")
def recipe(tmp_path_factory, ray_cluster) -> Path:
    return run_spec(RECIPE, tmp_path_factory.mktemp("inspect") / "out")


def _reason_matches(reason: str | None, wanted: str) -> bool:
    return reason is not None and wanted in (reason, reason.split("=")[0],
                                             reason.split(":")[0])


def expected(out: Path, side: str | None, stage, reason, where) -> list[dict]:
    """What the filters select, by plain DuckDB queries: kept rows first, then rejected."""
    rejected_only = side == "--rejected" or stage or reason
    sides = ["data"] if side == "--kept" else ["rejected"] if rejected_only else \
        ["data", "rejected"]
    found = []
    for folder in sides:
        for row in rows(out, folder, where or "true"):
            if (stage is None or row.get("stage") == stage) and \
                    (reason is None or _reason_matches(row.get("reason"), reason)):
                found.append(row)
    return found


@pytest.mark.parametrize("side,stage,reason,where", [
    combo for combo in itertools.product([None, "--kept", "--rejected"], STAGES, REASONS,
                                         WHERES)
    if not (combo[0] == "--kept" and (combo[1] or combo[2]))])
def test_every_filter_combination_returns_the_rows_a_plain_query_returns(
        recipe, capsys, side, stage, reason, where):
    args = ["inspect", recipe, "-n", "0"] + ([side] if side else []) + \
        (["--stage", stage] if stage else []) + (["--reason", reason] if reason else []) + \
        (["--where", where] if where else [])
    got = cli_json(capsys, *args)
    want = expected(recipe, side, stage, reason, where)
    assert [d["id"] for d in got] == [r["id"] for r in want]
    for doc, row in zip(got, want):
        assert {"id", "stage", "reason", "text", "kept"} <= set(doc)
        assert doc["text"] == row["text"] and doc["stage"] == row.get("stage")
        assert doc["reason"] == row.get("reason") and doc["kept"] == ("stage" not in row)


def test_the_filters_select_something_so_the_comparison_means_something(recipe, capsys):
    def count(*args):
        return len(cli_json(capsys, "inspect", recipe, "-n", "0", *args))
    assert count("--stage", "quality") == 8 and count("--kept") == 25
    assert count("--reason", "lang") == 4 and count("--reason", "lang:de") == 1
    assert count("--reason", "gopher_quality:words") == 2
    assert 0 < count("--where", WHERES[1]) < 51
    assert 0 < count("--where", WHERES[2]) < count("--where", "url like '%'") == 51


def test_a_column_only_rejected_rows_have_is_null_on_kept_ones(recipe, capsys):
    got = cli_json(capsys, "inspect", recipe, "-n", "0", "--where", "duplicate_of is not null")
    want = rows(recipe, "rejected", "duplicate_of IS NOT NULL")
    assert [d["id"] for d in got] == [r["id"] for r in want] and len(want) == 6
    kept = cli_json(capsys, "inspect", recipe, "-n", "0", "--where", "duplicate_of is null")
    assert sum(d["kept"] for d in kept) == 25


def test_n_takes_the_first_matches_in_file_order(recipe, capsys):
    every = cli_json(capsys, "inspect", recipe, "--rejected", "-n", "0")
    assert [d["id"] for d in cli_json(capsys, "inspect", recipe, "--rejected", "-n", "3")] == \
        [d["id"] for d in every[:3]]
    assert len(cli_json(capsys, "inspect", recipe)) == 5  # the default


def test_random_samples_come_from_the_matches_and_follow_the_seed(recipe, capsys):
    matching = {d["id"] for d in cli_json(capsys, "inspect", recipe, "-n", "0",
                                          "--where", "lang = 'en'")}
    samples = [tuple(d["id"] for d in cli_json(capsys, "inspect", recipe, "--random", "--seed",
                                               str(seed), "-n", "4", "--where", "lang = 'en'"))
               for seed in (1, 1, 2)]
    assert len(samples[0]) == 4 and set(samples[0]) <= matching
    assert samples[0] == samples[1] and samples[0] != samples[2]
    everything = cli_json(capsys, "inspect", recipe, "--random", "-n", "100", "--stage",
                          "quality")
    assert len(everything) == 8  # fewer matches than asked for: all of them


def test_columns_choose_what_json_shows_and_unknown_ones_are_named(recipe, capsys):
    docs = cli_json(capsys, "inspect", recipe, "--stage", "langid", "--columns",
                    "lang,lang_score")
    assert docs and all(set(d) == {"id", "kept", "stage", "reason", "url", "text", "lang",
                                   "lang_score"} for d in docs)
    assert all(d["reason"] == f"lang:{d['lang']}" for d in docs)
    code, _, err = cli(capsys, "inspect", recipe, "--columns", "lang,nope")
    assert code == 2 and "no column nope" in err


def test_text_view_shows_id_url_stage_full_reason_and_a_snippet(recipe, capsys):
    code, out, _ = cli(capsys, "inspect", recipe, "--stage", "decontam", "-n", "1",
                       "--columns", "lang")
    doc = cli_json(capsys, "inspect", recipe, "--stage", "decontam", "-n", "1")[0]
    assert code == 0
    assert f"{doc['id']}  (rejected at decontam: {doc['reason']})" in out
    assert doc["url"] in out and "lang=en" in out
    assert "contaminated by: " + ", ".join(doc["contamination"]) in out
    assert " ".join(doc["text"].split())[:100] in out
    assert out.rstrip().endswith("1 of 2 matching documents")


def test_kept_and_stage_together_are_refused(recipe, capsys):
    code, _, err = cli(capsys, "inspect", recipe, "--kept", "--stage", "quality")
    assert code == 2 and "--kept" in err


@pytest.mark.parametrize("where,message", [
    ("1=1; drop table x", "unexpected ';'"),
    ("lang = 'en'; COPY (SELECT 1) TO '/tmp/pwned.csv'", "unexpected ';'"),
    ("read_csv('/etc/passwd') is not null", "function calls are not allowed"),
    ("length(text) > 10", "function calls are not allowed"),
    ("id in (select id from read_parquet('/etc/passwd'))", "subqueries"),
    ("lang = 'en' union select 1", "'union' at position 13"),
    ("lang = 'en' -- comment", "comments are not allowed"),
    ("lang = 'en' /* x */", "comments are not allowed"),
    ("lang = 'en' # x", "unexpected '#'"),
    ("no_such_column = 1", "unknown column 'no_such_column'"),
    ("lang_score > 'high'", "lang_score is DOUBLE"),
    ("lang = ", "found the end"),
    ("(lang = 'en'", "expected `)`"),
    ("lang = 'en')", "expected `and`, `or` or the end"),
    ("lang = null", "is null"),
    ("lang", "only a boolean column stands alone"),
    ("contamination = 'x'", "only `is null`"),
    ("lang_score like '0%'", "needs a text column"),
    ("(" * 40 + "lang = 'en'" + ")" * 40, "nested more than"),
])
def test_dangerous_or_malformed_where_is_refused_with_a_clear_error(recipe, capsys, where,
                                                                     message):
    code, out, err = cli(capsys, "inspect", recipe, "--where", where)
    assert code == 2 and out == ""
    assert err.startswith("error: --where") and message in err
    assert not Path("/tmp/pwned.csv").exists()


def test_sql_inside_a_string_is_only_a_value(recipe, capsys):
    assert cli_json(capsys, "inspect", recipe, "--where",
                    "lang = '''; drop table t; --' or url = 'x'' or ''1''=''1'") == []


def test_documents_are_fetched_from_the_right_row_groups(tmp_path, capsys):
    """Positions map to rows across many row groups (a file of 10-row groups)."""
    out = tmp_path / "out"
    (out / "manifests").mkdir(parents=True)
    (out / "manifests" / "part-00000.json").write_text(json.dumps({"shard": "00000",
                                                                   "stages": []}))
    (out / "data").mkdir()
    table = pa.table({"id": [f"d{i}" for i in range(95)], "text": [f"text {i}" for i in
                                                                  range(95)],
                      "n": list(range(95))})
    pq.write_table(table, out / "data" / "part-00000.parquet", row_group_size=10)
    got = cli_json(capsys, "inspect", out, "--kept", "-n", "0", "--where",
                   "n >= 33 and n < 71 or n = 94")
    assert [d["id"] for d in got] == [f"d{i}" for i in [*range(33, 71), 94]]
    assert all(d["text"] == f"text {d['n']}" for d in got)
    sample = cli_json(capsys, "inspect", out, "--random", "--seed", "3", "-n", "7")
    assert all(d["text"] == f"text {d['n']}" for d in sample) and len(sample) == 7


def test_snippet_marks_pii_spans_and_placeholders():
    text = "Write to ann@example.org or call <PHONE> today."
    doc = {"text": text, "pii_spans": [{"kind": "email", "start": 9, "end": 24}]}
    spans = spans_of(doc, ["<PHONE>", "<EMAIL>"])
    assert spans == [(9, 24), (33, 40)]
    assert snippet(text, spans, marks=("[[", "]]")) == \
        "Write to [[ann@example.org]] or call [[<PHONE>]] today."
    far = "x " * 400 + "<EMAIL> end"
    shown = snippet(far, spans_of({"text": far}, ["<EMAIL>"]), chars=100, marks=("[", "]"))
    assert "[<EMAIL>]" in shown and shown.startswith("...")
