"""`dedup_minhash` at growing corpus sizes, through the real runner (local Ray, all cores).

Synthetic web-like documents (Zipf words from a 20k vocabulary, 30-330 words, ~1.3 KB) of
which 10% are edited copies (1% of words replaced: 5-gram Jaccard ~0.9) of an earlier
document. For each size: wall time of the whole job (read -> dedup_minhash -> write), time
per phase of the global stage (from its commit markers), peak memory (sum of RSS over this
process and everything it started, and the largest single process), and the per-document
state the global phases keep (in memory per band row, and on disk between phases). The
baseline of each size is the first size, scaled linearly: time and memory should grow no
faster than the corpus.

    python benchmarks/minhash_scale.py [--sizes 10000,100000,1000000] [--verify]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("RAY_AUTH_MODE", "disabled")

from _memory import ProcessSampler, process_tree  # noqa: E402
from pipeline.ray_env import ensure_ray  # noqa: E402
from pipeline.runner import run_job  # noqa: E402
from pipeline.spec import parse_spec  # noqa: E402

ROWS_PER_FILE = 25_000


def write_corpus(folder: Path, docs: int, seed: int = 7) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    letters = np.array(list("etaoinshrdlcumwfgypbvkjxqz"))
    vocab = np.array(["".join(rng.choice(letters, size=rng.integers(2, 10)))
                      for _ in range(20_000)])
    weights = 1 / np.arange(1, len(vocab) + 1)
    weights /= weights.sum()
    for index in range(0, docs, ROWS_PER_FILE):
        n = min(ROWS_PER_FILE, docs - index)
        lengths = rng.integers(30, 330, size=n)
        bounds = np.concatenate([[0], np.cumsum(lengths)])
        words = rng.choice(len(vocab), size=int(bounds[-1]), p=weights)
        docs_words = [words[bounds[i]:bounds[i + 1]] for i in range(n)]
        for i in np.flatnonzero(rng.random(n) < 0.1)[1:]:  # near-copies of earlier documents
            copy = docs_words[rng.integers(0, i)].copy()
            changed = rng.random(len(copy)) < 0.01
            copy[changed] = rng.integers(0, len(vocab), size=int(changed.sum()))
            docs_words[i] = copy
        table = pa.table({"id": [f"doc-{i:08d}" for i in range(index, index + n)],
                          "text": [" ".join(vocab[w]) for w in docs_words]})
        pq.write_table(table, folder / f"part-{index // ROWS_PER_FILE:05d}.parquet",
                       row_group_size=5_000)


def phase_seconds(work: Path) -> dict[str, float]:
    """Seconds per phase of the global stage, from the first to the last commit marker (a
    phase's first unit started before its first marker, so these slightly undercount)."""
    spans: dict[str, list[float]] = {}
    previous_end = None
    for phase_dir in sorted((p for p in work.glob("_work/global/*/*/_phases/*")),
                            key=lambda p: min(m.stat().st_mtime for m in p.glob("*.json"))):
        times = [m.stat().st_mtime for m in phase_dir.glob("*.json")]
        name = phase_dir.name.split("-")[0] if phase_dir.name.startswith("components") \
            else phase_dir.name
        start = previous_end if previous_end is not None else min(times)
        spans.setdefault(name, []).append(max(times) - start)
        previous_end = max(times)
    return {name: sum(values) for name, values in spans.items()}


def run(corpus: Path, out: Path, verify: bool) -> dict:
    spec = parse_spec(f"""
name: scale
input: {{format: parquet, paths: ["{corpus}/*.parquet"]}}
output: {{path: "{out}"}}
stages:
  - dedup_minhash: {{verify: {str(verify).lower()}}}
""")
    # this process and its descendants: Ray's raylet, GCS and workers when it started Ray
    with ProcessSampler(process_tree(), interval_s=0.1) as memory:
        started = time.perf_counter()
        result = run_job(spec, progress=False, keep_work=True)
        seconds = time.perf_counter() - started
    decisions = json.loads(next(out.glob("_work/global/*/*/decisions.json")).read_text())
    stats = decisions["stats"]
    spilled = {folder: sum(f.stat().st_size
                           for f in out.glob(f"_work/global/*/*/run-*/{folder}/*"))
               for folder in ("bands", "shingles")}
    return {"seconds": seconds, "docs": result.docs_in, "peak_total": memory.rss_peak,
            "peak_single": memory.rss_single_peak, "stats": stats, "spilled": spilled,
            "phases": phase_seconds(out)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--verify", action="store_true")
    parser.add_argument("--workdir", default=None)
    args = parser.parse_args()
    work = Path(args.workdir or tempfile.mkdtemp(prefix="minhash-scale-"))
    ensure_ray()
    print(f"cores: {os.cpu_count()}  verify: {args.verify}")
    first = None
    for docs in (int(s) for s in args.sizes.split(",")):
        corpus = work / f"corpus-{docs}"
        started = time.perf_counter()
        write_corpus(corpus, docs)
        mb = sum(pc.sum(pc.binary_length(pq.read_table(f, columns=["text"])["text"])).as_py()
                 for f in corpus.glob("*.parquet")) / 1e6
        made = time.perf_counter() - started
        r = run(corpus, work / f"out-{docs}", args.verify)
        s = r["stats"]
        scale = docs / first["docs"] if first else 1.0
        base_s = first["seconds"] * scale if first else r["seconds"]
        base_mem = first["peak_total"] if first else r["peak_total"]
        per_doc_mem = 16 * s["bands"]
        print(f"docs={docs:>9,} ({mb:,.0f} MB text, made in {made:.0f} s)  "
              f"time {r['seconds']:7.1f} s  linear from first {base_s:7.1f} s  "
              f"ratio {r['seconds'] / base_s:4.2f}  ({docs / r['seconds']:,.0f} docs/s, "
              f"{mb / r['seconds']:.1f} MB/s)")
        print(f"    peak RSS all processes {r['peak_total'] / 2**20:7,.0f} MiB  "
              f"first size {base_mem / 2**20:7,.0f} MiB  ratio {r['peak_total'] / base_mem:4.2f}"
              f"   largest process {r['peak_single'] / 2**20:,.0f} MiB")
        print(f"    per-document state: {per_doc_mem} B in band rows ({s['bands']} bands x "
              f"(8 B bucket + 8 B node)), spilled "
              f"{r['spilled']['bands'] / docs:.0f} B/doc bands (zstd)"
              + (f" + {r['spilled']['shingles'] / docs:.0f} B/doc shingles" if args.verify
                 else "")
              + f"; {s['partitions']} partitions, {s['candidate_pairs']:,} candidate pairs, "
              f"{s['rejected']:,} rejected")
        print("    phases (s): " + "  ".join(f"{k} {v:.1f}" for k, v in r["phases"].items()))
        first = first or r
        shutil.rmtree(work / f"out-{docs}", ignore_errors=True)
    if not args.workdir:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
