"""The job report's column summaries (pipeline/report.py): the language counts and the
histograms of numeric columns, over the kept documents of a real run, checked against counts
made here from the rows the run kept."""

from __future__ import annotations

import json
import math
import random
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pipeline.report import HISTOGRAM_BINS, build_summary, render_html
from pipeline.runner import run_job
from pipeline.spec import load_spec
from tests.conftest import make_text, write_parquet, write_spec

LANGUAGES = [f"l{n:02d}" for n in range(22)]  # two more than the report lists
SHOWN = 20


def corpus() -> list[dict]:
    """Language `l<n>` on n + 2 kept documents (every count differs, so the order is fixed);
    five short documents in language `xx` that length_filter rejects; a float score with a
    few nulls, a constant column, a ratio with NaN and infinities among its values, and word
    counts from 8 to 47."""
    rng = random.Random(5)
    rows = []
    for n, lang in enumerate(LANGUAGES):
        for _ in range(n + 2):
            i = len(rows)
            rows.append({"id": f"d{i:04d}", "text": make_text(i, 8 + i % 40), "lang": lang,
                         "score": None if i % 17 == 0 else round(rng.uniform(-3, 12), 3),
                         "constant": 7.0,
                         "ratio": [math.nan, math.inf, -math.inf][i % 3] if i % 10 == 0
                         else i / 7})
    rows += [{"id": f"short{i}", "text": "too short", "lang": "xx", "score": 99.0,
              "constant": 7.0, "ratio": 0.0} for i in range(5)]
    rng.shuffle(rows)
    return rows


@pytest.fixture(scope="module")
def job(tmp_path_factory, ray_cluster) -> tuple[Path, list[dict]]:
    folder = tmp_path_factory.mktemp("report")
    rows = corpus()
    half = len(rows) // 2  # two files, so two shards the report must add up
    write_parquet(folder / "in" / "a.parquet", rows[:half])
    write_parquet(folder / "in" / "b.parquet", rows[half:])
    spec = write_spec(folder / "job.yaml", """\
name: report
input: {format: parquet, paths: ["in/*.parquet"]}
output: {path: out}
stages:
  - length_filter: {min_words: 5}
""")
    run_job(load_spec(spec), progress=False)
    out = folder / "out"
    return out, pq.read_table(out / "data").to_pylist()


def expected_bins(values: list[float]) -> list[dict]:
    """The report's binning, counted here: HISTOGRAM_BINS equal bins from min to max, the
    maximum in the last bin, a constant column in one bin of width 1, nulls left out."""
    values = [v for v in values if v is not None]
    lo, hi = min(values), max(values)
    width = (hi - lo) / HISTOGRAM_BINS or 1
    counts = Counter(min(math.floor((v - lo) / width), HISTOGRAM_BINS - 1) for v in values)
    return [{"lo": lo + b * width, "hi": lo + (b + 1) * width, "docs": counts[b]}
            for b in sorted(counts)]


def test_language_counts_list_the_most_frequent_languages_of_kept_documents(job):
    out, kept = job
    summary = json.loads((out / "report" / "summary.json").read_text())
    lang = summary["columns"]["lang"]
    assert lang["kind"] == "counts"
    counted = Counter(r["lang"] for r in kept)
    assert "xx" not in counted and len(counted) == len(LANGUAGES)
    assert lang["values"] == [{"value": v, "docs": n} for v, n in counted.most_common(SHOWN)]
    assert [v["value"] for v in lang["values"]] == LANGUAGES[::-1][:SHOWN]  # l21 (23 docs) first


@pytest.mark.parametrize("column", ["score", "n_words", "constant"])
def test_histograms_bin_the_kept_values_of_numeric_columns(job, column):
    out, kept = job
    columns = json.loads((out / "report" / "summary.json").read_text())["columns"]
    histogram = columns[column]
    assert histogram["kind"] == "histogram"
    assert histogram["bins"] == expected_bins([r[column] for r in kept])
    assert sum(b["docs"] for b in histogram["bins"]) == sum(r[column] is not None for r in kept)


def test_bins_cover_the_range_with_the_maximum_in_the_last_bin(job):
    out, kept = job
    bins = build_summary(str(out))["columns"]["n_words"]["bins"]
    words = [r["n_words"] for r in kept]
    assert (bins[0]["lo"], bins[-1]["hi"]) == pytest.approx((min(words), max(words)))
    assert len(bins) <= HISTOGRAM_BINS
    assert bins[-1]["docs"] == sum(r["n_words"] >= bins[-1]["lo"] for r in kept)
    width = (max(words) - min(words)) / HISTOGRAM_BINS
    assert all(b["hi"] - b["lo"] == pytest.approx(width) for b in bins)
    constant = build_summary(str(out))["columns"]["constant"]["bins"]
    assert constant == [{"lo": 7.0, "hi": 8.0, "docs": len(kept)}]


def test_only_numeric_annotation_columns_get_histograms(job):
    out, _ = job
    columns = build_summary(str(out))["columns"]
    assert set(columns) == {"lang", "score", "constant", "ratio", "n_words"}  # not id, text


def test_nan_and_infinities_stay_out_of_a_histogram(job):
    out, kept = job
    bins = build_summary(str(out))["columns"]["ratio"]["bins"]
    finite = [r["ratio"] for r in kept if math.isfinite(r["ratio"])]
    assert len(finite) < len(kept)  # the corpus has NaN and infinities to leave out
    assert bins == expected_bins(finite)


def test_the_page_draws_a_bar_per_language_and_per_bin(job):
    out, _ = job
    summary = build_summary(str(out))
    page = render_html(summary)
    assert "<h2>lang</h2>" in page and "<h2>score (kept documents)</h2>" in page
    for value in summary["columns"]["lang"]["values"]:
        assert f">{value['value']}</text>" in page and f">{value['docs']:,}</text>" in page
    for b in summary["columns"]["score"]["bins"]:
        assert f">{b['lo']:.3g} - {b['hi']:.3g}</text>" in page
    assert "l00" not in page  # the two least frequent languages are not listed
