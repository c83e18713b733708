"""The phases of `dedup_spans` that need no config, and what the phases hand each other.

`spans` (per shard, in the stage module: it needs the span rule) writes one row per
distinct span of each document: (part, hash, id, shard, row), partitioned by hash. A unit
of `group` reads its partition from every file that holds it and decides which rows lose
their span; it writes (shard, row, hash) decisions partitioned by shard, which `apply` reads.

- exact (`group_exact`): rows of a hash seen in two or more documents are sorted by
  (id, shard, row); the first keeps the span, the others lose it. Only the repeated hashes
  are sorted with their ids, so the cost is one numpy sort of the partition's hashes plus a
  sort of the (usually few) repeated rows.
- bloom (`group_bloom`): each file's rows, in (shard, row, hash) order, are tested against
  the partition's Bloom sub-filters and added; a row whose span looks seen loses it. The
  first in reading order keeps a span (see bloom.py for why this is deterministic).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from stages._dedup_spans.bloom import BloomFilter, BloomShape, subfilter_of
from stages._shared.partitioned import PartitionUnit, Source, Written, read_partition, \
    write_partitioned

SPANS = pa.schema([("part", pa.int32()), ("hash", pa.uint64()), ("id", pa.string()),
                   ("shard", pa.int32()), ("row", pa.int64())])
DECISIONS = pa.schema([("shard", pa.int32()), ("row", pa.int64()), ("hash", pa.uint64())])


@dataclass(frozen=True)
class Hashed(Written):
    documents: int
    spans: int  # (document, distinct span) rows written


@dataclass(frozen=True, kw_only=True)
class BloomUnit(PartitionUnit):
    shape: BloomShape
    hash_partitions: int  # partitions of the spans phase (the sub-filters' owners)


@dataclass(frozen=True)
class Grouped(Written):
    removals: int  # (document, span) pairs cut
    repeated: int  # distinct spans found in two or more documents (exact mode; else 0)


def partition_of_spans(hashes: np.ndarray, partitions: int, bloom: bool) -> np.ndarray:
    """A span's partition: by hash; in bloom mode by its sub-filter, so that a partition
    holds whole sub-filters (bloom mode has at most SUBFILTERS partitions)."""
    if bloom:
        return (subfilter_of(hashes) % partitions).astype(np.int32)
    return (hashes % np.uint64(partitions)).astype(np.int32)


def group_exact(unit: PartitionUnit) -> Grouped:
    rows = read_partition(unit.source, "part", unit.part, ["hash", "id", "shard", "row"],
                          SPANS)
    hashes = rows["hash"].to_numpy()
    values, counts = np.unique(hashes, return_counts=True)
    repeated = values[counts > 1]
    rows = rows.filter(pa.array(np.isin(hashes, repeated)))
    rows = rows.sort_by([("hash", "ascending"), ("id", "ascending"), ("shard", "ascending"),
                         ("row", "ascending")])
    sorted_hashes = rows["hash"].to_numpy()
    loses = pa.array(np.r_[False, sorted_hashes[1:] == sorted_hashes[:-1]]
                     if len(sorted_hashes) else np.zeros(0, bool))
    decisions = rows.select(["shard", "row", "hash"]).filter(loses)
    return Grouped(parts=write_partitioned(decisions, "shard", unit.out),
                   removals=decisions.num_rows, repeated=len(repeated))


def group_bloom(unit: BloomUnit) -> Grouped:
    bloom = BloomFilter(unit.shape, unit.part, unit.hash_partitions)
    decided = []
    for file in sorted(unit.source.units):  # one file per shard, by shard number
        rows = read_partition(Source(unit.source.folder, [file]), "part", unit.part,
                              ["hash", "shard", "row"], SPANS)
        rows = rows.sort_by([("row", "ascending"), ("hash", "ascending")])
        seen = bloom.seen_then_add(rows["hash"].to_numpy())
        decided.append(rows.select(["shard", "row", "hash"]).filter(pa.array(seen)))
    decisions = pa.concat_tables(decided) if decided else DECISIONS.empty_table()
    return Grouped(parts=write_partitioned(decisions, "shard", unit.out),
                   removals=decisions.num_rows, repeated=0)
