"""`dedup_exact`: one document per normalised text across the whole job.

Three phases, all on Ray, nothing gathered on the driver; they hand rows to each other
through the partitioned files of stages/_shared/partitioned.py:
1. `hash` (per shard): 128-bit hash of the normalised text; rows written by hash partition,
   one row group per partition, so phase 2 reads only its slice of the files that hold it.
2. `group` (per partition): for every hash, keep the smallest (id, shard, row); the others
   become decisions (shard, row, duplicate_of), written by shard.
3. apply (per shard, in the next segment): reject the decided rows with reason `duplicate`.
Per document the phases hold 16 bytes of hash plus id and position.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
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
from stages._shared.partitioned import (PartitionUnit, ShardUnit, Written, holders,
                                        read_partition, read_shard_decisions, run_phase,
                                        shard_partitions, unit_file, write_partitioned,
                                        write_shard_sources)

# A shard is its number in the sorted list of shard ids: sorting by number then orders
# copies exactly as sorting by id would, so ties keep the same copy.
HASHES = pa.schema([("part", pa.int32()), ("hash", pa.binary(16)), ("id", pa.string()),
                    ("shard", pa.int32()), ("row", pa.int64())])
DECISIONS = pa.schema([("shard", pa.int32()), ("row", pa.int64()),
                       ("duplicate_of", pa.string())])


@dataclass(frozen=True)
class Hashed(Written):
    documents: int


@dataclass(frozen=True)
class Grouped(Written):
    duplicates: int


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

    def _hash_shard(self, unit: ShardUnit) -> Hashed:
        with fsspec.open(unit.shard_path, "rb") as f:
            table = pq.read_table(f, columns=["id", "text"])
        digests = [xxhash.xxh3_128_digest(t.encode()) for t in
                   self.normalise(table["text"]).to_pylist()]
        hashes = pa.array(digests, pa.binary(16))
        part = np.frombuffer(b"".join(d[:8] for d in digests), "<u8") % unit.partitions \
            if digests else np.array([], "u8")
        rows = pa.table({"part": pa.array(part, pa.int32()), "hash": hashes, "id": table["id"],
                         "shard": pa.array(np.full(len(part), unit.index, np.int32)),
                         "row": pa.array(np.arange(len(part)), pa.int64())})
        return Hashed(parts=write_partitioned(rows, "part", unit.out), documents=len(part))

    def plan(self, ctx: GlobalContext) -> dict:
        shards = sorted(ctx.shard_ids)
        partitions = shard_partitions(self.config.partitions, len(shards))
        hash_folder = posixpath.join(ctx.work_dir, "hash")
        dups_folder = posixpath.join(ctx.work_dir, "dups")
        hashed = run_phase(ctx, "hash", self._hash_shard, [
            ShardUnit(i, ctx.shard_path(s), unit_file(hash_folder, i), partitions)
            for i, s in enumerate(shards)], shards, Hashed)
        sources = holders(hashed, hash_folder, partitions)
        grouped = run_phase(ctx, "group", _group, [
            PartitionUnit(p, sources[p], unit_file(dups_folder, p)) for p in range(partitions)],
            [f"{p:05d}" for p in range(partitions)], Grouped)
        write_shard_sources(posixpath.join(ctx.work_dir, "decisions.json"), shards,
                            holders(grouped, dups_folder, len(shards)))
        return {"documents": sum(h.documents for h in hashed),
                "duplicates": sum(g.duplicates for g in grouped), "partitions": partitions}

    # -- phase 3 -------------------------------------------------------------------------------
    def apply(self, table, shard_id, first_row, work_dir) -> StageOutput:
        duplicate_of = self._decisions(shard_id, work_dir)
        rows = range(first_row, first_row + table.num_rows)
        targets = [duplicate_of.get(r) for r in rows]
        reasons = pa.array(["duplicate" if t is not None else None for t in targets], pa.string())
        return StageOutput(table, reasons, {"duplicate_of": pa.array(targets, pa.string())})

    def _decisions(self, shard_id: str, work_dir: str) -> dict[int, str]:
        """row -> the id it duplicates, for this shard, read once per shard."""
        if getattr(self, "_cached", (None,))[0] != shard_id:
            found = read_shard_decisions(posixpath.join(work_dir, "decisions.json"), shard_id,
                                         ["row", "duplicate_of"], DECISIONS)
            self._cached = (shard_id, dict(zip(found["row"].to_pylist(),
                                               found["duplicate_of"].to_pylist())))
        return self._cached[1]


# -- phase 2 (needs no config) -----------------------------------------------------------------
def _group(unit: PartitionUnit) -> Grouped:
    rows = read_partition(unit.source, "part", unit.part, ["hash", "id", "shard", "row"],
                          HASHES).sort_by([("hash", "ascending"), ("id", "ascending"),
                                           ("shard", "ascending"), ("row", "ascending")])
    hashes = rows["hash"].combine_chunks()
    first = _run_starts(hashes)
    keeper = _forward_fill(rows["id"].combine_chunks(), first)
    dup = pc.invert(first)
    decisions = pa.table({"shard": rows["shard"].filter(dup), "row": rows["row"].filter(dup),
                          "duplicate_of": keeper.filter(dup)})
    return Grouped(parts=write_partitioned(decisions, "shard", unit.out),
                   duplicates=decisions.num_rows)


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
