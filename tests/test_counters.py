"""A stage's own totals (`StageOutput.counters`) reach each shard's manifest and the report."""

from __future__ import annotations

import json

from pipeline.registry import register
from pipeline.runner import run_job
from pipeline.spec import load_spec
from pipeline.stage import Stage, StageOutput
from tests.conftest import assert_accounting, make_text, write_jsonl, write_spec


@register
class CountsUrls(Stage):
    """Keeps everything; counts rows with and without a URL, per batch."""

    name = "test_counts_urls"

    def requires(self):
        return ("text", "url")

    def process(self, table):
        missing = table["url"].null_count
        return StageOutput(table, None, counters={"no_url": missing,
                                                   "with_url": table.num_rows - missing})


def test_counters_add_up_per_shard_and_in_the_report(tmp_path, ray_cluster):
    for part in range(2):
        rows = [{"text": make_text(part * 100 + i, 12),
                 **({"url": f"https://x.org/{i}"} if i % 3 else {})} for i in range(90)]
        write_jsonl(tmp_path / "in" / f"p{part}.jsonl", rows)
    spec = load_spec(write_spec(tmp_path / "job.yaml", """\
name: counters
input: {format: jsonl, paths: ["in/*.jsonl"]}
output: {path: out}
stages:
  - test_counts_urls: {}
batch_rows: 16
"""))
    run_job(spec, progress=False)
    out = tmp_path / "out"
    assert_accounting(out)
    for path in sorted((out / "manifests").glob("part-*.json")):
        stage = next(s for s in json.loads(path.read_text())["stages"]
                     if s["stage"] == "test_counts_urls")
        # 90 rows in 6 batches of 16 (and one of 10): the batch totals add up per shard
        assert stage["counters"] == {"no_url": 30, "with_url": 60}
    reader = next(s for s in json.loads(next((out / "manifests").glob("part-*.json"))
                                        .read_text())["stages"] if s["stage"] == "read")
    assert "counters" not in reader  # a step without counters writes none
    summary = json.loads((out / "report" / "summary.json").read_text())
    step = next(s for s in summary["funnel"] if s["stage"] == "test_counts_urls")
    assert step["counters"] == {"no_url": 60, "with_url": 120}
    assert "no_url" in (out / "report" / "index.html").read_text()
