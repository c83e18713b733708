"""A job's output as the browse commands read it (docs/architecture.md, "Data layout"):
the files of committed shards, their columns, the spec as run, DuckDB over them, and
documents fetched by position, reading only the row groups that hold them."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from functools import cached_property

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from pipeline.io.layout import JobLayout, open_for_arrow

KEPT, REJECTED = "kept", "rejected"
# Columns every scan adds: which side a row is on, and where it lies (to fetch it later).
SIDE, FILE, ROW = "_side", "_file", "_row"


class BrowseError(ValueError):
    """A problem with what the user asked for; the CLI prints it as `error: ...`."""


@dataclass(frozen=True)
class Position:
    side: str
    file: str
    row: int


class JobOutput:
    def __init__(self, root: str):
        self.root = root
        self.layout = JobLayout(root)
        if not self.layout.exists(self.layout.base):
            raise BrowseError(f"no job output at {root}")
        paths = sorted(self.layout.fs.glob(self.layout.path("manifests", "part-*.json")))
        # Only committed shards count: a shard's manifest is written last.
        self.manifests = [self.layout.read_json(p) for p in paths]
        if not self.manifests:
            raise BrowseError(f"no committed shard in {root} yet")
        self._files: dict[str, list[str]] = {}
        self.con = duckdb.connect()
        if self.layout.url("x") != "x":
            self.con.register_filesystem(self.layout.fs)

    def files(self, side: str) -> list[str]:
        if side not in self._files:
            path = self.layout.data if side == KEPT else self.layout.rejected
            found = [path(m["shard"]) for m in self.manifests]
            self._files[side] = [self.layout.url(p) for p in found if self.layout.exists(p)]
        return self._files[side]

    @cached_property
    def columns(self) -> dict[str, dict[str, str]]:
        """Per side: column name -> DuckDB type (nothing for a side without files)."""
        out: dict[str, dict[str, str]] = {}
        for side in (KEPT, REJECTED):
            files = self.files(side)
            described = self.con.execute(f"DESCRIBE SELECT * FROM {_read(files)}").fetchall() \
                if files else []
            out[side] = {name: kind for name, kind, *_ in described}
        return out

    @cached_property
    def all_columns(self) -> dict[str, str]:
        return self.columns[REJECTED] | self.columns[KEPT]

    def scan(self, sides: tuple[str, ...] = (KEPT, REJECTED)) -> str:
        """SQL for the rows of `sides`, with SIDE, FILE and ROW; a column one side lacks is
        null there. Filters on the result reach the Parquet scans (row-group statistics)."""
        parts = [f"SELECT '{side}' AS {SIDE}, filename AS {FILE}, file_row_number AS {ROW}, * "
                 f"EXCLUDE (filename, file_row_number) "
                 f"FROM {_read(self.files(side), positions=True)}"
                 for side in sides if self.files(side)]
        if not parts:
            return f"SELECT NULL::VARCHAR AS {SIDE}, NULL::VARCHAR AS {FILE}, " \
                   f"NULL::BIGINT AS {ROW} WHERE false"
        return "(" + " UNION ALL BY NAME ".join(parts) + ")"

    def fetch(self, positions: list[Position], columns: list[str] | None = None) -> list[dict]:
        """The rows at `positions`, in that order, as dicts with `kept`, `stage` and `reason`
        set on every row. Reads only the row groups that hold them."""
        wanted: dict[str, set[int]] = defaultdict(set)
        for p in positions:
            wanted[p.file].add(p.row)
        found: dict[tuple[str, int], dict] = {}
        for file, rows in wanted.items():
            found.update(((file, row), values) for row, values in
                         _read_rows(self.layout, file, sorted(rows), columns).items())
        out = []
        for p in positions:
            row = found[(p.file, p.row)]
            first = {"id": row.get("id"), "kept": p.side == KEPT, "stage": row.get("stage"),
                     "reason": row.get("reason")}
            out.append(first | row)
        return out

    @cached_property
    def steps(self) -> list[tuple[str, dict]]:
        """The spec's stages as run: (name, options) in order."""
        if not self.layout.exists(self.layout.spec()):
            return []
        with self.layout.fs.open(self.layout.spec(), "r") as f:
            spec = yaml.safe_load(f)
        return [next(iter(entry.items())) for entry in spec.get("stages") or []]


def _read(files: list[str], positions: bool = False) -> str:
    listed = ", ".join(sql_string(f) for f in files)
    extra = ", filename = true, file_row_number = true" if positions else ""
    return f"read_parquet([{listed}], union_by_name = true{extra})"


def sql_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _read_rows(layout: JobLayout, url: str, rows: list[int],
               columns: list[str] | None) -> dict[int, dict]:
    path = layout.fs._strip_protocol(url) if "://" in url else url
    with open_for_arrow(layout.fs, path, "rb") as f:
        parquet = pq.ParquetFile(f)
        names = parquet.schema_arrow.names
        picked = names if columns is None else [c for c in names if c in columns]
        out, start = {}, 0
        for group in range(parquet.num_row_groups):
            size = parquet.metadata.row_group(group).num_rows
            inside = [r for r in rows if start <= r < start + size]
            if inside:
                table = parquet.read_row_group(group, columns=picked)
                taken = table.take(pa.array([r - start for r in inside])).to_pylist()
                out.update(zip(inside, taken))
            start += size
    return out

