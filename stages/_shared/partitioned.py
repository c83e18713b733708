"""Partitioned Parquet files: how the phases of a global stage hand rows to each other.

Each unit of a phase writes one file, named by the unit's number, whose rows are sorted by a
partition column, one row group per partition value, and reports which values it wrote
(`Written`). A unit of the next phase reads its value from only the files that hold it (a
`Source`: the folder and those unit numbers, so a task carries a few ints rather than a list
of paths); row-group statistics let Parquet skip the rest of each file. This is the shuffle
of the global stages (`dedup_exact`, `dedup_minhash`, connected components), without a
driver in the data path. The last phase writes each shard's decisions partitioned by the
shard's number, and `write_shard_sources` records where they lie for `apply`.

Phases are run with `run_phase`: a unit takes a frozen dataclass (e.g. `PartitionUnit`) and
returns one (a `Written`); see there how results survive being committed as JSON.
"""

from __future__ import annotations

import dataclasses
import json
import posixpath
from dataclasses import dataclass
from typing import Any, Callable, NamedTuple, Sequence, TypeVar

import fsspec
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.stage import GlobalContext
from stages._shared.text_hash import fmix64


class Source(NamedTuple):
    """Where one partition lies: a phase's folder and the unit files in it that hold rows of
    the partition. (A NamedTuple: it is stored in JSON as [folder, units].)"""

    folder: str
    units: list[int]


# Hash partitions of a shuffle at most, unless a spec asks for more: every unit of the next
# phase reads from each file that holds its partition, so more partitions are not free.
MAX_AUTO_PARTITIONS = 1024


def shard_partitions(configured: int | None, shards: int) -> int:
    """A shuffle's partitions: the configured number, else one per shard (at most
    MAX_AUTO_PARTITIONS)."""
    return configured or max(1, min(shards, MAX_AUTO_PARTITIONS))


@dataclass(frozen=True)
class PartitionUnit:
    """The work of one unit that reads one partition and writes one file."""

    part: int  # the partition it reads: a hash partition, or a shard's number
    source: Source  # the files that hold it
    out: str  # the file it writes
    partitions: int | None = None  # hash partitions of what it writes (None: by shard)


@dataclass(frozen=True)
class ShardUnit:
    """The work of a first phase's unit: read one shard, write its rows hash-partitioned."""

    index: int  # the shard's number
    shard_path: str
    out: str
    partitions: int


@dataclass(frozen=True)
class Written:
    """What a unit that wrote a partitioned file reports: the partition values it wrote."""

    parts: list[int]


Result = TypeVar("Result", bound=Written)


def run_phase(ctx: GlobalContext, phase: str, fn: Callable[[Any], Result], units: Sequence[Any],
              keys: Sequence[str], result: type[Result]) -> list[Result]:
    """`ctx.map` for a phase whose units return a `Written` dataclass. The runner commits a
    unit's result as JSON and hands a resumed phase the JSON back, so the dataclass travels
    as a dict (`_AsDict`) and is rebuilt here, alike on a fresh run and a resumed one."""
    return [result(**r) for r in ctx.map(phase, _AsDict(fn), units, keys=keys)]


@dataclass(frozen=True)
class _AsDict:
    """A phase function whose dataclass result is returned as a JSON-able dict."""

    fn: Callable[[Any], Written]

    def __call__(self, unit: Any) -> dict:
        return dataclasses.asdict(self.fn(unit))


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


def unit_file(folder: str, unit: int) -> str:
    return posixpath.join(folder, f"{unit:05d}.parquet")


def holders(results: Sequence[Written], folder: str, partitions: int) -> list[Source]:
    """For each partition, the unit files of `folder` whose unit reported writing it."""
    units: list[list[int]] = [[] for _ in range(partitions)]
    for unit, result in enumerate(results):
        for part in result.parts:
            units[part].append(unit)
    return [Source(folder, held) for held in units]


def read_partition(source: Source, key: str, value: int, columns: Sequence[str],
                   schema: pa.Schema) -> pa.Table:
    """Rows with `key == value` from the files of `source` (empty table of `schema` if none)."""
    tables = []
    for unit in source.units:
        with fsspec.open(unit_file(source.folder, unit), "rb") as f:
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


# -- where each shard's decisions lie ------------------------------------------------------------
def write_shard_sources(path: str, shards: Sequence[str], sources: Sequence[Source],
                        **extra: Any) -> None:
    """Record, for `apply`, each shard's number and the files that hold its decisions (their
    rows partitioned by `shard`, the shard's number), plus `extra` JSON-able entries. The
    file appears whole or not at all."""
    payload = {"shards": {s: {"index": i, "source": sources[i]} for i, s in enumerate(shards)},
               **extra}
    fs, local = fsspec.core.url_to_fs(path)
    temporary = posixpath.join(posixpath.dirname(local), ".tmp-" + posixpath.basename(local))
    with fs.open(temporary, "w") as f:
        json.dump(payload, f)
    fs.mv(temporary, local)


def read_shard_decisions(path: str, shard_id: str, columns: Sequence[str],
                         schema: pa.Schema) -> pa.Table:
    """The decision rows of `shard_id`, from the files `write_shard_sources` recorded."""
    with fsspec.open(path, "r") as f:
        entry = json.load(f)["shards"][shard_id]
    return read_partition(Source(*entry["source"]), "shard", entry["index"], columns, schema)


def batch_positions(rows: np.ndarray, first_row: int, n: int) -> np.ndarray:
    """For each of a batch's `n` rows (shard rows `first_row` on), its index in `rows` (a
    shard's decided rows, sorted), or -1 where the row has no decision."""
    lo, hi = np.searchsorted(rows, [first_row, first_row + n])
    position = np.full(n, -1, np.int64)
    position[rows[lo:hi] - first_row] = np.arange(lo, hi)
    return position
