"""Input formats: a registry of readers and what they share.

A reader plans shards (units of resume and balance: a file, a row-group range or a byte range)
and turns one shard into batches with the core columns `id`, `text` (or `html`), `url`,
`source`. Reader modules live beside this one as `*_input.py` and register themselves.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
from dataclasses import dataclass
from typing import Any, Iterator

import fsspec
import pyarrow as pa
import pyarrow.compute as pc
import xxhash
from pydantic import BaseModel, ConfigDict, ValidationError


class InputFileError(Exception):
    """A whole file (or shard) cannot be read; names the file and where it went wrong."""

    def __init__(self, path: str, message: str, offset: int | None = None):
        self.path, self.offset = path, offset
        where = f"{path}" + (f" at offset {offset}" if offset is not None else "")
        super().__init__(f"{where}: {message}")


class InputListingError(ValueError):
    """The input's file list cannot be made (a crawl's listing is missing, a slice selects
    nothing); `key` is the input key to point at."""

    def __init__(self, key: str, message: str):
        self.key = key
        super().__init__(message)


@dataclass
class ReadBatch:
    """Rows read from a shard, plus rows that could not be turned into documents."""

    table: pa.Table
    rejected: pa.Table | None = None  # columns: id, source, text, reason


class NoOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")


class InputFormat:
    name: str
    options_model: type[BaseModel] = NoOptions

    def check_options(self, extras: dict[str, Any]) -> list[tuple[str, str]]:
        try:
            self.options_model.model_validate(extras)
        except ValidationError as exc:
            return [(str(e["loc"][0]) if e["loc"] else "input",
                     _option_message(e, self.options_model)) for e in exc.errors()]
        return []

    def options(self, input_spec) -> BaseModel:
        return self.options_model.model_validate(input_spec.model_extra or {})

    def check_source(self, input_spec) -> list[tuple[str, str]]:
        """(input key, problem) with where the files come from; `paths` by default."""
        if input_spec.paths:
            return []
        return [("paths", "missing required key 'input.paths'; add it")]

    def locations(self, input_spec) -> list[tuple[str, str]]:
        """(input key, path or URL) the input is read from, whose filesystem must be
        installed before any file is listed."""
        return [("paths", p) for p in input_spec.paths]

    def list_files(self, input_spec) -> list[str]:
        """The files to read, in a stable order (it decides the shards): the globs of
        `paths`, expanded. May raise InputListingError."""
        return expand_paths(input_spec.paths)

    def columns(self, input_spec, files: list[str], wants_html: bool) -> list[str]:
        content = "html" if wants_html else "text"
        return ["id", content, "url", "source"]

    def plan_shards(self, input_spec, files: list[str]) -> list[dict]:
        raise NotImplementedError

    def read(self, input_spec, shard: dict, content: str, batch_rows: int) -> Iterator[ReadBatch]:
        raise NotImplementedError


_FORMATS: dict[str, InputFormat] = {}
_loaded = False


def register(fmt_cls: type[InputFormat]) -> type[InputFormat]:
    _FORMATS[fmt_cls.name] = fmt_cls()
    return fmt_cls


def _load() -> None:
    global _loaded
    if not _loaded:
        import pipeline.io as package
        for module in pkgutil.iter_modules(package.__path__):
            if module.name.endswith("_input"):
                importlib.import_module(f"pipeline.io.{module.name}")
        _loaded = True


def get(name: str) -> InputFormat | None:
    _load()
    return _FORMATS.get(name)


def names() -> list[str]:
    _load()
    return sorted(_FORMATS)


def expand_paths(patterns: list[str]) -> list[str]:
    """Glob each pattern (local or fsspec URL); sorted, de-duplicated file list."""
    found: set[str] = set()
    for pattern in patterns:
        fs, _ = fsspec.core.url_to_fs(pattern)
        protocol = pattern.split("://", 1)[0] + "://" if "://" in pattern else ""
        matches = fs.glob(pattern) if any(c in pattern for c in "*?[") else (
            [pattern] if fs.exists(pattern) else [])
        for match in matches:
            match = match if (not protocol or "://" in match) else protocol + match
            if fs.isfile(match):
                found.add(match)
    return sorted(found)


def relative_names(files: list[str]) -> dict[str, str]:
    """Short, stable names of files relative to their common folder (used in ids/sources)."""
    if not files:
        return {}
    if len(files) == 1:
        return {files[0]: os.path.basename(files[0])}
    root = os.path.commonpath([f.split("://", 1)[-1] for f in files])
    return {f: os.path.relpath(f.split("://", 1)[-1], root) for f in files}


def normalize(table: pa.Table, input_spec, content: str, rel_name: str,
              row_keys: pa.Array) -> ReadBatch:
    """Rename the configured columns to the core names, type them, fill ids and sources.

    `row_keys` locate each row in its file (row number or byte offset); ids that the input
    lacks are a hash of file name + row key, so they survive re-runs and re-sharding.
    """
    renames = {input_spec.text_column: "text", input_spec.id_column: "id",
               input_spec.url_column: "url"}
    table = table.rename_columns([renames.get(c, c) for c in table.column_names])
    if content not in table.column_names:
        table = table.append_column(content, pa.nulls(table.num_rows, pa.string()))
    source = pc.binary_join_element_wise(pa.scalar(rel_name), row_keys.cast(pa.string()), "#")
    columns = {}
    if "id" in table.column_names:
        given = table["id"].combine_chunks().cast(pa.string())
        missing = pc.is_null(given)
        columns["id"] = given if not pc.any(missing).as_py() else pc.replace_with_mask(
            given, missing, _hash_ids(source.filter(missing)))
    else:
        columns["id"] = _hash_ids(source)
    columns["url"] = table["url"].cast(pa.string()) if "url" in table.column_names \
        else pa.nulls(table.num_rows, pa.string())
    columns["source"] = table["source"].cast(pa.string()) if "source" in table.column_names \
        else source
    for name, values in columns.items():
        if name in table.column_names:
            table = table.set_column(table.column_names.index(name), name, values)
        else:
            table = table.append_column(name, values)
    order = ["id", content, "url", "source"]
    table = table.select(order + [c for c in table.column_names if c not in order])
    missing = pc.is_null(table[content])
    if not pc.any(missing).as_py():
        return ReadBatch(table)
    rejected = table.filter(missing).select(["id", "url", "source"]).append_column(
        "reason", pa.array([f"missing_{content}"] * pc.sum(missing).as_py(), pa.string()))
    return ReadBatch(table.filter(pc.invert(missing)), rejected)


def _hash_ids(source: pa.Array) -> pa.Array:
    return pa.array([xxhash.xxh3_64_hexdigest(s.encode()) for s in source.to_pylist()],
                    pa.string())


def _option_message(err: dict, model: type[BaseModel]) -> str:
    key = ".".join(str(p) for p in err["loc"])
    if err["type"] == "extra_forbidden":
        valid = ", ".join(model.model_fields) or "none"
        return f"unknown key 'input.{key}' for this format; valid format options: {valid}"
    return f"input.{key}: {err['msg']}"
