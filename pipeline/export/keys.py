"""The order of an export: one int64 key per document copy, files as key ranges.

Without shuffle a copy's key is where it starts, in bytes, inside its shard's output, so the
export is the job's order (shard, row, copy) and a file is a range of global byte offsets.
With shuffle the key is a seeded hash of the document's id and copy number: the order then
depends on the seed and the ids alone, not on shards, workers or the file size, and reading
the files one after another gives the whole export sorted by that key.
"""

from __future__ import annotations

import numpy as np
import xxhash

from stages._shared.text_hash import fmix64

KEY_SPACE = 2**63  # keys are non-negative int64 (Parquet statistics compare them as signed)
_COPY_STEP = np.uint64(0x9E3779B97F4A7C15)


def shuffle_keys(ids: list[str], rows: np.ndarray, copies: np.ndarray, seed: int) -> np.ndarray:
    """A key per copy: fmix64(xxh3(id, seed) + copy * golden ratio), top 63 bits. Distinct
    copies of one id get distinct keys (fmix64 is a bijection)."""
    per_row = np.fromiter((xxhash.xxh3_64_intdigest(i.encode(), seed=seed) for i in ids),
                          np.uint64, len(ids))
    mixed = fmix64(per_row[rows] + copies.astype(np.uint64) * _COPY_STEP)
    return (mixed >> np.uint64(1)).astype(np.int64)


def offset_keys(sizes: np.ndarray) -> np.ndarray:
    """Where each copy starts in its shard's output (bytes before it)."""
    starts = np.zeros(len(sizes), np.int64)
    np.cumsum(sizes[:-1], out=starts[1:])
    return starts


def key_bounds(files: int) -> list[int]:
    """`files` + 1 bounds cutting the shuffle key space in equal ranges."""
    return [KEY_SPACE * k // files for k in range(files + 1)]
