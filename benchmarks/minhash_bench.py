"""MinHash signatures: our vectorised code (stages/_dedup_minhash/minhash.py) vs
datasketch.MinHash on the same documents, shingles and parameters, in one process and one
invocation.

Throughput is per core: CPU seconds of this process (every path here is single-threaded), so
other load on a shared machine does not inflate either side; wall-clock figures follow.
Ours starts from Arrow text, as the stage reads it (normalise + words + shingles + sign);
datasketch starts from ready shingle lists (building them in Python is timed apart and NOT
charged to it).

Agreement: 1,000 pairs (a real page and an edited copy) spread over true 5-gram Jaccard 0..1.
Our signatures equal datasketch's when datasketch is given our shingle hash
(`hashfunc=datasketch_hashfunc`); against datasketch's default SHA-1 input hash the two are
independent sketches, so they differ by sampling noise, shown beside its expected size.

    python benchmarks/minhash_bench.py [DIR] [--docs 3000] [--num-perm 112] [--ngram 5]
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import xxhash
from datasketch import MinHash

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _eval_pages import eval_dir, page_texts  # noqa: E402
from stages._dedup_minhash import minhash as mh  # noqa: E402

BATCH = 2048  # as the stage signs them


def clocked(fn, repeats: int = 1) -> tuple[float, float, object]:
    """(best CPU seconds, best wall seconds, last result) over `repeats` runs."""
    cpu = wall = math.inf
    result = None
    for _ in range(repeats):
        c0, w0 = time.process_time(), time.perf_counter()
        result = fn()
        cpu, wall = min(cpu, time.process_time() - c0), min(wall, time.perf_counter() - w0)
    return cpu, wall, result


def arrow_batches(texts: list[str]) -> list[pa.Array]:
    """The texts as the stage receives them from Parquet: Arrow arrays of BATCH rows."""
    return [pa.array(texts[start:start + BATCH], pa.string())
            for start in range(0, len(texts), BATCH)]


def ours(batches: list[pa.Array], num_perm: int, ngram: int) -> np.ndarray:
    a, b = mh.permutations(num_perm)
    out = []
    for batch in batches:
        for _, piece in mh.pieces(mh.normalise(batch)):
            out.append(mh.signatures(mh.shingle_hashes(piece, ngram), a, b))
    return np.concatenate(out)


def datasketch_shingle_lists(texts: list[str], ngram: int) -> list[list[bytes]]:
    normalised = mh.normalise(pa.array(texts, pa.string())).to_pylist()
    return [mh.datasketch_shingles(t, ngram) for t in normalised]


def datasketch_update_batch(shingles, num_perm: int, hashfunc=None) -> list[MinHash]:
    out = []
    for doc in shingles:
        m = MinHash(num_perm, seed=1, hashfunc=hashfunc) if hashfunc else MinHash(num_perm, seed=1)
        m.update_batch(doc)
        out.append(m)
    return out


def line(label: str, mine: float, base: float, base_label: str, unit: str) -> None:
    print(f"{label:<26} ours {mine:>10,.1f} {unit}   {base_label:<34} {base:>9,.1f} {unit}   "
          f"ratio {mine / base:5.1f}x")


def throughput(texts: list[str], num_perm: int, ngram: int) -> None:
    mb = sum(len(t.encode()) for t in texts) / 1e6
    n = len(texts)
    batches = arrow_batches(texts)
    ours(arrow_batches(texts[:200]), num_perm, ngram)  # warm-up (separator table, imports)
    cpu_ours, wall_ours, _ = clocked(lambda: ours(batches, num_perm, ngram), repeats=3)
    cpu_prep, _, shingles = clocked(lambda: datasketch_shingle_lists(texts, ngram))
    cpu_ds, wall_ds, _ = clocked(lambda: datasketch_update_batch(shingles, num_perm))
    cpu_bulk, _, _ = clocked(lambda: MinHash.bulk(shingles, num_perm=num_perm, seed=1))
    cpu_xxh, _, _ = clocked(lambda: datasketch_update_batch(shingles, num_perm,
                                                            xxhash.xxh32_intdigest))
    print(f"corpus: {n:,} docs, {mb:.1f} MB, {sum(map(len, shingles)):,} shingles; "
          f"num_perm {num_perm}, {ngram}-gram words")
    line("signatures/s per core", n / cpu_ours, n / cpu_ds, "datasketch update_batch", "")
    line("MB/s per core", mb / cpu_ours, mb / cpu_ds, "datasketch update_batch", "")
    line("MB/s per core", mb / cpu_ours, mb / cpu_bulk, "datasketch MinHash.bulk", "")
    line("MB/s per core", mb / cpu_ours, mb / cpu_xxh, "datasketch update_batch(xxh32)", "")
    line("MB/s wall (1 process)", mb / wall_ours, mb / wall_ds, "datasketch update_batch", "")
    print(f"(datasketch figures exclude building its shingle lists in Python: {cpu_prep:.2f} "
          f"CPU s more, which would bring update_batch to {mb / (cpu_ds + cpu_prep):.1f} MB/s)")


def edited_pair(words: list[str], target: float, rng: random.Random) -> list[str]:
    """A copy with random words replaced; the fraction is chosen so that, for random
    replacements, the expected 5-gram Jaccard is about `target` (s = 2J/(1+J) = (1-f)^5)."""
    keep = (2 * target / (1 + target)) ** (1 / 5)
    return [w if rng.random() < keep else f"x{rng.randrange(10**9)}" for w in words]


def true_jaccard(a: str, b: str, ngram: int) -> float:
    sa, sb = set(mh.datasketch_shingles(a, ngram)), set(mh.datasketch_shingles(b, ngram))
    return len(sa & sb) / len(sa | sb)


def agreement(texts: list[str], num_perm: int, ngram: int, pairs: int = 1000) -> None:
    rng = random.Random(3)
    normalised = mh.normalise(pa.array(texts, pa.string())).to_pylist()
    left, right = [], []
    for k in range(pairs):
        words = normalised[k % len(normalised)].split()[:400]
        left.append(" ".join(words))
        right.append(" ".join(edited_pair(words, k / (pairs - 1), rng)))
    truth = np.array([true_jaccard(a, b, ngram) for a, b in zip(left, right)])
    sig_l = ours(arrow_batches(left), num_perm, ngram)
    sig_r = ours(arrow_batches(right), num_perm, ngram)
    est_ours = (sig_l == sig_r).mean(axis=1)

    def datasketch_estimates(hashfunc):
        ml = datasketch_update_batch([mh.datasketch_shingles(t, ngram) for t in left], num_perm,
                                     hashfunc)
        mr = datasketch_update_batch([mh.datasketch_shingles(t, ngram) for t in right],
                                     num_perm, hashfunc)
        return ml, np.array([a.jaccard(b) for a, b in zip(ml, mr)])

    same_hash, est_same = datasketch_estimates(mh.datasketch_hashfunc)
    identical = sum(np.array_equal(s, m.hashvalues) for s, m in zip(sig_l, same_hash))
    _, est_sha1 = datasketch_estimates(None)
    noise = np.mean(np.sqrt(2 * truth * (1 - truth) / num_perm)) * math.sqrt(2 / math.pi)
    err_ours, err_sha1 = np.abs(est_ours - truth).mean(), np.abs(est_sha1 - truth).mean()
    deciles = " ".join(f"{q:.2f}" for q in np.quantile(truth, np.linspace(0.1, 0.9, 9)))
    print(f"Jaccard estimates over {pairs:,} pairs, true Jaccard "
          f"{truth.min():.2f}..{truth.max():.2f} (deciles: {deciles})")
    print(f"mean |ours - datasketch(hashfunc=ours)|   {np.abs(est_ours - est_same).mean():.4f}   "
          f"(identical signatures: {identical:,}/{pairs:,})")
    print(f"mean |ours - datasketch(default SHA-1)|   {np.abs(est_ours - est_sha1).mean():.4f}   "
          f"(independent sketches; sampling noise expected {noise:.4f})")
    print(f"mean |estimate - true Jaccard|            ours {err_ours:.4f}   "
          f"datasketch(default SHA-1) {err_sha1:.4f}   ratio {err_ours / err_sha1:.2f}")


def synthetic_texts(n: int) -> list[str]:
    rng = np.random.default_rng(7)
    vocab = np.array(["".join(rng.choice(list("etaoinshrdlcumwfgypbvkjxqz"),
                                         size=rng.integers(2, 10))) for _ in range(20_000)])
    weights = 1 / np.arange(1, len(vocab) + 1)
    lengths = rng.integers(100, 1500, size=n)
    words = vocab[rng.choice(len(vocab), size=int(lengths.sum()), p=weights / weights.sum())]
    bounds = np.concatenate([[0], np.cumsum(lengths)])
    return [" ".join(words[bounds[i]:bounds[i + 1]]) for i in range(n)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dir", nargs="?", help="eval folder (default $CURATION_EVAL_DIR or "
                        "../shared/eval); synthetic text if it has no pages")
    parser.add_argument("--docs", type=int, default=3000)
    parser.add_argument("--num-perm", type=int, default=112)
    parser.add_argument("--ngram", type=int, default=5)
    args = parser.parse_args()
    try:
        pages = page_texts(eval_dir(args.dir))
        print(f"documents: {len(pages)} real pages from {eval_dir(args.dir)}, cycled")
    except SystemExit as missing:
        print(f"{missing}; using synthetic text")
        pages = synthetic_texts(500)
    texts = [pages[i % len(pages)] for i in range(args.docs)]
    throughput(texts, args.num_perm, args.ngram)
    agreement(pages, args.num_perm, args.ngram)


if __name__ == "__main__":
    main()
