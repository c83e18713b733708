"""The first pass: one unit per input shard. Its kept rows become document copies (`repeat`
of each, 1 when the column is absent or null), each with its payload (token ids, or a JSON
line), its size in the output's bytes and its order key (pipeline/export/keys.py); they are
written to one Parquet file sorted by key, in row groups of about ROW_GROUP_BYTES so that a
file's writer reads little more than its key range. The unit commits with a marker JSON
written last; a killed unit is redone whole.

Copies are not materialised up front: the shard is encoded once, and each row group takes
its copies' payloads from it.
"""

from __future__ import annotations

import json
import os
import posixpath
from dataclasses import asdict, dataclass

import fsspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline.export.keys import offset_keys, shuffle_keys
from pipeline.export.options import TOKEN_FORMATS, ExportOptions
from pipeline.export.source import ExportError, InputShard
from pipeline.io.layout import open_for_arrow

ROW_GROUP_BYTES = 2**20
ENCODE_ROWS = 4096  # documents encoded at once
_tokenizers: dict = {}  # one loaded tokenizer per process and setting


@dataclass(frozen=True)
class EncodeUnit:
    shard: InputShard
    source: str  # the job's root, to open its storage
    work: str  # the export's work folder
    options: ExportOptions
    dtype: str  # the output's token dtype
    reuse_ids: bool
    threads: int  # encoding threads (the CPUs this unit runs on)


@dataclass(frozen=True)
class Encoded:
    index: int
    path: str  # the sorted Parquet file (absent when no copy is exported)
    rows: int  # kept rows read
    copies: int  # sum of their repeats
    empty: int  # copies not written: no tokens (token formats)
    documents: int  # copies written
    tokens: int
    bytes: int  # their size in the output
    last_start: int = 0  # where the last copy starts (the job's order: key of the last)

    @staticmethod
    def marker(work: str, index: int) -> str:
        return posixpath.join(work, "encoded", f"part-{index:05d}.json")


def encode_shard(unit: EncodeUnit) -> Encoded:
    fs, _ = fsspec.core.url_to_fs(unit.source)
    table = _read_kept(fs, unit)
    repeats = _repeats(table)
    payload, sizes, tokens = _payload(table, unit)
    exported = repeats * (sizes > 0 if unit.options.format in TOKEN_FORMATS else 1)
    rows = np.repeat(np.arange(len(repeats), dtype=np.int64), exported)
    copies = np.arange(len(rows), dtype=np.int64) - np.repeat(
        np.cumsum(exported) - exported, exported)
    copy_sizes = sizes[rows]
    if unit.options.shuffle:
        ids = table["id"].to_pylist() if "id" in table.column_names \
            else [f"{unit.shard.shard}:{r}" for r in range(table.num_rows)]
        keys = shuffle_keys(ids, rows, copies, unit.options.seed)
        order = np.lexsort((copies, rows, keys))
    else:
        keys, order = offset_keys(copy_sizes), np.arange(len(rows))
    out_fs, _ = fsspec.core.url_to_fs(unit.work)
    path = posixpath.join(unit.work, "encoded", f"part-{unit.shard.index:05d}.parquet")
    if len(rows):
        _write_sorted(out_fs, path, payload, keys[order], rows[order], copies[order],
                      copy_sizes[order])
    result = Encoded(unit.shard.index, path, table.num_rows, int(repeats.sum()),
                     int((repeats * (sizes == 0)).sum()) if unit.options.format in TOKEN_FORMATS
                     else 0, len(rows), int((tokens[rows]).sum()), int(copy_sizes.sum()),
                     0 if unit.options.shuffle or not len(rows) else int(keys[-1]))
    with out_fs.open(Encoded.marker(unit.work, unit.shard.index), "w") as f:
        json.dump(asdict(result), f)  # last: the unit's commit
    return result


def _read_kept(fs, unit: EncodeUnit) -> pa.Table:
    if not fs.exists(unit.shard.data):
        return pa.table({"id": pa.array([], pa.string()), "text": pa.array([], pa.string())})
    with open_for_arrow(fs, unit.shard.data, "rb") as f:
        names = pq.ParquetFile(f).schema_arrow.names
    wanted = ["id", "repeat"] + (["token_ids"] if unit.reuse_ids else ["text"])
    with open_for_arrow(fs, unit.shard.data, "rb") as f:
        return pq.read_table(f, columns=[c for c in wanted if c in names])


def _repeats(table: pa.Table) -> np.ndarray:
    if "repeat" not in table.column_names:
        return np.ones(table.num_rows, np.int64)
    repeats = pc.fill_null(table["repeat"], 1).to_numpy().astype(np.int64)
    if (repeats < 0).any():
        raise ExportError(f"negative repeat in {table.num_rows} rows: repeat counts copies")
    return repeats


def _payload(table: pa.Table, unit: EncodeUnit) -> tuple[pa.Array, np.ndarray, np.ndarray]:
    """Per row: what is written (a list of ids, or a JSON line), its size in bytes, tokens."""
    if unit.options.format not in TOKEN_FORMATS:
        ids = table["id"].to_pylist() if "id" in table.column_names else [None] * table.num_rows
        lines = [(json.dumps({"id": i, "text": t}, ensure_ascii=False) + "\n").encode()
                 for i, t in zip(ids, table["text"].to_pylist())]
        sizes = np.fromiter(map(len, lines), np.int64, len(lines))
        return pa.array(lines, pa.binary()), sizes, np.zeros(len(lines), np.int64)
    if unit.reuse_ids:
        ids = table["token_ids"].combine_chunks() if table.num_rows else \
            pa.array([], pa.list_(pa.uint32()))
    else:  # in batches: a batch's Encoding objects weigh far more than its ids
        stage, texts = _tokenizer(unit), table["text"].combine_chunks()
        batches = [stage.encode(texts.slice(start, ENCODE_ROWS))[1]
                   for start in range(0, len(texts), ENCODE_ROWS)]
        ids = pa.concat_arrays(batches) if batches else pa.array([], pa.list_(pa.uint32()))
    value_type = pa.uint16() if unit.dtype == "uint16" else pa.uint32()
    ids = ids.cast(pa.list_(value_type))
    tokens = pc.list_value_length(ids).fill_null(0).to_numpy(zero_copy_only=False)
    tokens = tokens.astype(np.int64)
    return ids, tokens * np.dtype(unit.dtype).itemsize, tokens


def _tokenizer(unit: EncodeUnit):
    """The `tokenize` stage itself, set to keep ids: the same loading, special tokens and
    encoding as a job's `tokenize` step (stages/tokenize.py)."""
    from stages.tokenize import Tokenize, TokenizeConfig

    o = unit.options
    key = (o.tokenizer, o.add_bos, o.add_eos, unit.threads)
    if key not in _tokenizers:
        stage = Tokenize(TokenizeConfig(tokenizer=o.tokenizer, ids=True, add_bos=o.add_bos,
                                        add_eos=o.add_eos, cpus=unit.threads))
        stage.setup()
        _tokenizers[key] = stage
    return _tokenizers[key]


def _write_sorted(fs, path: str, payload: pa.Array, keys: np.ndarray, rows: np.ndarray,
                  copies: np.ndarray, sizes: np.ndarray) -> None:
    """Copies in key order, in row groups of about ROW_GROUP_BYTES, under a temporary name
    moved into place."""
    schema = pa.schema([("key", pa.int64()), ("row", pa.int64()), ("copy", pa.int64()),
                        ("payload", payload.type)])
    tmp = f"{path}.tmp-{os.getpid()}"
    fs.makedirs(posixpath.dirname(path), exist_ok=True)
    ends = np.cumsum(sizes)
    with open_for_arrow(fs, tmp, "wb") as f, pq.ParquetWriter(f, schema) as writer:
        start = 0
        while start < len(rows):
            # the first copy past ROW_GROUP_BYTES from here ends the group (at least one)
            base = ends[start - 1] if start else 0
            stop = max(start + 1, int(np.searchsorted(ends, base + ROW_GROUP_BYTES)))
            picked = slice(start, stop)
            writer.write_table(pa.table([
                pa.array(keys[picked]), pa.array(rows[picked]), pa.array(copies[picked]),
                payload.take(pa.array(rows[picked]))], schema=schema))
            start = stop
    fs.mv(tmp, path)
