"""`mix`: sample or repeat groups of documents to a mixture: per group a `weight` (0..1), a
`repeat` count (>= 1, may be fractional), or a share of a `budget_tokens`.

A group is the `by` columns' values joined by `|` (`by: [domain, bucket]` -> "web|3").
Documents are taken in the order of their id's hash (with `seed`), so the same spec takes the
same documents (stages/_mix/selection.py). A sampled-out document is rejected as
`mix:sampled_out`; a kept one gets `repeat` (int32, >= 1): how many copies the export writes.
Tokens are `n_tokens` (from `tokenize`); needed for `shares` and `budget_tokens`, otherwise
each document counts 1 where the column is absent.

Phases: `count` (per shard: documents and tokens per group and hash bin, written by group),
`threshold` (per group partition: each group's hash threshold), `tally` (per shard: what the
decisions take, for the report).
"""

from __future__ import annotations

import math
import posixpath
from dataclasses import dataclass
from typing import Annotated

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import xxhash
from pydantic import Field, field_validator, model_validator

from pipeline.registry import register
from pipeline.stage import (GlobalContext, GlobalStage, StageConfig, StageOutput,
                            reasons_where, with_column)
from stages._bucket.quantiles import read_columns
from stages._mix.selection import (copies_of, group_values, histogram, id_hashes,
                                   multipliers, threshold_of)
from stages._shared.json_file import read_json, write_json_whole
from stages._shared.partitioned import (Source, Written, holders, read_partition, run_phase,
                                        shard_partitions, unit_file, write_partitioned)

DECISIONS = "mix.json"
TOKENS = "n_tokens"
BINS = pa.schema([("part", pa.int32()), ("group", pa.string()), ("bin", pa.int32()),
                  ("docs", pa.int64()), ("tokens", pa.int64())])

Weight = Annotated[float, Field(ge=0, le=1)]
Repeat = Annotated[float, Field(ge=1)]


def _group_key(value) -> str:
    """A YAML key as the group value it names: `3` -> "3", `true` -> "true"."""
    return str(value).lower() if isinstance(value, bool) else str(value)


class MixConfig(StageConfig):
    by: list[str] = Field(min_length=1, description="columns whose values make a group; "
                          "several joined by '|', e.g. 'web|3'")
    weights: dict[str, Weight] = Field(default_factory=dict, description="group -> share of "
                                       "its tokens to keep (0..1)")
    repeats: dict[str, Repeat] = Field(default_factory=dict, description="group -> times to "
                                       "take it (>= 1; 1.5 = all once, half again)")
    shares: dict[str, Weight] = Field(default_factory=dict, description="group -> share of "
                                      "the output's tokens (sum 1; unnamed groups: none)")
    budget_tokens: int | None = Field(None, gt=0, description="tokens of the output: scales "
                                      "weights/repeats, or splits by shares")
    seed: int = Field(0, ge=0, lt=2**64, description="seed of the id hash that orders the "
                      "documents")
    partitions: int | None = Field(None, gt=0, description="group partitions (default: one "
                                   "per shard, at most 1024); results do not depend on it")

    @field_validator("weights", "repeats", "shares", mode="before")
    @classmethod
    def _keys_as_text(cls, value):
        return {_group_key(k): v for k, v in value.items()} if isinstance(value, dict) else value

    @model_validator(mode="after")
    def _amounts_agree(self):
        twice = sorted(set(self.weights) & set(self.repeats))
        if twice:
            raise ValueError(f"groups {twice} have both a weight and a repeat count; give one")
        if self.shares and (self.weights or self.repeats):
            raise ValueError("shares decide every group's amount; drop weights and repeats, "
                             "or drop shares")
        if self.shares and not math.isclose(sum(self.shares.values()), 1, abs_tol=1e-6):
            raise ValueError(f"shares must add up to 1 (they add up to "
                             f"{sum(self.shares.values()):.6g})")
        return self

    def needs_tokens(self) -> bool:
        return bool(self.shares) or self.budget_tokens is not None


@dataclass(frozen=True)
class _CountUnit:
    path: str
    columns: tuple[str, ...]
    by: tuple[str, ...]
    seed: int
    partitions: int
    out: str


@dataclass(frozen=True)
class _Counted(Written):
    totals: dict  # group -> [documents, tokens]
    counted_tokens: bool  # False: the shard has no `n_tokens`, each document counted 1


@dataclass(frozen=True)
class _ThresholdUnit:
    part: int
    source: Source
    targets: tuple[tuple[str, float], ...]  # (group, tokens to take once more)


@dataclass(frozen=True)
class _TallyUnit:
    path: str
    columns: tuple[str, ...]
    by: tuple[str, ...]
    seed: int
    decided: dict  # group -> [whole copies, threshold]


@register
class Mix(GlobalStage):
    name = "mix"
    config_model = MixConfig
    description = "Sample or repeat groups of documents by weight, repeat count or token share."

    def requires(self):
        cfg = self.config
        by = tuple(getattr(cfg, "by", ()))
        return ("id", *by) + ((TOKENS,) if hasattr(cfg, "by") and cfg.needs_tokens() else ())

    def produces(self):
        return ("repeat",)

    def _columns(self) -> tuple[str, ...]:
        return ("id", *self.config.by, TOKENS)

    def plan(self, ctx: GlobalContext) -> dict:
        cfg = self.config
        shards = sorted(ctx.shard_ids)
        paths = [ctx.shard_path(s) for s in shards]
        keys = [f"{i:05d}" for i in range(len(shards))]
        partitions = shard_partitions(cfg.partitions, len(shards))
        folder = posixpath.join(ctx.work_dir, "bins")
        counted = run_phase(ctx, "count", _count, [
            _CountUnit(p, self._columns(), tuple(cfg.by), cfg.seed, partitions,
                       unit_file(folder, i)) for i, p in enumerate(paths)], keys, _Counted)
        docs: dict[str, int] = {}
        tokens: dict[str, int] = {}
        for result in counted:
            for group, (d, t) in result.totals.items():
                docs[group] = docs.get(group, 0) + d
                tokens[group] = tokens.get(group, 0) + t
        factor, asked, planned = multipliers(tokens, cfg.weights, cfg.repeats, cfg.shares,
                                             cfg.budget_tokens)
        decided = {g: [math.floor(factor[g]), 0] for g in factor}
        targets: dict[int, list[tuple[str, float]]] = {}
        for g in tokens:
            rest = (factor[g] - math.floor(factor[g])) * tokens[g]
            if rest > 0:
                targets.setdefault(_partition_of(g, partitions), []).append((g, rest))
        sources = holders(counted, folder, partitions)
        chosen = sorted(targets)
        found = ctx.map("threshold", _threshold, [
            _ThresholdUnit(p, sources[p], tuple(targets[p])) for p in chosen],
            keys=[f"{p:05d}" for p in chosen])
        for result in found:
            for group, threshold in result.items():
                decided[group][1] = threshold
        write_json_whole(posixpath.join(ctx.work_dir, DECISIONS), {"groups": decided})
        tallied = ctx.map("tally", _tally, [
            _TallyUnit(p, self._columns(), tuple(cfg.by), cfg.seed, decided) for p in paths],
            keys=keys)
        unit = "tokens" if all(c.counted_tokens for c in counted) else "documents"
        return _stats(cfg, unit, docs, tokens, factor, asked, planned, tallied)

    def apply(self, table, shard_id, first_row, work_dir) -> StageOutput:
        decided = self._decisions(work_dir)
        copies = copies_of(group_values(table, self.config.by),
                           id_hashes(table["id"], self.config.seed), decided)
        column = pa.array(copies, pa.int32())
        reasons = reasons_where(pc.equal(column, 0), "mix", "sampled_out")
        return StageOutput(with_column(table, "repeat", column),
                           reasons if reasons.null_count < len(reasons) else None)

    def _decisions(self, work_dir: str) -> dict[str, tuple[int, int]]:
        if getattr(self, "_cached", (None,))[0] != work_dir:
            found = read_json(posixpath.join(work_dir, DECISIONS))["groups"]
            self._cached = (work_dir, {g: (w, t) for g, (w, t) in found.items()})
        return self._cached[1]


def _partition_of(group: str, partitions: int) -> int:
    return xxhash.xxh3_64_intdigest(group.encode()) % partitions


def _read(path: str, columns: tuple[str, ...], by: tuple[str, ...], seed: int):
    """A shard's groups, id hashes, tokens (1 per document without `n_tokens`) and whether
    it had `n_tokens`."""
    table = read_columns(path, columns)
    counted = TOKENS in table.column_names
    tokens = (pc.fill_null(table[TOKENS], 0).to_numpy(zero_copy_only=False).astype(np.int64)
              if counted else np.ones(table.num_rows, np.int64))
    return group_values(table, list(by)), id_hashes(table["id"], seed), tokens, counted


def _count(unit: _CountUnit) -> _Counted:
    groups, hashes, tokens, counted = _read(unit.path, unit.columns, unit.by, unit.seed)
    bins = histogram(groups, hashes, tokens)
    part = [_partition_of(g, unit.partitions) for g in bins["group"].to_pylist()]
    written = write_partitioned(bins.add_column(0, "part", pa.array(part, pa.int32())),
                                "part", unit.out)
    totals: dict[str, list[int]] = {}
    for g, d, t in zip(bins["group"].to_pylist(), bins["docs"].to_pylist(),
                       bins["tokens"].to_pylist()):
        entry = totals.setdefault(g, [0, 0])
        entry[0] += d
        entry[1] += t
    return _Counted(parts=written, totals=totals, counted_tokens=counted)


def _threshold(unit: _ThresholdUnit) -> dict[str, int]:
    rows = read_partition(unit.source, "part", unit.part, ["group", "bin", "tokens"], BINS)
    out = {}
    for group, target in unit.targets:
        mine = rows.filter(pc.equal(rows["group"], group))
        out[group] = threshold_of(mine["bin"].to_numpy(), mine["tokens"].to_numpy(), target)
    return out


def _tally(unit: _TallyUnit) -> dict[str, list[int]]:
    """group -> [documents taken, copies, tokens with copies] in one shard."""
    groups, hashes, tokens, _ = _read(unit.path, unit.columns, unit.by, unit.seed)
    copies = copies_of(groups, hashes, unit.decided)
    table = pa.table({"group": groups, "taken": pa.array((copies > 0).astype(np.int64)),
                      "copies": pa.array(copies, pa.int64()),
                      "tokens": pa.array(copies * tokens, pa.int64())})
    found = table.group_by("group").aggregate([("taken", "sum"), ("copies", "sum"),
                                               ("tokens", "sum")])
    return {g: [d, c, t] for g, d, c, t in zip(*(found[k].to_pylist() for k in (
        "group", "taken_sum", "copies_sum", "tokens_sum")))}


def _stats(cfg: MixConfig, unit: str, docs, tokens, factor, asked, planned,
           tallied) -> dict:
    """Per group: documents and tokens before, the multiplier, documents, copies and tokens
    after, and the share of the output's tokens asked for and achieved."""
    after: dict[str, list[int]] = {}
    for result in tallied:
        for g, values in result.items():
            after[g] = [a + b for a, b in zip(after.get(g, [0, 0, 0]), values)]
    total_after = sum(a[2] for a in after.values())
    rows = [{"group": g, "docs": docs.get(g, 0), "tokens": tokens.get(g, 0),
             "multiplier": round(factor[g], 6),
             "docs_after": after.get(g, [0])[0], "copies_after": after.get(g, [0, 0])[1],
             "tokens_after": after.get(g, [0, 0, 0])[2],
             "share_requested": round(asked[g], 6),
             "share_achieved": round(after.get(g, [0, 0, 0])[2] / total_after, 6)
             if total_after else 0.0}
            for g in sorted(factor)]
    return {"by": list(cfg.by), "seed": cfg.seed, "counted": unit,
            "tokens_before": sum(tokens.values()), "tokens_requested": round(planned),
            "tokens_after": total_after, "budget_tokens": cfg.budget_tokens,
            "groups": len(docs), "per_group": rows}
