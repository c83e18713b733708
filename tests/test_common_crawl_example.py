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

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SPEC = EXAMPLES / "common_crawl.yaml"
SAMPLE = EXAMPLES / "data" / "common-crawl-sample.warc.gz"
STEPS = ["read", "license", "extract", "langid", "quality", "dedup_exact", "dedup_minhash",
         "decontam"]


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
