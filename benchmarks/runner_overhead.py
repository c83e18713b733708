"""Runner overhead: the same corpus through `length_filter` on the runner (Ray, all cores) vs a
plain single-process pyarrow read-filter-write loop, in one invocation.

Prints docs/s for both and their ratio per corpus size, the size where the runner breaks even
once Ray's start-up is counted, and the peak memory of the runner's workers as the corpus
grows 10x.

    python benchmarks/runner_overhead.py [--sizes 20000,200000] [--workdir /tmp/bench]
"""

from __future__ import annotations

import argparse
import multiprocessing
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

from _memory import ProcessSampler, ray_workers  # noqa: E402
from pipeline.ray_env import ensure_ray  # noqa: E402
from pipeline.runner import run_job  # noqa: E402
from pipeline.spec import parse_spec  # noqa: E402
from stages._shared.words import count_words  # noqa: E402

ROWS_PER_FILE = 20_000
ROW_GROUP = 5_000


def write_corpus(folder: Path, docs: int) -> None:
    """Web-like documents: Zipf-distributed words from a 20k-word vocabulary, 30-330 words
    each (about 1 KB), so that Parquet compresses them about as much as real text."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    letters = np.array(list("etaoinshrdlcumwfgypbvkjxqz"))
    vocab = np.array(["".join(rng.choice(letters, size=rng.integers(2, 10)))
                      for _ in range(20_000)])
    weights = 1 / np.arange(1, len(vocab) + 1)
    weights /= weights.sum()
    for index in range(0, docs, ROWS_PER_FILE):
        n = min(ROWS_PER_FILE, docs - index)
        lengths = rng.integers(30, 330, size=n)
        words = vocab[rng.choice(len(vocab), size=int(lengths.sum()), p=weights)]
        bounds = np.concatenate([[0], np.cumsum(lengths)])
        texts = [" ".join(words[bounds[i]:bounds[i + 1]]) for i in range(n)]
        table = pa.table({"id": [f"doc-{i}" for i in range(index, index + n)], "text": texts})
        pq.write_table(table, folder / f"part-{index // ROWS_PER_FILE:05d}.parquet",
                       row_group_size=ROW_GROUP)


def baseline(corpus: Path, out: Path, min_words: int) -> int:
    """What a user would write by hand: read, filter with pyarrow, write kept and rejected."""
    out.mkdir(parents=True, exist_ok=True)
    docs = 0
    for path in sorted(corpus.glob("*.parquet")):
        kept_w = rej_w = None
        for batch in pq.ParquetFile(path).iter_batches(batch_size=2048):
            table = pa.Table.from_batches([batch])
            words = count_words(table["text"].combine_chunks())
            mask = pc.greater_equal(words, min_words)
            kept, rejected = table.filter(mask), table.filter(pc.invert(mask))
            if kept_w is None:
                kept_w = pq.ParquetWriter(out / f"kept-{path.name}", kept.schema,
                                          compression="zstd")
                rej_w = pq.ParquetWriter(out / f"rej-{path.name}", rejected.schema,
                                         compression="zstd")
            kept_w.write_table(kept)
            rej_w.write_table(rejected)
            docs += table.num_rows
        kept_w.close()
        rej_w.close()
    return docs


def _baseline_part(args) -> int:
    files, out, min_words = args
    docs = 0
    for path in files:
        folder = Path(out) / path.stem
        single = folder / "in"
        single.mkdir(parents=True, exist_ok=True)
        (single / path.name).symlink_to(path)
        docs += baseline(single, folder, min_words)
    return docs


def baseline_processes(corpus: Path, out: Path, min_words: int, processes: int) -> int:
    """The hand-written loop in `processes` plain processes, files split between them: what
    this machine can do with no framework at all (its parallel ceiling for this work)."""
    files = sorted(corpus.glob("*.parquet"))
    parts = [(files[i::processes], str(out), min_words) for i in range(processes)]
    with multiprocessing.get_context("spawn").Pool(processes) as pool:
        return sum(pool.map(_baseline_part, parts))


def run_runner(corpus: Path, out: Path, min_words: int) -> tuple[float, int]:
    spec = parse_spec(f"""
name: bench
input: {{format: parquet, paths: ["{corpus}/*.parquet"]}}  # default shards: 50k rows
output: {{path: "{out}"}}
stages:
  - length_filter: {{min_words: {min_words}, max_words: null}}
""")
    with ProcessSampler(ray_workers(), interval_s=0.05) as memory:  # summed RSS of ray::*
        started = time.perf_counter()
        run_job(spec, progress=False)
        seconds = time.perf_counter() - started
    return seconds, memory.rss_peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="20000,200000",
                        help="corpus sizes in documents; the last should be 10x the first")
    parser.add_argument("--workdir", default=None)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    work = Path(args.workdir or tempfile.mkdtemp(prefix="runner-bench-"))
    min_words = 60

    started = time.perf_counter()
    ensure_ray()
    ray_start = time.perf_counter() - started
    cores = os.cpu_count()
    print(f"cores: {cores}  ray start-up: {ray_start:.2f} s")
    results = []
    for docs in sizes:
        corpus = work / f"corpus-{docs}"
        write_corpus(corpus, docs)
        mb = sum(p.stat().st_size for p in corpus.glob("*.parquet")) / 2**20
        t0 = time.perf_counter()
        baseline(corpus, work / f"baseline-{docs}", min_words)
        base_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        baseline_processes(corpus, work / f"baseline{cores}-{docs}", min_words, cores)
        ceiling_s = time.perf_counter() - t0
        run_s, peak = run_runner(corpus, work / f"runner-{docs}", min_words)
        results.append((docs, base_s, run_s, peak))
        print(f"docs={docs:>9,} ({mb:,.0f} MB parquet)  baseline loop: {docs / base_s:>9,.0f} "
              f"docs/s  runner: {docs / run_s:>9,.0f} docs/s  ratio: {base_s / run_s:.2f}x  "
              f"(with ray start-up: {base_s / (run_s + ray_start):.2f}x)  "
              f"runner worker peak RSS: {peak / 2**20:,.0f} MiB")
        print(f"docs={docs:>9,}  same loop in {cores} plain processes (no framework): "
              f"{docs / ceiling_s:>9,.0f} docs/s = {base_s / ceiling_s:.2f}x one process; "
              f"runner / {cores} plain processes: {ceiling_s / run_s:.2f}x")
    # Break-even size with start-up counted: docs where docs/base_rate = start + docs/run_rate.
    docs, base_s, run_s, _ = results[-1]
    base_rate, run_rate = docs / base_s, docs / run_s
    if run_rate > base_rate:
        even = ray_start / (1 / base_rate - 1 / run_rate)
        print(f"break-even corpus size (runner incl. ray start-up = baseline loop): "
              f"~{even:,.0f} docs")
    else:
        print("break-even: runner slower than the baseline loop at every measured size")
    if len(results) > 1:
        first, last = results[0], results[-1]
        print(f"peak worker memory at {last[0] // first[0]}x corpus: "
              f"{last[3] / max(first[3], 1):.2f}x ({first[3] / 2**20:,.0f} -> "
              f"{last[3] / 2**20:,.0f} MiB)")
    if not args.workdir:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
