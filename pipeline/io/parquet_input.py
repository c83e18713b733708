"""`format: parquet` - shards are row-group ranges of about `shard_rows` rows."""

from __future__ import annotations

from typing import Iterator

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict, Field

from pipeline.io.formats import (InputFileError, InputFormat, ReadBatch, normalize, register,
                                 relative_names)
from pipeline.io.layout import open_for_arrow


class ParquetOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    shard_rows: int = Field(50_000, gt=0, description="target rows per shard")


@register
class ParquetInput(InputFormat):
    name = "parquet"
    options_model = ParquetOptions

    def columns(self, input_spec, files, wants_html):
        base = super().columns(input_spec, files, wants_html)
        try:  # the first file's own columns are available to stages too
            with fsspec.open(files[0], "rb") as f:
                names = pq.read_schema(f).names
        except Exception:
            return base
        renames = {input_spec.text_column: "text", input_spec.id_column: "id",
                   input_spec.url_column: "url"}
        return base + [c for c in (renames.get(n, n) for n in names) if c not in base]

    def plan_shards(self, input_spec, files):
        target = self.options(input_spec).shard_rows
        names = relative_names(files)
        shards = []
        for path in files:
            try:
                with fsspec.open(path, "rb") as f:
                    meta = pq.ParquetFile(f).metadata
                groups = [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
            except Exception:
                groups = None  # unreadable: one shard, whose read reports the error
            if not groups:
                shards.append({"path": path, "name": names[path], "row_groups": None,
                               "first_row": 0})
                continue
            start, rows, first_row = 0, 0, 0
            for index, count in enumerate(groups):
                rows += count
                if rows >= target or index == len(groups) - 1:
                    shards.append({"path": path, "name": names[path],
                                   "row_groups": [start, index + 1], "first_row": first_row})
                    first_row += rows
                    start, rows = index + 1, 0
        return shards

    def read(self, input_spec, shard, content, batch_rows) -> Iterator[ReadBatch]:
        path = shard["path"]
        try:
            fs, local = fsspec.core.url_to_fs(path)
            handle = open_for_arrow(fs, local, "rb")
            parquet = pq.ParquetFile(handle)
        except FileNotFoundError:
            raise InputFileError(path, "file not found") from None
        except Exception as exc:
            raise InputFileError(path, f"not a readable Parquet file ({exc})") from None
        with handle:
            source_name = {"text": input_spec.text_column, "html": "html"}[content]
            schema = parquet.schema_arrow
            if source_name not in schema.names:
                raise InputFileError(path, f"no column {source_name!r} (columns: "
                                     f"{', '.join(schema.names)}); set input.text_column "
                                     "to the column that holds the text")
            kind = schema.field(source_name).type
            if not (pa.types.is_string(kind) or pa.types.is_large_string(kind)
                    or (content == "html" and pa.types.is_binary(kind))):
                raise InputFileError(path, f"column {source_name!r} has type {kind}, "
                                     "expected a string column")
            groups = range(*shard["row_groups"]) if shard["row_groups"] else None
            row = shard["first_row"]
            try:
                for batch in parquet.iter_batches(batch_size=batch_rows, row_groups=groups):
                    table = pa.Table.from_batches([batch])
                    keys = pa.array(range(row, row + table.num_rows), pa.int64())
                    row += table.num_rows
                    yield normalize(table, input_spec, content, shard["name"], keys)
            except (OSError, pa.ArrowException) as exc:
                raise InputFileError(path, f"corrupt Parquet data after row {row} ({exc})") \
                    from None
