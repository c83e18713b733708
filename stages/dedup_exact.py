"""`dedup_exact`: one document per normalised text across the whole job.

Three phases, all on Ray, nothing gathered on the driver:
1. `hash` (per shard): 128-bit hash of the normalised text; rows written sorted by hash
   partition, one row group per partition, so phase 2 reads only its slice of each file.
2. `group` (per partition): for every hash, keep the smallest (id, shard, row); the others
   become decisions (shard, row, duplicate_of), sorted by shard.
3. apply (per shard, in the next segment): reject the decided rows with reason `duplicate`.
Per document the phases hold 16 bytes of hash plus id and position.
"""

from __future__ import annotations

import posixpath
from typing import Literal

import fsspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import xxhash
from pydantic import Field

from pipeline.registry import register
from pipeline.stage import GlobalContext, GlobalStage, StageConfig, StageOutput

MAX_AUTO_PARTITIONS = 1024


class DedupExactConfig(StageConfig):
    lowercase: bool = Field(True, description="ignore case")
    collapse_whitespace: bool = Field(True, description="treat any run of whitespace as one space")
    strip_punctuation: bool = Field(False, description="ignore punctuation and symbols")
    strip_digits: bool = Field(False, description="treat every digit as 0")
    keep: Literal["smallest_id"] = Field("smallest_id", description="which copy survives")
    partitions: int | None = Field(None, gt=0, description="hash partitions (default: one per "
                                   "shard, at most 1024); results do not depend on it")


@register
class DedupExact(GlobalStage):
    name = "dedup_exact"
    config_model = DedupExactConfig
    description = "Keep one document per (normalised) text across the job; reject the rest."

    # -- phase 1 -------------------------------------------------------------------------------
    def normalise(self, text: pa.Array) -> pa.Array:
        cfg = self.config
        text = pc.fill_null(text, "")
        if cfg.lowercase:
            text = pc.utf8_lower(text)
        if cfg.strip_punctuation:
            text = pc.replace_substring_regex(text, r"[\p{P}\p{S}]+", "")
        if cfg.strip_digits:
            text = pc.replace_substring_regex(text, r"\d", "0")
        if cfg.collapse_whitespace:
            text = pc.utf8_trim_whitespace(pc.replace_substring_regex(text, r"\s+", " "))
        return text

    def _hash_shard(self, item: tuple[str, str, str, int]) -> int:
        shard, path, out, partitions = item
        with fsspec.open(path, "rb") as f:
            table = pq.read_table(f, columns=["id", "text"])
        digests = [xxhash.xxh3_128_digest(t.encode()) for t in
                   self.normalise(table["text"]).to_pylist()]
        hashes = pa.array(digests, pa.binary(16))
        part = np.frombuffer(b"".join(d[:8] for d in digests), "<u8") % partitions \
            if digests else np.array([], "u8")
        rows = pa.table({"part": pa.array(part, pa.int32()), "hash": hashes,
                         "id": table["id"], "shard": pa.array([shard] * len(part), pa.string()),
                         "row": pa.array(np.arange(len(part)), pa.int64())})
        _write_grouped(rows.sort_by("part"), "part", out)
        return len(part)

    # -- phase 2 -------------------------------------------------------------------------------
    def _group(self, item: tuple[int, list[str], str]) -> int:
        partition, inputs, out = item
        tables = []
        for path in inputs:
            with fsspec.open(path, "rb") as f:
                tables.append(pq.read_table(f, filters=[("part", "=", partition)],
                                            columns=["hash", "id", "shard", "row"]))
        rows = pa.concat_tables(tables).sort_by(
            [("hash", "ascending"), ("id", "ascending"), ("shard", "ascending"),
             ("row", "ascending")])
        hashes = rows["hash"].combine_chunks()
        first = _run_starts(hashes)
        keeper = _forward_fill(rows["id"].combine_chunks(), first)
        dup = pc.invert(first)
        decisions = pa.table({"shard": rows["shard"].filter(dup), "row": rows["row"].filter(dup),
                              "duplicate_of": keeper.filter(dup)}).sort_by(
            [("shard", "ascending"), ("row", "ascending")])
        _write_grouped(decisions, "shard", out)
        return decisions.num_rows

    def plan(self, ctx: GlobalContext) -> dict:
        partitions = self.config.partitions or max(1, min(len(ctx.shard_ids),
                                                           MAX_AUTO_PARTITIONS))
        hash_dir = posixpath.join(ctx.work_dir, "hash")
        hash_files = [posixpath.join(hash_dir, f"{s}.parquet") for s in ctx.shard_ids]
        hashed = ctx.map("hash", self._hash_shard,
                [(s, ctx.shard_path(s), out, partitions)
                 for s, out in zip(ctx.shard_ids, hash_files)], keys=list(ctx.shard_ids))
        duplicates = ctx.map(
            "group", self._group,
            [(p, hash_files, posixpath.join(ctx.work_dir, "dups", f"{p:05d}.parquet"))
             for p in range(partitions)], keys=[f"{p:05d}" for p in range(partitions)])
        return {"documents": sum(hashed), "duplicates": sum(duplicates),
                "partitions": partitions}

    # -- phase 3 -------------------------------------------------------------------------------
    def apply(self, table, shard_id, first_row, work_dir) -> StageOutput:
        duplicate_of = self._decisions(shard_id, work_dir)
        rows = range(first_row, first_row + table.num_rows)
        targets = [duplicate_of.get(r) for r in rows]
        reasons = pa.array(["duplicate" if t is not None else None for t in targets], pa.string())
        return StageOutput(table, reasons, {"duplicate_of": pa.array(targets, pa.string())})

    def _decisions(self, shard_id: str, work_dir: str) -> dict[int, str]:
        if getattr(self, "_cached", (None,))[0] != shard_id:
            fs, base = fsspec.core.url_to_fs(posixpath.join(work_dir, "dups"))
            found: dict[int, str] = {}
            for path in sorted(fs.glob(posixpath.join(base, "*.parquet"))):
                with fs.open(path, "rb") as f:
                    part = pq.read_table(f, filters=[("shard", "=", shard_id)])
                found.update(zip(part["row"].to_pylist(), part["duplicate_of"].to_pylist()))
            self._cached = (shard_id, found)
        return self._cached[1]


def _run_starts(sorted_values: pa.Array) -> pa.Array:
    """True where a value differs from the one before it (the first of each run)."""
    if len(sorted_values) == 0:
        return pa.array([], pa.bool_())
    previous = pa.concat_arrays([pa.nulls(1, sorted_values.type), sorted_values[:-1]])
    return pc.fill_null(pc.not_equal(sorted_values, previous), True)


def _forward_fill(values: pa.Array, starts: pa.Array) -> pa.Array:
    """For each row, the value at the start of its run."""
    start_index = np.maximum.accumulate(
        np.where(starts.to_numpy(zero_copy_only=False), np.arange(len(starts)), 0))
    return values.take(pa.array(start_index, pa.int64()))


def _write_grouped(table: pa.Table, key: str, path: str) -> None:
    """One row group per value of `key` (table sorted by it), so readers filter cheaply."""
    fs, local = fsspec.core.url_to_fs(path)
    fs.makedirs(posixpath.dirname(local), exist_ok=True)
    with fs.open(local, "wb") as f, pq.ParquetWriter(f, table.schema,
                                                     compression="zstd") as writer:
        if table.num_rows == 0:
            writer.write_table(table)
            return
        values = table[key].combine_chunks()
        starts = np.flatnonzero(_run_starts(values).to_numpy(zero_copy_only=False))
        ends = list(starts[1:]) + [table.num_rows]
        for start, end in zip(starts, ends):
            writer.write_table(table.slice(start, end - start))
