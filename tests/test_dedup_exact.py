"""dedup_exact as a global stage on the real runner: one survivor per text, across shards."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pipeline.runner import run_job
from pipeline.spec import load_spec
from tests.conftest import leave_phase_half_done, make_text, write_jsonl, write_spec


def corpus(tmp_path: Path) -> dict[str, str]:
    """Three files; groups of copies spread across files, some differing only in case or
    whitespace. Returns id -> text."""
    texts = {}
    rows = {0: [], 1: [], 2: []}
    for i in range(90):
        base = make_text(i % 30, 12 + i % 30)  # ids i, i+30, i+60 share a text
        variant = base.upper() if i >= 60 else base.replace(" ", "  \n") if i >= 30 else base
        doc_id = f"d{i:03d}"
        texts[doc_id] = variant
        rows[(i * 7) % 3].append({"id": doc_id, "text": variant})
    rows[1].append({"id": "tiny", "text": "too short"})
    for part, items in rows.items():
        write_jsonl(tmp_path / "in" / f"p{part}.jsonl", items)
    return texts


def spec_for(tmp_path: Path, out: str, dedup: str = "{}") -> Path:
    return write_spec(tmp_path / f"{out}.yaml", f"""\
name: dedup
input: {{format: jsonl, paths: ["in/*.jsonl"]}}
output: {{path: {out}}}
stages:
  - length_filter: {{min_words: 5}}
  - dedup_exact: {dedup}
  - length_filter: {{min_words: 20}}
""")


def outcome(out: Path) -> tuple[list[str], dict[str, tuple[str, str]]]:
    kept = sorted(i for f in (out / "data").glob("*.parquet")
                  for i in pq.read_table(f)["id"].to_pylist())
    rejected = {}
    for f in (out / "rejected").glob("*.parquet"):
        for row in pq.read_table(f).to_pylist():
            rejected[row["id"]] = (row["stage"], row["reason"], row.get("duplicate_of"))
    return kept, rejected


def test_exact_duplicates_keep_smallest_id_across_shards(tmp_path, ray_cluster):
    corpus(tmp_path)
    run_job(load_spec(spec_for(tmp_path, "out")), progress=False)
    kept, rejected = outcome(tmp_path / "out")
    survivors = [f"d{i:03d}" for i in range(30)]
    long_enough = [d for d in survivors if 12 + int(d[1:]) % 30 >= 20]
    assert kept == long_enough
    for i in range(30, 90):
        assert rejected[f"d{i:03d}"] == ("dedup_exact", "duplicate", f"d{i % 30:03d}")
    assert rejected["tiny"][:2] == ("length_filter", "too_short:words=2")
    assert len(kept) + len(rejected) == 91  # every document accounted for
    for manifest in (tmp_path / "out" / "manifests").glob("part-*.json"):
        stages = json.loads(manifest.read_text())["stages"]
        assert [s["stage"] for s in stages] == ["read", "length_filter", "dedup_exact",
                                                "length_filter"]
        for s in stages:
            assert s["in"] == s["kept"] + s["rejected"]
        assert [s["in"] for s in stages[1:]] == [s["kept"] for s in stages[:-1]]
    assert not (tmp_path / "out" / "_work" / "global").exists()  # cleaned after success
    summary = json.loads((tmp_path / "out" / "report" / "summary.json").read_text())
    assert summary["docs"] == {"in": 91, "kept": len(kept), "rejected": len(rejected)}


@pytest.mark.parametrize("partitions", [1, 4])
def test_result_does_not_depend_on_partitions(tmp_path, ray_cluster, partitions):
    corpus(tmp_path)
    run_job(load_spec(spec_for(tmp_path, "auto")), progress=False)
    run_job(load_spec(spec_for(tmp_path, "fixed", f"{{partitions: {partitions}}}")),
            progress=False)
    assert outcome(tmp_path / "auto") == outcome(tmp_path / "fixed")


def test_normalisation_options(tmp_path, ray_cluster):
    write_jsonl(tmp_path / "in" / "a.jsonl", [
        {"id": "a", "text": "Price: 10 dollars, today only!"},
        {"id": "b", "text": "price 99 dollars today only"},
        {"id": "c", "text": "PRICE: 10 DOLLARS, TODAY ONLY!"}])
    strict = write_spec(tmp_path / "s.yaml", """\
name: d
input: {format: jsonl, paths: ["in/*.jsonl"]}
output: {path: strict}
stages: [{dedup_exact: {}}]
""")
    loose = write_spec(tmp_path / "l.yaml", strict.read_text().replace(
        "{dedup_exact: {}}", "{dedup_exact: {strip_punctuation: true, strip_digits: true}}")
        .replace("strict", "loose"))
    run_job(load_spec(strict), progress=False)
    run_job(load_spec(loose), progress=False)
    assert outcome(tmp_path / "strict")[0] == ["a", "b"]
    assert outcome(tmp_path / "loose")[0] == ["a"]


def test_resume_inside_global_phase_gives_same_result(tmp_path, ray_cluster):
    corpus(tmp_path)
    run_job(load_spec(spec_for(tmp_path, "clean")), progress=False)
    spec = load_spec(spec_for(tmp_path, "resumed", "{partitions: 3}"))
    run_job(spec, progress=False, keep_work=True)
    out = tmp_path / "resumed"
    # hash phase done, one partition of `group` committed, nothing after it
    phases = leave_phase_half_done(out, "group")
    hash_markers = {p.name: p.read_text() for p in (phases / "hash").glob("*.json")}
    run_job(spec, progress=False, keep_work=True)
    assert {p.name: p.read_text() for p in (phases / "hash").glob("*.json")} == hash_markers
    assert outcome(out) == outcome(tmp_path / "clean")
