"""Near-duplicate detection quality of `dedup_minhash` on real pages with realistic edits.

Each real page (extracted from the HTML under DIR/extraction) gets two edited copies: a mix of
boilerplate added or removed, paragraphs shuffled, 0-20% of words changed and truncation, at
random strengths, so the true 5-gram Jaccard of the copies spreads over ~0.3..1. The truth is
computed exactly over ALL pairs of documents (sparse shingle-incidence product), so pairs
across pages count too. The stage runs through the real runner (local Ray) at threshold 0.8,
with and without `verify`; the baseline is datasketch's MinHashLSH(threshold 0.8, 112
permutations) + union-find over the same shingles.

Figures: pairs = every pair of documents placed in one cluster vs every pair with true
Jaccard >= 0.8; documents = flagged as having a near-duplicate vs having a partner >= 0.8.

    python benchmarks/minhash_quality.py [DIR] [--workdir /tmp/q]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import tempfile
import time
import unicodedata
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from scipy import sparse

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("RAY_AUTH_MODE", "disabled")

from _eval_pages import eval_dir, page_texts  # noqa: E402
from pipeline.runner import run_job  # noqa: E402
from pipeline.spec import parse_spec  # noqa: E402

THRESHOLD, NGRAM, NUM_PERM = 0.8, 5, 112
BOILERPLATE = [
    "Home | News | Sport | Business | Culture | Contact us | Log in",
    "We use cookies to improve your experience. By continuing to browse you agree to our use "
    "of cookies. Accept all | Manage settings",
    "Share this article: Facebook Twitter LinkedIn Email Print",
    "Subscribe to our newsletter and get the best stories delivered to your inbox every week.",
    "Copyright 2024 All rights reserved. Privacy policy | Terms of use | Imprint",
    "Related articles: Ten things you did not know about the city council budget",
    "Advertisement - continue reading below",
    "Comments (12) - Sign in to join the conversation",
]


# -- building the corpus -------------------------------------------------------------------------
def edit(text: str, rng: random.Random, donor_words: list[str]) -> str:
    """One realistic copy: each edit applied with some probability at a random strength."""
    paragraphs = [p for p in text.split("\n") if p.strip()]
    if rng.random() < 0.4 and len(paragraphs) > 3:  # boilerplate removed
        cut_head, cut_tail = rng.randint(0, 2), rng.randint(0, 2)
        paragraphs = paragraphs[cut_head:len(paragraphs) - cut_tail] or paragraphs
    if rng.random() < 0.5:  # boilerplate added
        for _ in range(rng.randint(1, 4)):
            block = rng.choice(BOILERPLATE)
            paragraphs.insert(0, block) if rng.random() < 0.5 else paragraphs.append(block)
    if rng.random() < 0.4:  # paragraphs shuffled
        for _ in range(rng.randint(1, 3)):
            i, j = rng.randrange(len(paragraphs)), rng.randrange(len(paragraphs))
            paragraphs[i], paragraphs[j] = paragraphs[j], paragraphs[i]
    words = "\n".join(paragraphs).split(" ")
    if rng.random() < 0.7:  # 0-20% of words changed: replaced, deleted or inserted
        for _ in range(int(len(words) * rng.uniform(0.0, 0.2))):
            i, kind = rng.randrange(len(words)), rng.random()
            if kind < 0.6:
                words[i] = rng.choice(donor_words)
            elif kind < 0.8 and len(words) > 50:
                del words[i]
            else:
                words.insert(i, rng.choice(donor_words))
    if rng.random() < 0.3:  # truncated
        words = words[:max(50, int(len(words) * rng.uniform(0.6, 1.0)))]
    return " ".join(words)


def build_corpus(pages: list[str], seed: int = 1) -> dict[str, str]:
    rng = random.Random(seed)
    donor = [w for p in pages[:50] for w in p.split()]
    texts = []
    for page in pages:
        texts += [page, edit(page, rng, donor), edit(page, rng, donor)]
    order = list(range(len(texts)))
    rng.shuffle(order)  # ids in random order: the keeper is not always the original
    return {f"doc{order[i]:05d}": t for i, t in enumerate(texts)}


# -- the truth: exact Jaccard of every pair --------------------------------------------------------
def shingles(text: str) -> set[tuple[str, ...]]:
    """Written apart from the stage's code, to the same definition (the dedup words of
    stages/_shared/words.py): lowercase; words split at whitespace, control characters,
    punctuation and symbols."""
    def separates(char: str) -> bool:
        category = unicodedata.category(char)
        return char.isspace() or category == "Cc" or category[0] in "PS"

    words = "".join(" " if separates(c) else c for c in text.lower()).split()
    if len(words) < NGRAM:
        return {tuple(words)} if words else set()
    return {tuple(words[i:i + NGRAM]) for i in range(len(words) - NGRAM + 1)}


def true_pairs(corpus: dict[str, str]) -> tuple[set[tuple[str, str]], np.ndarray]:
    ids = sorted(corpus)
    vocabulary: dict[tuple, int] = {}
    rows, cols = [], []
    for r, doc in enumerate(ids):
        for s in shingles(corpus[doc]):
            rows.append(r)
            cols.append(vocabulary.setdefault(s, len(vocabulary)))
    incidence = sparse.csr_matrix((np.ones(len(rows), np.int32), (rows, cols)),
                                  shape=(len(ids), len(vocabulary)))
    sizes = np.asarray(incidence.sum(axis=1)).ravel()
    common = sparse.triu(incidence @ incidence.T, k=1).tocoo()
    jaccard = common.data / (sizes[common.row] + sizes[common.col] - common.data)
    near = jaccard >= THRESHOLD
    pairs = {(ids[a], ids[b]) for a, b in zip(common.row[near], common.col[near])}
    return pairs, jaccard


# -- predictions -----------------------------------------------------------------------------------
def cluster_pairs(clusters: dict[str, list[str]]) -> set[tuple[str, str]]:
    pairs = set()
    for members in clusters.values():
        members = sorted(members)
        pairs |= {(a, b) for i, a in enumerate(members) for b in members[i + 1:]}
    return pairs


def stage_clusters(corpus_dir: Path, out: Path, options: str) -> tuple[dict, float, dict]:
    spec = parse_spec(f"""
name: quality
input: {{format: parquet, paths: ["{corpus_dir}/*.parquet"]}}
output: {{path: "{out}"}}
stages:
  - dedup_minhash: {options}
""")
    started = time.perf_counter()
    run_job(spec, progress=False, keep_work=True)
    seconds = time.perf_counter() - started
    clusters: dict[str, list[str]] = {}
    for folder in ("data", "rejected"):
        for f in (out / folder).glob("*.parquet"):
            table = pq.read_table(f, columns=["id", "dup_cluster"])
            for doc, cluster in zip(table["id"].to_pylist(), table["dup_cluster"].to_pylist()):
                if cluster is not None:
                    clusters.setdefault(cluster, []).append(doc)
    stats = json.loads(next((out / "_work" / "global").glob("*/decisions.json")).read_text())
    return clusters, seconds, stats["stats"]


def datasketch_clusters(corpus: dict[str, str]) -> tuple[dict, float]:
    from datasketch import MinHash, MinHashLSH

    started = time.perf_counter()
    lsh = MinHashLSH(threshold=THRESHOLD, num_perm=NUM_PERM)
    sketches = {}
    for doc, text in corpus.items():
        m = MinHash(NUM_PERM)
        m.update_batch([" ".join(s).encode() for s in shingles(text)])
        sketches[doc] = m
        lsh.insert(doc, m)
    parent = {doc: doc for doc in corpus}

    def root(x):
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for doc, m in sketches.items():
        for other in lsh.query(m):
            a, b = root(doc), root(other)
            if a != b:
                parent[max(a, b)] = min(a, b)
    clusters: dict[str, list[str]] = {}
    for doc in corpus:
        clusters.setdefault(root(doc), []).append(doc)
    return {k: v for k, v in clusters.items() if len(v) > 1}, time.perf_counter() - started


def scores(predicted: set, truth: set) -> tuple[float, float, float]:
    hits = len(predicted & truth)
    precision = hits / len(predicted) if predicted else 1.0
    recall = hits / len(truth) if truth else 1.0
    f1 = 2 * precision * recall / (precision + recall) if hits else 0.0
    return precision, recall, f1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dir", nargs="?", help="eval folder (default $CURATION_EVAL_DIR or "
                        "../shared/eval)")
    parser.add_argument("--workdir", default=None)
    args = parser.parse_args()
    work = Path(args.workdir or tempfile.mkdtemp(prefix="minhash-quality-"))
    pages = page_texts(eval_dir(args.dir))
    corpus = build_corpus(pages)
    (work / "in").mkdir(parents=True, exist_ok=True)
    ids = sorted(corpus)
    pq.write_table(pa.table({"id": ids, "text": [corpus[i] for i in ids]}),
                   work / "in" / "corpus.parquet", row_group_size=400)
    truth, jaccard = true_pairs(corpus)
    truth_docs = {d for pair in truth for d in pair}
    edited = np.histogram(jaccard[jaccard >= 0.3], bins=[0.3, 0.5, 0.6, 0.7, 0.8, 0.9, 1.01])[0]
    print(f"corpus: {len(pages)} real pages + 2 edited copies each = {len(corpus):,} documents; "
          f"{len(truth):,} pairs with true 5-gram Jaccard >= {THRESHOLD} "
          f"({len(truth_docs):,} documents)")
    print("pairs by true Jaccard: " + "  ".join(
        f"{lo:.1f}-{hi:.1f}: {n}" for lo, hi, n in zip([0.3, 0.5, 0.6, 0.7, 0.8, 0.9],
                                                       [0.5, 0.6, 0.7, 0.8, 0.9, 1.0], edited)))

    baseline, base_s = datasketch_clusters(corpus)
    base_pairs = cluster_pairs(baseline)
    base_docs = {d for members in baseline.values() for d in members}
    print(f"{'':<48} {'precision':>9} {'recall':>7} {'F1':>6}   baseline F1   ratio")
    base_f1 = scores(base_pairs, truth)[2]
    print(f"{'datasketch MinHashLSH(0.8, 112) + union-find':<48} "
          + " ".join(f"{v:>{w}.3f}" for v, w in zip(scores(base_pairs, truth), (9, 7, 6)))
          + f"   (baseline, {base_s:.1f} s in one process)")
    for label, options in (
            ("dedup_minhash threshold 0.8", "{threshold: 0.8, verify: false}"),
            ("dedup_minhash threshold 0.8, verify", "{threshold: 0.8, verify: true}")):
        out = work / label.replace(" ", "_").replace(",", "")
        clusters, seconds, stats = stage_clusters(work / "in", out, options)
        predicted = cluster_pairs(clusters)
        p, r, f1 = scores(predicted, truth)
        print(f"{label + ' (pairs)':<48} {p:>9.3f} {r:>7.3f} {f1:>6.3f}   {base_f1:>11.3f}   "
              f"{f1 / base_f1:5.2f}x   [bands x rows {stats['bands']} x {stats['rows']}, "
              f"{stats['candidate_pairs']:,} candidate pairs, {seconds:.1f} s incl. runner]")
        flagged = {d for members in clusters.values() for d in members}
        pd, rd, fd = scores(flagged, truth_docs)
        base_fd = scores(base_docs, truth_docs)[2]
        print(f"{label + ' (documents)':<48} {pd:>9.3f} {rd:>7.3f} {fd:>6.3f}   {base_fd:>11.3f}   "
              f"{fd / base_fd:5.2f}x")
    if not args.workdir:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
