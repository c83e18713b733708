"""The phases of `dedup_semantic` after its vectors exist, and what they hand each other.

A shard's vectors are read from the shard itself (`column: embedding`) or from the file the
`embed` phase wrote for it (`model: DIR`); either way a `VectorSource` names the file and
column.

- `sample` (per shard): the rows whose seeded id hash falls below a fraction, written as
  (priority, id, vector): a sample of about the wanted size, the same however the corpus is
  sharded.
- `train` (one unit): the samples, in (priority, id) order, train spherical k-means
  (kmeans.py); the centroids are written beside them.
- `assign` (per shard): each vector's nearest centroid; rows (part, cluster, keep, id,
  shard, row, vector) written partitioned by cluster (`part` = cluster % partitions).
- `pairs` (per partition): each cluster of the partition is sorted by the keep rule and its
  groups found (groups.py); decisions (shard, row, duplicate_of, similarity) are written by
  shard for `apply`.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from typing import NamedTuple

import fsspec
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from stages._dedup_semantic import kmeans
from stages._dedup_semantic.groups import cluster_groups
from stages._dedup_semantic.vectors import KEEP_TYPE, read_vectors, sample_mask
from stages._shared.partitioned import PartitionUnit, Written, read_partition, \
    write_partitioned

DECISIONS = pa.schema([("shard", pa.int32()), ("row", pa.int64()),
                       ("duplicate_of", pa.string()), ("similarity", pa.float32())])


def vector_type(dim: int) -> pa.DataType:
    return pa.list_(pa.float32(), dim)


def sample_schema(dim: int) -> pa.Schema:
    return pa.schema([("priority", pa.uint64()), ("id", pa.string()),
                      ("vector", vector_type(dim))])


def assigned_schema(dim: int) -> pa.Schema:
    return pa.schema([("part", pa.int32()), ("cluster", pa.int32()), ("keep", KEEP_TYPE),
                      ("id", pa.string()), ("shard", pa.int32()), ("row", pa.int64()),
                      ("vector", vector_type(dim))])


class VectorSource(NamedTuple):
    path: str  # a Parquet file with `id`, the vector column and the keep column
    column: str


# -- sample ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SampleUnit:
    source: VectorSource
    out: str
    fraction: float  # of the rows to sample
    seed: int


@dataclass(frozen=True)
class Sampled:
    rows: int
    dim: int  # 0 when the shard has no vector


def sample(unit: SampleUnit) -> Sampled:
    shard, _ = read_vectors(*unit.source)
    chosen, priority = sample_mask(shard.ids, unit.seed, unit.fraction)
    if not chosen.any():  # no file: `train` reads the samples of the units that wrote rows
        return Sampled(0, shard.dim)
    table = pa.table({"priority": pa.array(priority[chosen], pa.uint64()),
                      "id": shard.ids.filter(pa.array(chosen)),
                      "vector": _vector_column(shard.vectors[chosen], shard.dim)},
                     schema=sample_schema(shard.dim))
    _write(table, unit.out)
    return Sampled(int(chosen.sum()), shard.dim)


# -- train -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TrainUnit:
    samples: list[str]  # the sample phase's files
    dim: int
    clusters: int
    seed: int
    out: str  # the centroids (.npy)
    gpu: bool = False
    threads: int = 1  # faiss's threads (the unit then holds that many CPUs)


@dataclass(frozen=True)
class Trained:
    clusters: int  # fewer than asked when the sample is smaller
    sample: int


def train(unit: TrainUnit) -> Trained:
    tables = []
    for path in unit.samples:
        with fsspec.open(path, "rb") as f:
            tables.append(pq.read_table(f))
    rows = pa.concat_tables(tables) if tables else sample_schema(unit.dim).empty_table()
    rows = rows.sort_by([("priority", "ascending"), ("id", "ascending")])
    vectors = _matrix(rows["vector"], unit.dim)
    centroids = kmeans.train(vectors, unit.clusters, unit.seed, unit.gpu, unit.threads)
    kmeans.write_centroids(unit.out, centroids)
    return Trained(len(centroids), len(vectors))


# -- assign ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class AssignUnit:
    index: int  # the shard's number
    source: VectorSource
    keep_column: str | None
    centroids: str
    dim: int
    out: str
    partitions: int


@dataclass(frozen=True)
class Assigned(Written):
    documents: int
    vectors: int


def assign(unit: AssignUnit) -> Assigned:
    shard, documents = read_vectors(*unit.source, unit.keep_column)
    if len(shard.rows) and shard.dim != unit.dim:
        raise ValueError(f"{unit.source.path}: vectors of {shard.dim} values, but others have "
                         f"{unit.dim}; an embedding column has one length")
    centroids = kmeans.read_centroids(unit.centroids)
    cluster = kmeans.nearest(shard.vectors, centroids) if len(centroids) else \
        np.zeros(len(shard.rows), np.int32)
    table = pa.table({"part": pa.array(cluster % unit.partitions, pa.int32()),
                      "cluster": pa.array(cluster, pa.int32()), "keep": shard.keep,
                      "id": shard.ids,
                      "shard": pa.array(np.full(len(cluster), unit.index, np.int32)),
                      "row": pa.array(shard.rows, pa.int64()),
                      "vector": _vector_column(shard.vectors, unit.dim)},
                     schema=assigned_schema(unit.dim))
    return Assigned(parts=write_partitioned(table, "part", unit.out), documents=documents,
                    vectors=len(cluster))


# -- pairs -------------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class PairsUnit(PartitionUnit):
    dim: int
    threshold: float  # cosine similarity above which two documents are duplicates


@dataclass(frozen=True)
class Paired(Written):
    clusters: int  # non-empty clusters in the partition
    largest_cluster: int
    comparisons: int  # pairs of documents compared
    pairs: int  # of them, pairs above the threshold
    duplicates: int  # documents rejected


# The keep rule: the highest keep value (nulls last), then the smallest (id, shard, row).
KEEP_ORDER = [("cluster", "ascending"), ("keep", "descending", "at_end"), ("id", "ascending"),
              ("shard", "ascending"), ("row", "ascending")]


def pairs(unit: PairsUnit) -> Paired:
    rows = read_partition(unit.source, "part", unit.part,
                          ["cluster", "keep", "id", "shard", "row", "vector"],
                          assigned_schema(unit.dim)).sort_by(KEEP_ORDER)
    cluster = rows["cluster"].to_numpy()
    vectors = _matrix(rows["vector"], unit.dim)
    starts = np.flatnonzero(np.r_[True, cluster[1:] != cluster[:-1]]) if len(cluster) else \
        np.zeros(0, np.int64)
    ends = np.r_[starts[1:], len(cluster)].astype(np.int64)
    keeper = np.arange(len(cluster))
    similarity = np.ones(len(cluster), np.float32)
    comparisons = found = 0
    for start, end in zip(starts, ends):
        groups = cluster_groups(vectors[start:end], unit.threshold)
        keeper[start:end] = groups.keeper + start
        similarity[start:end] = groups.similarity
        size = int(end - start)
        comparisons += size * (size - 1) // 2
        found += groups.pairs
    rejected = keeper != np.arange(len(cluster))
    ids = rows["id"].combine_chunks()
    decisions = pa.table({"shard": rows["shard"].filter(pa.array(rejected)),
                          "row": rows["row"].filter(pa.array(rejected)),
                          "duplicate_of": ids.take(pa.array(keeper[rejected])),
                          "similarity": pa.array(similarity[rejected], pa.float32())},
                         schema=DECISIONS)
    return Paired(parts=write_partitioned(decisions, "shard", unit.out),
                  clusters=len(starts), largest_cluster=int(max(ends - starts, default=0)),
                  comparisons=comparisons, pairs=found, duplicates=int(rejected.sum()))


# -- small helpers -------------------------------------------------------------------------------
def _vector_column(matrix: np.ndarray, dim: int) -> pa.Array:
    return pa.FixedSizeListArray.from_arrays(pa.array(matrix.reshape(-1), pa.float32()), dim)


def _matrix(column: pa.ChunkedArray, dim: int) -> np.ndarray:
    values = column.combine_chunks().flatten() if len(column) else pa.array([], pa.float32())
    return values.to_numpy(zero_copy_only=False).astype(np.float32).reshape(-1, dim)


def _write(table: pa.Table, path: str) -> None:
    fs, local = fsspec.core.url_to_fs(path)
    fs.makedirs(posixpath.dirname(local), exist_ok=True)
    with fs.open(local, "wb") as f:
        pq.write_table(table, f, compression="zstd")


def count_rows(path: str) -> int:
    with fsspec.open(path, "rb") as f:
        return pq.ParquetFile(f).metadata.num_rows


def sample_file(folder: str, unit: int) -> str:
    return posixpath.join(folder, f"{unit:05d}.parquet")
