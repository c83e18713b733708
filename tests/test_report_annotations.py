"""The report shows the distribution of every annotated column (issue 17, item 4): a numeric
score (`edu_score`, as the annotate stage's edu preset writes it) as a histogram, a label or
a flag as counts of its values; free-text columns (mostly distinct values) are left out."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pipeline.report import TOP_VALUES, build_summary, render_html
from pipeline.runner import run_job
from pipeline.spec import load_spec
from tests.conftest import make_text, write_jsonl, write_spec

TOPICS = [f"topic{n:02d}" for n in range(TOP_VALUES + 3)]  # more than the report lists


@pytest.fixture(scope="module")
def annotated(tmp_path_factory, ray_cluster) -> tuple[Path, list[dict]]:
    folder = tmp_path_factory.mktemp("annotated")
    rows = []
    for i in range(240):
        rows.append({"id": f"d{i}", "text": make_text(i, 12), "edu_score": i % 6,
                     "topic": TOPICS[min(i % 40, len(TOPICS) - 1)],
                     "is_edu": i % 6 >= 3, "title": f"A page titled {i}",
                     "edu_reason": None if i % 5 == 0 else ["thin", "clear"][i % 2]})
    write_jsonl(folder / "in.jsonl", rows)
    spec = write_spec(folder / "job.yaml", """\
name: annotated
input: {format: jsonl, paths: [in.jsonl]}
output: {path: out}
stages:
  - length_filter: {min_words: 5}
""")
    run_job(load_spec(spec), progress=False)
    return folder / "out", pq.read_table(folder / "out" / "data").to_pylist()


def test_a_numeric_annotation_gets_a_histogram_of_its_values(annotated):
    out, kept = annotated
    bins = build_summary(str(out))["columns"]["edu_score"]["bins"]
    counted = Counter(r["edu_score"] for r in kept)
    assert len(counted) == 6
    # six integer scores over 20 bins: each score alone in its bin, the top one in the last
    assert [b["docs"] for b in bins] == [counted[s] for s in range(6)]
    assert [b["lo"] for b in bins[:5]] == [0, 1, 2, 3, 4] and bins[5]["hi"] == 5


@pytest.mark.parametrize("column", ["topic", "is_edu", "edu_reason"])
def test_labels_and_flags_get_counts_of_their_most_frequent_values(annotated, column):
    out, kept = annotated
    summary = build_summary(str(out))["columns"][column]
    counted = Counter(r[column] for r in kept)
    assert summary["kind"] == "counts"
    expected = sorted(counted.items(), key=lambda kv: (-kv[1], kv[0] is None, kv[0]))
    assert summary["values"] == [{"value": v, "docs": n} for v, n in expected[:TOP_VALUES]]
    if column == "topic":
        assert len(counted) > TOP_VALUES == len(summary["values"])
    if column == "edu_reason":
        assert {"value": None, "docs": counted[None]} in summary["values"]  # failures show


def test_free_text_and_the_documents_themselves_are_not_counted(annotated):
    out, _ = annotated
    columns = build_summary(str(out))["columns"]
    assert not {"title", "text", "id", "source"} & set(columns)
    page = render_html(build_summary(str(out)))
    for name in ("topic", "is_edu", "edu_reason"):
        assert f"<h2>{name}</h2>" in page
    assert "<h2>edu_score (kept documents)</h2>" in page
