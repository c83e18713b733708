"""The second pass: one unit per output file. It reads the copies whose keys fall in the
file's range from every encoded shard (only the row groups whose key statistics overlap it),
puts them in order (key, then shard, row, copy), writes the file in chunks under temporary
names, moves it into place, and writes its entry (documents, tokens, bytes) last: a file is
complete only with its entry, so a killed unit is redone whole and no document is written
twice.
"""

from __future__ import annotations

import json
import os
import posixpath
from dataclasses import asdict, dataclass

import fsspec
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.export.formats import WRITERS
from pipeline.io.layout import open_for_arrow

CHUNK_DOCUMENTS = 65536  # documents handed to the writer at once


@dataclass(frozen=True)
class Piece:
    shard: int  # the input shard's position
    path: str  # its encoded file
    low: int  # keys in [low, high)
    high: int


@dataclass(frozen=True)
class FileUnit:
    number: int
    pieces: tuple[Piece, ...]
    out: str
    work: str
    format: str
    dtype: str
    shuffle: bool

    @property
    def name(self) -> str:
        return f"part-{self.number:05d}"


@dataclass(frozen=True)
class Written:
    name: str
    files: list[str]  # names under the export folder; none when no document fell here
    documents: int
    tokens: int  # 0 for jsonl
    bytes: int  # of the token (or line) file

    @staticmethod
    def entry(work: str, number: int) -> str:
        return posixpath.join(work, "files", f"part-{number:05d}.json")


def write_file(unit: FileUnit) -> Written:
    fs, _ = fsspec.core.url_to_fs(unit.out)
    table, order = _gather(fs, unit)
    dtype = np.dtype(unit.dtype)
    files: list[str] = []
    if table.num_rows:
        tmp = posixpath.join(unit.work, "tmp", f"{unit.name}.{os.getpid()}")
        fs.makedirs(posixpath.dirname(tmp), exist_ok=True)
        writer = WRITERS[unit.format](fs, tmp, dtype)
        payload = table["payload"]
        for start in range(0, table.num_rows, CHUNK_DOCUMENTS):
            chunk = payload.slice(start, CHUNK_DOCUMENTS) if order is None else \
                payload.take(pa.array(order[start:start + CHUNK_DOCUMENTS]))
            writer.add(chunk.combine_chunks())
        for suffix, path in writer.finish().items():
            fs.mv(path, posixpath.join(unit.out, unit.name + suffix))
            files.append(unit.name + suffix)
        lengths = writer.all_lengths()
    else:
        lengths = np.zeros(0, np.int64)
    tokens = int(lengths.sum()) if unit.format != "jsonl" else 0
    size = tokens * dtype.itemsize if unit.format != "jsonl" else int(lengths.sum())
    result = Written(unit.name, files, len(lengths), tokens, size)
    fs.makedirs(posixpath.dirname(Written.entry(unit.work, unit.number)), exist_ok=True)
    with fs.open(Written.entry(unit.work, unit.number), "w") as f:
        json.dump(asdict(result), f)  # last: the file's commit
    return result


def _gather(fs, unit: FileUnit) -> tuple[pa.Table, np.ndarray | None]:
    """This file's copies from every piece, and the order to write them in (None: as they
    are). Only the chunk being written is ever copied."""
    parts = []
    for piece in unit.pieces:
        with open_for_arrow(fs, piece.path, "rb") as f:
            parquet = pq.ParquetFile(f)
            groups = [g for g in range(parquet.num_row_groups)
                      if _overlaps(parquet.metadata.row_group(g), piece.low, piece.high)]
            if not groups:
                continue
            part = parquet.read_row_groups(groups)
        keys = part["key"].to_numpy()  # numpy compares with the bound 2^63 exactly
        part = part.filter(pa.array((keys >= piece.low) & (keys < piece.high)))
        parts.append(part.append_column("shard", pa.array(np.full(part.num_rows, piece.shard))))
    if not parts:
        return pa.table({"payload": pa.array([], pa.binary())}), None
    table = pa.concat_tables(parts)
    if not unit.shuffle:  # pieces come in shard order, each in its own order
        return table, None
    # each piece is sorted; together they are merged by key (ties: shard, row, copy)
    return table, np.lexsort([table[c].to_numpy() for c in ("copy", "row", "shard", "key")])


def _overlaps(group, low: int, high: int) -> bool:
    stats = group.column(0).statistics  # "key", the first column
    if stats is None or not stats.has_min_max:
        return True
    return stats.max >= low and stats.min < high
