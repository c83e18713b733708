"""The report's samples (issue 22, item 2): a few rejected documents per reason, with the full
reason; per numeric column, kept and rejected documents in the same bins with the spec's
thresholds marked; the page shows them with every piece of document text escaped."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import pytest

from pipeline.report import HISTOGRAM_BINS, SAMPLES_PER_REASON, build_summary, render_html
from tests.browse_runs import RECIPE, rows, run_spec
from tests.conftest import make_text, write_jsonl, write_spec

HOSTILE = '<script>alert("x")</script> too short'


@pytest.fixture(scope="module")
def recipe(tmp_path_factory, ray_cluster) -> Path:
    return run_spec(RECIPE, tmp_path_factory.mktemp("report-samples") / "out")


@pytest.fixture(scope="module")
def lengths(tmp_path_factory, ray_cluster) -> Path:
    folder = tmp_path_factory.mktemp("report-lengths")
    docs = [{"id": "hostile", "url": "javascript:alert(1)", "text": HOSTILE}] + \
        [{"id": f"d{i}", "url": f"https://example.org/{i}", "text": make_text(i, 5 + i)}
         for i in range(80)]
    write_jsonl(folder / "docs.jsonl", docs)
    spec = write_spec(folder / "job.yaml", """
name: lengths
input: {format: jsonl, paths: [docs.jsonl]}
output: {path: out}
stages:
  - length_filter: {min_words: 20, max_words: 60}
""")
    return run_spec(spec, folder / "out")


def test_each_listed_reason_has_its_first_rejected_documents_with_the_full_reason(recipe):
    summary = build_summary(str(recipe))
    samples = summary["reason_samples"]
    assert [{k: r[k] for k in ("stage", "reason", "docs")} for r in samples] == \
        summary["reasons"]
    rejected = rows(recipe, "rejected")
    for entry in samples:
        mine = [r for r in rejected if r["stage"] == entry["stage"]
                and r["reason"].split("=")[0] == entry["reason"]]
        assert len(mine) == entry["docs"]
        assert [s["id"] for s in entry["samples"]] == \
            [r["id"] for r in mine[:SAMPLES_PER_REASON]]
        for sample, row in zip(entry["samples"], mine):
            assert sample["reason"] == row["reason"] and sample["url"] == row["url"]
            assert sample["snippet"] == " ".join((row["text"] or "")[:300].split())
    words = next(e for e in samples if e["reason"] == "gopher_quality:words")
    assert sorted(s["reason"] for s in words["samples"]) == ["gopher_quality:words=18",
                                                              "gopher_quality:words=27"]


def expected_bins(kept: list, rejected: list) -> list[tuple[int, int]]:
    values = [v for v in kept + rejected if v is not None]
    lo, hi = min(values), max(values)
    width = (hi - lo) / HISTOGRAM_BINS or 1

    def counts(side):
        return Counter(min(math.floor((v - lo) / width), HISTOGRAM_BINS - 1)
                       for v in side if v is not None)
    k, r = counts(kept), counts(rejected)
    return [(k[b], r[b]) for b in range(HISTOGRAM_BINS)]


@pytest.mark.parametrize("column", ["lang_score", "contamination_ngrams"])
def test_kept_and_rejected_share_the_bins_of_each_numeric_column(recipe, column):
    dist = build_summary(str(recipe))["distributions"][column]
    kept = [r[column] for r in rows(recipe, "data")]
    rejected = [r[column] for r in rows(recipe, "rejected")]
    assert [(b["kept"], b["rejected"]) for b in dist["bins"]] == expected_bins(kept, rejected)
    assert sum(b["rejected"] for b in dist["bins"]) == sum(v is not None for v in rejected) > 0


def test_the_spec_thresholds_are_marked_on_their_columns(recipe, lengths):
    marks = build_summary(str(recipe))["distributions"]["lang_score"]["thresholds"]
    assert marks == [{"step": 2, "stage": "langid", "option": "min_score", "value": 0.65}]
    dist = build_summary(str(lengths))["distributions"]["n_words"]
    assert [(m["option"], m["value"]) for m in dist["thresholds"]] == [("min_words", 20),
                                                                         ("max_words", 60)]
    kept = [r["n_words"] for r in rows(lengths, "data")]
    assert min(kept) == 20 and max(kept) == 60
    assert sum(b["rejected"] for b in dist["bins"]) == len(rows(lengths, "rejected"))


def test_the_page_shows_samples_and_marks_with_document_text_escaped(lengths):
    summary = build_summary(str(lengths))
    page = render_html(summary)
    assert "Examples per rejection reason" in page
    assert "length_filter.min_words = 20" in page and "length_filter.max_words = 60" in page
    assert "too_short:words=3" in page  # the hostile page, with its full reason
    assert "<script>alert" not in page and "&lt;script&gt;alert" in page
    assert 'href="javascript:' not in page and "javascript:alert(1)" in page
    first = summary["reason_samples"][0]["samples"][0]
    assert f'<a href="{first["url"]}">' in page
