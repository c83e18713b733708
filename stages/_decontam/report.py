"""`pipeline decontam-report OUT`: which benchmark items a finished job found, and where.

Reads the committed shards (those with a manifest) of a job whose spec ran the `decontam`
stage. A document counts for every item in its `contamination` column; it was `dropped` if
`decontam` rejected it, `kept` otherwise (redacted, or rejected later by another stage for
another reason). Counts per benchmark and per item, most-hit items first.

    python -m stages._decontam.report OUT [--json] [--top N]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict

import pyarrow.parquet as pq

from pipeline.io.layout import JobLayout

STAGE = "decontam"


def decontam_report(output_dir: str) -> dict:
    """{"docs_checked", "docs_hit", "docs_dropped", "benchmarks": {name: {"docs", "dropped",
    "items_hit", "items": {item: {"docs", "dropped", "ids": [first document ids]}}}}}"""
    layout = JobLayout(output_dir)
    if not layout.fs.exists(layout.base):
        raise FileNotFoundError(f"no job output at {output_dir}")
    shards = [layout.read_json(p) for p in
              sorted(layout.fs.glob(layout.path("manifests", "part-*.json")))]
    checked = sum(s["in"] for m in shards for s in m["stages"] if s["stage"] == STAGE)
    if not any(s["stage"] == STAGE for m in shards for s in m["stages"]):
        raise ValueError(f"{output_dir}: no finished shard ran the {STAGE!r} stage")
    benchmarks: dict = defaultdict(lambda: {"docs": 0, "dropped": 0, "items": defaultdict(
        lambda: {"docs": 0, "dropped": 0, "ids": []})})
    hit_docs = dropped_docs = 0
    for manifest in shards:
        for kind in ("data", "rejected"):
            path = getattr(layout, kind)(manifest["shard"])
            for doc_id, hits, dropped in _hits(layout, path, kind == "rejected"):
                hit_docs += 1
                dropped_docs += dropped
                for name in {h.split(":", 1)[0] for h in hits}:
                    benchmarks[name]["docs"] += 1
                    benchmarks[name]["dropped"] += dropped
                for hit in hits:
                    name, item = hit.split(":", 1)
                    entry = benchmarks[name]["items"][item]
                    entry["docs"] += 1
                    entry["dropped"] += dropped
                    if len(entry["ids"]) < 5:
                        entry["ids"].append(doc_id)
    out = {"output": output_dir, "docs_checked": checked, "docs_hit": hit_docs,
           "docs_dropped": dropped_docs, "benchmarks": {}}
    for name in sorted(benchmarks):
        bench = benchmarks[name]
        items = dict(sorted(bench["items"].items(), key=lambda kv: (-kv[1]["docs"], kv[0])))
        out["benchmarks"][name] = {"docs": bench["docs"], "dropped": bench["dropped"],
                                   "items_hit": len(items), "items": items}
    return out


def _hits(layout: JobLayout, path: str, rejected: bool):
    """(id, contamination, dropped by decontam) for each row of one file that hit something."""
    if not layout.fs.exists(path):
        return
    with layout.fs.open(path, "rb") as f:
        parquet = pq.ParquetFile(f)
        names = parquet.schema_arrow.names
        if "contamination" not in names:
            return
        columns = ["id", "contamination"] + (["stage"] if rejected and "stage" in names else [])
        table = parquet.read(columns=columns)
    stages = table["stage"].to_pylist() if "stage" in table.column_names \
        else [None] * table.num_rows
    for doc_id, hits, stage in zip(table["id"].to_pylist(),
                                   table["contamination"].to_pylist(), stages):
        if hits:
            yield doc_id, hits, rejected and stage == STAGE


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pipeline decontam-report",
                                     description="benchmark items found by the decontam stage")
    parser.add_argument("output", help="a job output folder")
    parser.add_argument("--json", action="store_true", help="print the full report as JSON")
    parser.add_argument("--top", type=int, default=10, help="items listed per benchmark")
    args = parser.parse_args(argv)
    try:
        report = decontam_report(args.output)
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(report, indent=1))
        return 0
    print(f"{report['output']}: {report['docs_hit']:,} of {report['docs_checked']:,} documents "
          f"hit benchmark items ({report['docs_dropped']:,} dropped, "
          f"{report['docs_hit'] - report['docs_dropped']:,} kept after redaction)")
    if not report["benchmarks"]:
        print("  no benchmark item was found")
    for name, bench in report["benchmarks"].items():
        print(f"  {name}: {bench['docs']:,} documents, {bench['items_hit']:,} items hit "
              f"({bench['dropped']:,} documents dropped)")
        items = list(bench["items"].items())[:args.top]
        width = max([len(f"{name}:{item}") for item, _ in items] + [28])
        for item, entry in items:
            print(f"    {f'{name}:{item}':<{width}} {entry['docs']:>6,} docs  "
                  f"e.g. {', '.join(map(str, entry['ids'][:3]))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
