"""Progress read from manifests agrees with the report, also for a job cut into segments by
a global stage, and while shards are still missing."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest

from pipeline.api.progress import JobProgress
from pipeline.report import build_summary
from pipeline.runner import run_job
from pipeline.spec import load_spec
from tests.conftest import make_text, write_jsonl, write_spec


NAMES = ["length_filter", "dedup_exact", "length_filter"]


@pytest.fixture(scope="module")
def segmented_output(tmp_path_factory, ray_cluster) -> Path:
    """A finished job with a global stage, its intermediate manifests kept."""
    tmp_path = tmp_path_factory.mktemp("segmented")
    for part in range(4):
        rows = [{"text": make_text(i % 30, 3 if i % 7 == 0 else 12)} for i in range(part * 50,
                                                                                  part * 50 + 50)]
        write_jsonl(tmp_path / "in" / f"p{part}.jsonl", rows)
    spec = load_spec(write_spec(tmp_path / "job.yaml", """\
name: dedup
input: {format: jsonl, paths: ["in/*.jsonl"]}
output: {path: out}
stages:
  - length_filter: {min_words: 5}
  - dedup_exact: {}
  - length_filter: {min_words: 8}
"""))
    run_job(spec, progress=False, keep_work=True)
    return tmp_path / "out"


def test_progress_of_a_segmented_job_matches_its_report(segmented_output):
    out = segmented_output
    snapshot = JobProgress(str(out), NAMES).snapshot(started_at=time.time() - 10,
                                                     finished_at=time.time())
    funnel = build_summary(str(out))["funnel"]
    assert snapshot["shards"] == {"planned": 4, "done": 4, "failed": 0}
    assert snapshot["fraction"] == 1.0
    assert [(s["step"], s["stage"], s["in"], s["kept"], s["rejected"])
            for s in snapshot["stages"]] == \
        [(f["step"], f["stage"], f["in"], f["kept"], f["rejected"]) for f in funnel]
    assert all(s["shards_done"] == 4 for s in snapshot["stages"])
    assert snapshot["docs"]["in"] == 200
    assert snapshot["docs"]["in"] == snapshot["docs"]["kept"] + snapshot["docs"]["rejected"]


def test_shards_between_segments_count_for_the_stages_they_passed(segmented_output, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(segmented_output, out)
    # As if shard 00003 had passed segment 0 but not yet the last one.
    (out / "manifests" / "part-00003.json").unlink()
    segment0 = json.loads((out / "_work" / "segment-0" / "manifests" / "part-00003.json")
                          .read_text())
    snapshot = JobProgress(str(out), NAMES).snapshot(started_at=time.time() - 30)
    done = {s["step"]: s["shards_done"] for s in snapshot["stages"]}
    assert done == {-1: 4, 0: 4, 1: 3, 2: 3}
    assert snapshot["shards"]["done"] == 3
    assert 0.8 < snapshot["fraction"] < 1 and snapshot["eta_s"] > 0
    read = snapshot["stages"][0]
    assert read["in"] == 200  # every shard was read
    assert segment0["stages"][0]["in"] > 0


def test_shards_without_documents_count_as_done_for_every_stage(tmp_path, ray_cluster):
    # Byte ranges smaller than a line: most shards hold no line start, so no documents.
    write_jsonl(tmp_path / "in" / "long.jsonl", [{"text": make_text(i, 40)} for i in range(6)])
    spec = load_spec(write_spec(tmp_path / "job.yaml", """\
name: sparse
input: {format: jsonl, paths: ["in/*.jsonl"], shard_bytes: 100}
output: {path: out}
stages:
  - length_filter: {min_words: 5}
"""))
    run_job(spec, progress=False)
    snapshot = JobProgress(str(tmp_path / "out"), ["length_filter"]).snapshot(
        started_at=time.time() - 5, finished_at=time.time())
    planned = snapshot["shards"]["planned"]
    assert planned > 6 and snapshot["shards"]["done"] == planned
    assert [s["shards_done"] for s in snapshot["stages"]] == [planned, planned]
    assert snapshot["fraction"] == 1.0 and snapshot["docs"]["in"] == 6
