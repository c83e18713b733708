"""`format: jsonl` - one JSON object per line; big files split into line-aligned byte ranges.

A line that is not valid UTF-8 or not a JSON object becomes a rejected row (stage `read`)
carrying its byte offset, so one bad line never costs the rest of the file.
"""

from __future__ import annotations

import codecs
import json
from typing import Iterator

import fsspec
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field

from pipeline.io.formats import (InputFileError, InputFormat, ReadBatch, _hash_ids, normalize,
                                 register, relative_names)

_RAW_PREVIEW_CHARS = 2000


class JsonlOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    shard_bytes: int = Field(64 * 2**20, gt=0, description="split files larger than this")


@register
class JsonlInput(InputFormat):
    name = "jsonl"
    options_model = JsonlOptions

    def plan_shards(self, input_spec, files):
        size_limit = self.options(input_spec).shard_bytes
        names = relative_names(files)
        shards = []
        for path in files:
            fs, local = fsspec.core.url_to_fs(path)
            size = fs.size(local)
            splittable = not path.endswith((".gz", ".zst", ".bz2", ".xz"))
            if not splittable or size <= size_limit:
                shards.append({"path": path, "name": names[path], "start": 0, "end": None})
                continue
            for start in range(0, size, size_limit):
                shards.append({"path": path, "name": names[path], "start": start,
                               "end": min(start + size_limit, size)})
        return shards

    def read(self, input_spec, shard, content, batch_rows) -> Iterator[ReadBatch]:
        path, start, end = shard["path"], shard["start"], shard["end"]
        field = {"text": input_spec.text_column, "html": "html"}[content]
        try:
            handle = fsspec.open(path, "rb", compression="infer").open()
        except FileNotFoundError:
            raise InputFileError(path, "file not found") from None
        with handle:
            offset = _seek_to_line(handle, start)
            if offset == 0 and end is None:
                first = handle.read(1)
                if not first:
                    raise InputFileError(path, "file is empty (0 bytes)")
                handle.seek(0)
            rows, keys, bad = [], [], []
            while end is None or offset < end:
                line = handle.readline()
                if not line:
                    break
                here, offset = offset, offset + len(line)
                if here == 0:  # a UTF-8 byte-order mark (Windows tools write one) is no JSON
                    line = line.removeprefix(codecs.BOM_UTF8)
                record, reason = _parse(line, field)
                if reason:
                    bad.append((here, reason, line))
                elif record is not None:
                    rows.append(record)
                    keys.append(here)
                if len(rows) + len(bad) >= batch_rows:
                    yield self._batch(rows, keys, bad, input_spec, content, shard["name"])
                    rows, keys, bad = [], [], []
            if rows or bad:
                yield self._batch(rows, keys, bad, input_spec, content, shard["name"])

    @staticmethod
    def _batch(rows, keys, bad, input_spec, content, name) -> ReadBatch:
        if rows:
            batch = normalize(_to_table(rows), input_spec, content, name,
                              pa.array(keys, pa.int64()))
        else:
            batch = ReadBatch(pa.table({"id": pa.array([], pa.string()),
                                        content: pa.array([], pa.string()),
                                        "url": pa.array([], pa.string()),
                                        "source": pa.array([], pa.string())}))
        if bad:
            sources = pa.array([f"{name}#{offset}" for offset, _, _ in bad], pa.string())
            rejected = pa.table({
                "id": _hash_ids(sources), "url": pa.nulls(len(bad), pa.string()),
                "source": sources, "reason": [reason for _, reason, _ in bad],
                "text": [raw[:_RAW_PREVIEW_CHARS].decode("utf-8", "replace")
                         for _, _, raw in bad]})
            batch.rejected = rejected if batch.rejected is None else pa.concat_tables(
                [batch.rejected, rejected], promote_options="permissive")
        return batch


def _seek_to_line(handle, start: int) -> int:
    """Position at the first line that begins at or after `start`; return that offset."""
    if start == 0:
        return 0
    handle.seek(start - 1)
    if handle.read(1) == b"\n":
        return start
    skipped = handle.readline()
    return start + len(skipped)


def _parse(line: bytes, field: str) -> tuple[dict | None, str | None]:
    if not line.strip():
        return None, None  # blank lines are not documents
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, f"invalid_utf8:byte={exc.start}"
    try:
        record = json.loads(text)
    except json.JSONDecodeError as exc:
        return None, f"bad_json:col={exc.colno}"
    if not isinstance(record, dict):
        return None, "bad_json:not_an_object"
    value = record.get(field)
    if value is not None and not isinstance(value, str):
        return None, f"bad_{field}:type={type(value).__name__}"
    return record, None


def _to_table(rows: list[dict]) -> pa.Table:
    # Columns are the union of every row's keys: `Table.from_pylist` would take them from the
    # first row alone and drop a field (a `url`) that the first row of a batch happens to lack.
    keys = list(dict.fromkeys(k for row in rows for k in row))
    columns = {}
    for key in keys:
        values = [row.get(key) for row in rows]
        try:
            columns[key] = pa.array(values)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError):
            # A field whose type changes from row to row is kept as JSON text.
            columns[key] = pa.array([None if v is None else json.dumps(v) for v in values],
                                    pa.string())
    return pa.table(columns)
