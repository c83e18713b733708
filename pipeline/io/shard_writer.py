"""Writes one shard's kept and rejected rows, then commits them with a manifest.

Rows stream into temporary files; `commit` renames them into place and writes the manifest
last. A shard is finished exactly when its manifest exists, so a killed job never leaves a
half shard that looks done, and a re-run simply overwrites unfinished files.

Temporaries live under `_work/tmp/`, not beside the shards: `data/*.parquet` in DuckDB or
fsspec also matches dot files, so a half-written file a killed worker left in `data/` (its
retry then commits the shard and the job succeeds) would break every reader of the output.
"""

from __future__ import annotations

import posixpath
import uuid
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.io.layout import JobLayout, ShardFiles, open_for_arrow
from pipeline.stage import with_column


class ShardWriter:
    def __init__(self, layout: JobLayout, files: ShardFiles, compression: str = "zstd"):
        self.layout, self.fs, self.files = layout, layout.fs, files
        self.compression = None if compression == "none" else compression
        self._token = uuid.uuid4().hex[:8]
        self._data: _Writer | None = None
        self._data_schema: pa.Schema | None = None
        self._rejected: dict[str, _Writer] = {}  # by step
        self.rows_kept = 0
        self.rows_rejected = 0

    def _tmp(self, final: str, suffix: str = "") -> str:
        folder = self.layout.path("_work", "tmp")
        self.fs.makedirs(folder, exist_ok=True)
        kind = posixpath.basename(posixpath.dirname(final))  # data or rejected
        return posixpath.join(folder, f".tmp-{self._token}{suffix}-{kind}-"
                                      f"{posixpath.basename(final)}")

    def _move_into_place(self, tmp: str, final: str) -> None:
        self.fs.makedirs(posixpath.dirname(final), exist_ok=True)
        self.fs.mv(tmp, final)

    def write_kept(self, table: pa.Table) -> None:
        if self._data is None:
            self._data_schema = table.schema
            self._data = _Writer(self.fs, self._tmp(self.files.data), table.schema,
                                 self.compression)
        if table.num_rows:
            self._data.write_table(conform(table, self._data_schema))
            self.rows_kept += table.num_rows

    def write_rejected(self, table: pa.Table, stage: str, key: str) -> None:
        """Rows one step (`key`) of `stage` rejected; `table` carries a `reason` column."""
        if not table.num_rows:
            return
        table = with_column(table, "stage", pa.array([stage] * table.num_rows, pa.string()))
        if key not in self._rejected:
            path = self._tmp(self.files.rejected, f"-{len(self._rejected)}")
            self._rejected[key] = _Writer(self.fs, path, table.schema, self.compression)
        writer = self._rejected[key]
        writer.write_table(conform(table, writer.schema))
        self.rows_rejected += table.num_rows

    def commit(self, manifest: dict[str, Any], earlier_rejected: list[str] = ()) -> None:
        """Move data and rejected files into place, then write the manifest (the commit)."""
        if self._data is None:  # nothing reached the writer: an empty, typed file
            self.write_kept(pa.table({"id": pa.array([], pa.string())}))
        self._data.close()
        self._move_into_place(self._tmp(self.files.data), self.files.data)
        parts = list(earlier_rejected)
        for writer in self._rejected.values():
            writer.close()
            parts.append(writer.path)
        rejected = self.rows_rejected
        if len(parts) == 1 and not earlier_rejected:
            self._move_into_place(parts[0], self.files.rejected)  # already whole
        else:  # earlier segments' rejections of this shard join its one rejected file
            rejected = merge_parquet(self.fs, parts, self.files.rejected,
                                     self._tmp(self.files.rejected, "-merge"),
                                     self.compression)
            for writer in self._rejected.values():
                self.fs.rm(writer.path)
        manifest = dict(manifest, rows_kept=self.rows_kept, rows_rejected=rejected,
                        bytes_kept=self.fs.size(self.files.data))
        self.layout.write_json(self.files.manifest, manifest)

    def abort(self) -> None:
        for writer in [self._data, *self._rejected.values()]:
            try:
                if writer is not None:
                    writer.close()
            except Exception:
                pass
        for path in [self._tmp(self.files.data), *(w.path for w in self._rejected.values())]:
            if self.fs.exists(path):
                self.fs.rm(path)


class _Writer:
    """A ParquetWriter that owns (and closes) its file handle."""

    def __init__(self, fs, path: str, schema: pa.Schema, compression: str | None):
        self.path, self.schema = path, schema
        self._handle = open_for_arrow(fs, path, "wb")
        self._writer = pq.ParquetWriter(self._handle, schema, compression=compression)

    def write_table(self, table: pa.Table) -> None:
        self._writer.write_table(table)

    def close(self) -> None:
        try:
            self._writer.close()
        finally:
            self._handle.close()


def conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """`table` with exactly `schema`'s columns, in order; missing ones become nulls."""
    if table.schema.equals(schema):
        return table
    columns = [table[f.name].cast(f.type) if f.name in table.column_names
               else pa.nulls(table.num_rows, f.type) for f in schema]
    return pa.Table.from_arrays(columns, schema=schema)


def merge_parquet(fs, parts: list[str], target: str, tmp: str,
                  compression: str | None) -> int:
    """Concatenate Parquet files whose schemas differ (union of columns), batch by batch,
    into `tmp`, then rename it to `target`; returns the number of rows written."""
    schemas = [pq.read_schema(fs.open(p, "rb")) for p in parts]
    schema = pa.unify_schemas(schemas, promote_options="permissive") if schemas else \
        pa.schema([("id", pa.string()), ("stage", pa.string()), ("reason", pa.string())])
    fs.makedirs(posixpath.dirname(target), exist_ok=True)
    rows = 0
    with fs.open(tmp, "wb") as out, pq.ParquetWriter(out, schema, compression=compression) as w:
        for part in parts:
            with fs.open(part, "rb") as f:
                for batch in pq.ParquetFile(f).iter_batches():
                    w.write_table(conform(pa.Table.from_batches([batch]), schema))
                    rows += batch.num_rows
    fs.mv(tmp, target)
    return rows
