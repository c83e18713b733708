"""examples/common_crawl.yaml end to end: the full CPU recipe (license, extract, langid,
quality, exact and near dedup, decontamination) on the bundled Common Crawl-shaped sample."""

from __future__ import annotations

import gzip
import importlib.util
import json
import re
import sys
from itertools import combinations
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from warcio.archiveiterator import ArchiveIterator

from pipeline.runner import run_job
from pipeline.spec import load_spec
from tests.conftest import assert_accounting

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
SPEC = EXAMPLES / "common_crawl.yaml"
SAMPLE = EXAMPLES / "data" / "common-crawl-sample.warc.gz"
STEPS = ["read", "license", "extract", "langid", "quality", "dedup_exact", "dedup_minhash",
         "decontam"]
# What README says each step removes from the 51 records (its "pipeline run
# examples/common_crawl.yaml on its 51-record sample" paragraph), and what is kept.
RECORDS, KEPT, CC_LICENSES = 51, 25, 17
REMOVED = {"read": 4, "license": 0, "extract": 2, "langid": 4, "quality": 8, "dedup_exact": 3,
           "dedup_minhash": 3, "decontam": 2}


@pytest.fixture(scope="module")
def recipe(tmp_path_factory, ray_cluster) -> Path:
    out = tmp_path_factory.mktemp("common-crawl") / "out"
    run_job(load_spec(SPEC, output_override=str(out)), progress=False)
    return out


def rows(out: Path, folder: str) -> list[dict]:
    return pq.read_table(out / folder).to_pylist()


def test_every_response_record_is_kept_or_rejected_with_its_step_and_reason(recipe):
    with open(SAMPLE, "rb") as f:
        responses = {r.rec_headers.get_header("WARC-Record-ID").strip("<>")
                     for r in ArchiveIterator(f) if r.rec_type == "response"}
    kept, rejected = rows(recipe, "data"), rows(recipe, "rejected")
    assert_accounting(recipe)
    ids = [r["id"] for r in kept + rejected]
    assert len(ids) == len(set(ids)) and set(ids) == responses
    assert all(r["stage"] in STEPS and r["reason"] for r in rejected)


def test_every_step_removes_something_except_license_which_only_annotates(recipe):
    summary = json.loads((recipe / "report" / "summary.json").read_text())
    funnel = {step["stage"]: step for step in summary["funnel"]}
    assert list(funnel) == STEPS
    assert funnel["license"]["rejected"] == 0
    assert all(funnel[name]["rejected"] >= 1 for name in STEPS if name != "license")
    licenses = {r["license"] for r in rows(recipe, "data")}
    assert {"CC-BY-4.0", "CC-BY-SA-4.0", "CC-BY-NC-4.0", None} <= licenses


def test_each_step_removes_the_count_readme_gives_for_the_sample(recipe):
    summary = json.loads((recipe / "report" / "summary.json").read_text())
    assert summary["docs"] == {"in": RECORDS, "kept": KEPT, "rejected": RECORDS - KEPT}
    assert {step["stage"]: step["rejected"] for step in summary["funnel"]} == REMOVED
    rejected, kept = rows(recipe, "rejected"), rows(recipe, "data")
    reasons = {name: sorted(r["reason"] for r in rejected if r["stage"] == name)
               for name in STEPS}
    # the reader: a 404, a 301, a PDF and a JPEG
    assert reasons["read"] == ["content_type:application/pdf", "content_type:image/jpeg",
                               "http_status:301", "http_status:404"]
    assert reasons["extract"] == ["no_content"] * REMOVED["extract"]  # no text
    assert all(r.startswith("lang:") and r != "lang:en" for r in reasons["langid"])
    # quality: Gopher, C4 and FineWeb rules, each rejection naming its rule
    rules = {r.split(":")[0] for r in reasons["quality"]}
    assert rules <= {"gopher_quality", "gopher_repetition", "c4", "fineweb"}
    assert {"gopher_quality", "c4", "fineweb"} <= rules
    assert all(":" in r for r in reasons["quality"])
    assert reasons["dedup_exact"] == ["duplicate"] * REMOVED["dedup_exact"]
    assert reasons["dedup_minhash"] == ["near_duplicate"] * REMOVED["dedup_minhash"]
    assert reasons["decontam"] == ["contaminated:gsm8k", "contaminated:humaneval"]
    # license annotates CC licenses on pages kept and rejected after it alike
    licensed = [r["license"] for r in kept + rejected if r.get("license")]
    assert len(licensed) == CC_LICENSES and all(lic.startswith("CC-") for lic in licensed)


def test_readme_gives_the_counts_this_test_checks():
    readme = " ".join((ROOT / "README.md").read_text().split())
    start = readme.index("`pipeline run examples/common_crawl.yaml` on its")
    paragraph = readme[start:readme.index("Every record is kept", start)]
    for phrase in (f"its {RECORDS}-record sample", f"the reader rejects {REMOVED['read']} ",
                   f"`license` annotates {CC_LICENSES} CC licenses",
                   f"`extract` rejects {REMOVED['extract']} ", f"`langid` {REMOVED['langid']} ",
                   f"`quality` {REMOVED['quality']} ",
                   f"`dedup_exact` {REMOVED['dedup_exact']} ",
                   f"`dedup_minhash` {REMOVED['dedup_minhash']} ",
                   f"`decontam` {REMOVED['decontam']} ", f"{KEPT} kept"):
        assert phrase in paragraph, (phrase, paragraph)


def test_decontam_drops_the_pages_quoting_gsm8k_and_humaneval(recipe):
    dropped = {r["url"].rsplit("/", 1)[1]: r for r in rows(recipe, "rejected")
               if r["stage"] == "decontam"}
    assert set(dropped) == {"homework-help-duck-eggs", "warm-up-exercises"}
    assert dropped["homework-help-duck-eggs"]["contamination"] == ["gsm8k:0"]
    assert dropped["warm-up-exercises"]["contamination"] == ["humaneval:HumanEval/0"]
    kept = {r["url"].rsplit("/", 1)[1]: r for r in rows(recipe, "data")}
    assert kept["benchmark-contamination"]["contamination"] == []  # writes about, quotes none


def test_kept_documents_are_neither_exact_nor_near_duplicates(recipe):
    texts = [r["text"] for r in rows(recipe, "data")]
    assert len({" ".join(t.lower().split()) for t in texts}) == len(texts)
    shingles = [_shingles(t) for t in texts]
    closest = max(len(a & b) / len(a | b) for a, b in combinations(shingles, 2))
    assert closest < 0.5


def test_sample_generator_is_deterministic_and_writes_the_committed_sample(tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location("make_common_crawl_sample",
                                                  EXAMPLES / "make_common_crawl_sample.py")
    generator = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, generator)  # dataclasses look themselves up
    spec.loader.exec_module(generator)
    first = generator.main(tmp_path / "a.warc.gz").read_bytes()
    assert generator.main(tmp_path / "b.warc.gz").read_bytes() == first
    # compared decompressed: another zlib build may compress the same records differently
    assert gzip.decompress(first) == gzip.decompress(SAMPLE.read_bytes())


def _shingles(text: str, n: int = 5) -> set[tuple[str, ...]]:
    words = re.findall(r"\w+", text.lower())
    return {tuple(words[i:i + n]) for i in range(len(words) - n + 1)}
