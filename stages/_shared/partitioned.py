"""Partitioned Parquet files: how the phases of a global stage hand rows to each other.

Each unit of a phase writes one file, named by the unit's number, whose rows are sorted by a
partition column, one row group per partition value, and reports which values it wrote. A
unit of the next phase reads its value from only the files that hold it (a `Source`: the
folder and those unit numbers, so a task carries a few ints rather than a list of paths);
row-group statistics let Parquet skip the rest of each file. This is the shuffle of the
global stages, without a driver in the data path.
"""

from __future__ import annotations

import posixpath
from typing import Sequence

import fsspec
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from stages._dedup_minhash.minhash import fmix64


def write_partitioned(table: pa.Table, key: str, path: str) -> list[int]:
    """Write `table` sorted by `key`, one row group per value; returns the values written."""
    table = table.sort_by(key) if table.num_rows else table
    fs, local = fsspec.core.url_to_fs(path)
    fs.makedirs(posixpath.dirname(local), exist_ok=True)
    values = table[key].to_numpy() if table.num_rows else np.zeros(0, np.int64)
    starts = np.flatnonzero(np.r_[True, values[1:] != values[:-1]]) if len(values) else []
    # Hashes and node ids are all distinct: a dictionary would only cost time.
    with fs.open(local, "wb") as f, pq.ParquetWriter(f, table.schema, compression="zstd",
                                                     use_dictionary=False) as writer:
        if not len(values):
            writer.write_table(table)
        ends = list(starts[1:]) + [len(values)]
        for start, end in zip(starts, ends):
            writer.write_table(table.slice(start, end - start))
    return sorted({int(v) for v in values[starts]}) if len(values) else []


Source = tuple[str, list[int]]  # (folder, numbers of the unit files that hold a partition)


def unit_file(folder: str, unit: int) -> str:
    return posixpath.join(folder, f"{unit:05d}.parquet")


def holders(results: Sequence[dict], folder: str, partitions: int) -> list[Source]:
    """For each partition, the unit files of `folder` whose unit reported writing it."""
    units: list[list[int]] = [[] for _ in range(partitions)]
    for unit, result in enumerate(results):
        for part in result["parts"]:
            units[part].append(unit)
    return [(folder, held) for held in units]


def read_partition(source: Source, key: str, value: int, columns: Sequence[str],
                   schema: pa.Schema) -> pa.Table:
    """Rows with `key == value` from the files of `source` (empty table of `schema` if none)."""
    folder, units = source
    tables = []
    for unit in units:
        with fsspec.open(unit_file(folder, unit), "rb") as f:
            tables.append(pq.read_table(f, columns=list(columns), filters=[(key, "=", value)]))
    if not tables:
        return schema.empty_table().select(list(columns))
    return pa.concat_tables(tables)


def read_rows(path: str, rows: np.ndarray, columns: Sequence[str]) -> pa.Table:
    """The rows whose `row` column is in `rows`, from a file written with small row groups
    sorted by `row` (so statistics skip the groups that hold none of them)."""
    with fsspec.open(path, "rb") as f:
        return pq.read_table(f, columns=list(columns),
                             filters=[("row", "in", [int(r) for r in rows])])


def partition_of(nodes: np.ndarray, partitions: int) -> np.ndarray:
    """A node's partition: a mixed hash of its id, so neighbouring ids spread evenly."""
    return (fmix64(nodes.astype(np.uint64)) % np.uint64(partitions)).astype(np.int32)
