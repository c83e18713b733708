"""How `mix` decides which documents to take, and how often (docs/stages_mixture.md, "mix").

Each group gets a multiplier m (0.5: half of its tokens; 1.5: all once, half again). Every
document is taken floor(m) times, and once more when its id hash lies below the group's
threshold, chosen so that the documents below it hold frac(m) of the group's tokens. The
hash of an id (xxh3-64 with the seed) orders a group's documents at random but the same in
every run, and the selection is a prefix of that order. The documents are counted per hash
bin (`BIN_BITS`), the bin where the target falls is found exactly, and the threshold is
placed inside it in proportion (hashes are uniform, so a bin's tokens are spread evenly on
average): the tokens taken miss the target by less than that one bin's tokens (1/4096 of
the group's, or one document in a small group), and by far less on average.

`histogram`, `threshold_of` and `copies_of` are the three steps; the stage runs the first per
shard, the second per group and the third per document (tests/test_mix.py runs them on 100k
documents directly).
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import xxhash

BIN_BITS = 12  # 4096 hash bins per group
_SHIFT = 64 - BIN_BITS
ALL = 1 << 64  # a threshold above every hash: the whole group once more


def group_values(table: pa.Table, by: list[str]) -> pa.Array:
    """Each row's group: the `by` columns' values as text joined by `|` (null -> "null")."""
    parts = [pc.fill_null(pc.cast(table[c], pa.string()), "null") for c in by]
    joined = parts[0] if len(parts) == 1 else pc.binary_join_element_wise(*parts, "|")
    return joined.combine_chunks() if isinstance(joined, pa.ChunkedArray) else joined


def id_hashes(ids: pa.Array | pa.ChunkedArray, seed: int) -> np.ndarray:
    """xxh3-64 of each id's UTF-8 bytes with `seed` (uint64)."""
    return np.fromiter((xxhash.xxh3_64_intdigest(i.encode(), seed) for i in ids.to_pylist()),
                       np.uint64, len(ids))


def histogram(groups: pa.Array, hashes: np.ndarray, tokens: np.ndarray) -> pa.Table:
    """Documents and tokens per (group, hash bin)."""
    table = pa.table({"group": groups,
                      "bin": pa.array((hashes >> np.uint64(_SHIFT)).astype(np.int32)),
                      "tokens": pa.array(tokens, pa.int64())})
    found = table.group_by(["group", "bin"]).aggregate([("tokens", "sum"), ("tokens", "count")])
    return pa.table({"group": found["group"], "bin": found["bin"],
                     "docs": found["tokens_count"], "tokens": found["tokens_sum"]})


def threshold_of(bins: np.ndarray, tokens: np.ndarray, target: float) -> int:
    """The hash below which a group's documents hold `target` tokens, from its tokens per
    bin (any order; a bin may repeat, e.g. from several shards)."""
    if target <= 0 or not len(bins):
        return 0
    bins, where = np.unique(np.asarray(bins), return_inverse=True)  # a bin's parts summed
    tokens = np.bincount(where.ravel(), weights=np.asarray(tokens, np.float64),
                         minlength=len(bins))
    cumulative = np.cumsum(tokens)
    if target >= cumulative[-1]:
        return ALL
    at = int(np.searchsorted(cumulative, target, side="left"))  # the bin the target falls in
    within = (target - (cumulative[at] - tokens[at])) / tokens[at]
    return (int(bins[at]) << _SHIFT) + int(within * (1 << _SHIFT))


def copies_of(groups: pa.Array, hashes: np.ndarray,
              decided: Mapping[str, tuple[int, int]]) -> np.ndarray:
    """Per document: how often it is taken (0 = sampled out), from its group's
    (whole copies, threshold)."""
    encoded = pc.dictionary_encode(groups)
    names = encoded.dictionary.to_pylist()
    missing = [g for g in names if g not in decided]
    if missing:
        raise KeyError(f"mix decided nothing for groups {missing[:5]}")
    index = encoded.indices.to_numpy(zero_copy_only=False)
    whole = np.array([decided[g][0] for g in names], np.int64)
    everything = np.array([decided[g][1] >= ALL for g in names], bool)
    cut = np.array([min(decided[g][1], ALL - 1) for g in names], np.uint64)
    once_more = everything[index] | (hashes < cut[index])
    return whole[index] + once_more


def multipliers(totals: Mapping[str, int], weights: Mapping[str, float],
                repeats: Mapping[str, float], shares: Mapping[str, float],
                budget: int | None) -> tuple[dict[str, float], dict[str, float], float]:
    """(multiplier per group, requested share of the output per group, tokens asked for).

    Without `shares`: a group's multiplier is its weight or repeat count (1 if unnamed);
    `budget` scales them all by one factor. With `shares`: a group gets share x budget
    tokens (unnamed groups none); without `budget`, the largest total the shares allow
    without repeating any document."""
    groups = sorted(set(totals) | set(weights) | set(repeats) | set(shares))
    size = {g: totals.get(g, 0) for g in groups}
    if shares:
        if budget is None:
            budget = min((size[g] / s for g, s in shares.items() if s > 0 and size[g] > 0),
                         default=0)
        asked = {g: shares.get(g, 0.0) for g in groups}
        factor = {g: asked[g] * budget / size[g] if size[g] else 0.0 for g in groups}
        return factor, asked, float(budget)
    factor = {g: float(weights.get(g, repeats.get(g, 1.0))) for g in groups}
    planned = sum(factor[g] * size[g] for g in groups)
    if budget is not None and planned:
        factor = {g: f * budget / planned for g, f in factor.items()}
        planned = float(budget)
    asked = {g: factor[g] * size[g] / planned if planned else 0.0 for g in groups}
    return factor, asked, float(planned)
