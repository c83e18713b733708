"""Embedding columns as float32 matrices, and the seeded sample k-means trains on.

`embed` writes `fixed_size_list<float32>` (or float16); a plain `list<float>` works too, as
long as every vector has the same length. Rows whose vector is null (no text) take no part:
they are never duplicates. Vectors are scaled to unit length on reading, so cosine
similarity is a dot product even for a column that was not normalised.
"""

from __future__ import annotations

from dataclasses import dataclass

import fsspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import xxhash

KEEP_TYPE = pa.float64()  # the keep_highest column, whatever numeric type it has


@dataclass
class ShardVectors:
    """The rows of one shard that have a vector."""

    rows: np.ndarray  # int64 positions in the shard
    ids: pa.Array  # string
    keep: pa.Array  # float64 (null where the keep column is null or NaN, or absent)
    vectors: np.ndarray  # [len(rows), dim] float32, unit length

    @property
    def dim(self) -> int:
        return self.vectors.shape[1]


def read_vectors(path: str, column: str, keep_column: str | None = None) -> tuple[ShardVectors,
                                                                                   int]:
    """The rows of the Parquet file `path` with a vector in `column`, and the file's rows."""
    columns = ["id", column] + ([keep_column] if keep_column else [])
    with fsspec.open(path, "rb") as f:
        table = pq.read_table(f, columns=columns)
    return vectors_of(table, column, keep_column), table.num_rows


def vectors_of(table: pa.Table, column: str, keep_column: str | None = None) -> ShardVectors:
    values = table[column].combine_chunks()
    _check_list(values.type, column)
    valid = values.is_valid()
    rows = np.flatnonzero(valid.to_numpy(zero_copy_only=False))
    present = values.filter(valid)
    dim = _dimension(present, column)
    flat = pc.list_flatten(present).to_numpy(zero_copy_only=False).astype(np.float32)
    matrix = flat.reshape(len(present), dim)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    matrix /= np.maximum(norms, 1e-12)
    keep = pa.nulls(len(rows), KEEP_TYPE)
    if keep_column:
        keep = _keep_values(table[keep_column].combine_chunks().filter(valid), keep_column)
    return ShardVectors(rows.astype(np.int64), table["id"].combine_chunks().cast(pa.string())
                        .filter(valid), keep, matrix)


def _dimension(present: pa.Array, column: str) -> int:
    if pa.types.is_fixed_size_list(present.type):
        return present.type.list_size
    if not len(present):
        return 0
    shortest, longest = pc.min_max(pc.list_value_length(present)).values()
    if shortest != longest:
        raise ValueError(f"column {column!r}: vectors of different lengths ({shortest} to "
                         f"{longest}); an embedding column has one length")
    return longest.as_py()


def _check_list(type_: pa.DataType, column: str) -> None:
    if not (pa.types.is_fixed_size_list(type_) or pa.types.is_list(type_)
            or pa.types.is_large_list(type_)) or not pa.types.is_floating(type_.value_type):
        raise ValueError(f"column {column!r} is {type_}, not a list of floats (the vectors "
                         "`embed` writes)")


def _keep_values(values: pa.Array, column: str) -> pa.Array:
    if not (pa.types.is_integer(values.type) or pa.types.is_floating(values.type)
            or pa.types.is_boolean(values.type)):
        raise ValueError(f"keep_highest column {column!r} is {values.type}, not a number")
    values = values.cast(KEEP_TYPE)
    return pc.if_else(pc.is_nan(values), pa.nulls(len(values), KEEP_TYPE), values)


def sample_mask(ids: pa.Array, seed: int, fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """(mask, priorities): the rows whose seeded hash of their id falls below `fraction` of
    the hash range. The same id is in or out whatever shard holds it, so the sample does not
    depend on how the corpus is cut into shards."""
    priority = np.fromiter((xxhash.xxh3_64_intdigest(i.encode(), seed)
                            for i in ids.to_pylist()), np.uint64, len(ids))
    if fraction >= 1:
        return np.ones(len(priority), bool), priority
    return priority < np.uint64(int(fraction * 2**64)), priority
