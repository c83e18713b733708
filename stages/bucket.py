"""`bucket`: job-wide quantile buckets of one or more score columns, as Nemotron-CC cuts its
classifier scores; writes `bucket` (int32, 0 = lowest scores, `buckets - 1` = highest).

The edges are exact quantiles over every document of the job (stages/_bucket/quantiles.py:
a distributed sample sort; the edges equal `numpy.quantile` on the same scores). A document
falls in bucket k when k edges lie at or below its score. Several columns combine by
`combine` (stages/_bucket/scores.py):
- `max`: each column is cut into its own buckets and a document takes the highest of its
  columns' buckets (Nemotron-CC's ensemble of classifiers);
- `mean`: the columns' mean is cut (scores on one scale);
- `rank-average`: the mean of the columns' ranks (each to within 1/1000, read off 1001
  exact quantiles of the column) is cut.
A document lacking any of the columns (null or NaN) gets no bucket (null) and is kept.
Phases: [`rank_sample`, `rank_partition`, `rank_select` (rank-average only)], `sample`,
`partition`, `select`, `count` (documents and tokens per bucket, for the report).
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field, field_validator

from pipeline.registry import register
from pipeline.stage import GlobalContext, GlobalStage, StageConfig, StageOutput, with_column
from stages._bucket.quantiles import ColumnQuantiles, Measure, job_quantiles, read_columns
from stages._bucket.scores import RANK_GRID, Scores, buckets_of, measure_for
from stages._shared.json_file import read_json, write_json_whole
from stages._shared.partitioned import shard_partitions

DECISIONS = "buckets.json"
TOKENS = "n_tokens"


class BucketConfig(StageConfig):
    columns: list[str] = Field(min_length=1, description="score columns (higher = better)")
    buckets: int = Field(20, ge=2, le=1000, description="how many quantile buckets")
    combine: Literal["max", "mean", "rank-average"] = Field(
        "max", description="how several columns make one bucket: max of their own buckets, "
        "bucket of their mean, or bucket of their mean rank")
    partitions: int | None = Field(None, gt=0, description="value ranges per column in the "
                                   "sort (default: one per shard, at most 1024); results do "
                                   "not depend on it")

    @field_validator("columns")
    @classmethod
    def _distinct(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError(f"columns are named twice: {value}")
        return value


@dataclass(frozen=True)
class _CountUnit:
    path: str
    columns: tuple[str, ...]
    measure: Measure
    edges: tuple[tuple[float, ...], ...]
    buckets: int


@register
class Bucket(GlobalStage):
    name = "bucket"
    config_model = BucketConfig
    description = "Job-wide quantile buckets of score columns (bucket: 0 = lowest)."

    def requires(self):
        return tuple(getattr(self.config, "columns", ()))

    def produces(self):
        return ("bucket",)

    def _combine(self) -> str:
        # one column: every way of combining is the column itself
        return self.config.combine if len(self.config.columns) > 1 else "max"

    def plan(self, ctx: GlobalContext) -> dict:
        cfg = self.config
        shards = sorted(ctx.shard_ids)
        paths = [ctx.shard_path(s) for s in shards]
        columns, combine = tuple(cfg.columns), self._combine()
        ranges = shard_partitions(cfg.partitions, len(shards))
        grids = None
        if combine == "rank-average":  # first each column's grid of quantiles to rank by
            found = job_quantiles(ctx, "rank_", paths, columns, Scores(columns), len(columns),
                                  np.linspace(0, 1, RANK_GRID + 1), ranges)
            grids = tuple(tuple(q.values) for q in found)
        measure = measure_for(columns, combine, grids)
        measured = len(columns) if combine == "max" else 1
        quantiles = job_quantiles(ctx, "", paths, columns, measure, measured,
                                  np.arange(1, cfg.buckets) / cfg.buckets, ranges)
        edges = tuple(tuple(q.values) for q in quantiles)
        write_json_whole(posixpath.join(ctx.work_dir, DECISIONS),
                         {"combine": combine, "grids": grids, "edges": edges})
        counted = ctx.map("count", _count, [
            _CountUnit(p, columns + (TOKENS,), measure, edges, cfg.buckets) for p in paths],
            keys=[f"{i:05d}" for i in range(len(paths))])
        return _stats(cfg, combine, quantiles, counted)

    def apply(self, table, shard_id, first_row, work_dir) -> StageOutput:
        measure, edges = self._decisions(work_dir)
        found = buckets_of(measure(table), edges)
        column = pa.array(found, pa.int32(), mask=found < 0)
        return StageOutput(with_column(table, "bucket", column))

    def _decisions(self, work_dir: str) -> tuple[Measure, list[list[float]]]:
        """The measure and edges the plan chose, read once per worker."""
        if getattr(self, "_cached", (None,))[0] != work_dir:
            found = read_json(posixpath.join(work_dir, DECISIONS))
            measure = measure_for(tuple(self.config.columns), found["combine"],
                                  found["grids"])
            self._cached = (work_dir, (measure, found["edges"]))
        return self._cached[1]


def _count(unit: _CountUnit) -> dict:
    """Documents and tokens per bucket in one shard (tokens: None without `n_tokens`)."""
    table = read_columns(unit.path, unit.columns)
    found = buckets_of(unit.measure(table), unit.edges)
    scored = found >= 0
    docs = np.bincount(found[scored], minlength=unit.buckets)
    tokens = None
    if TOKENS in table.column_names:
        counts = pc.fill_null(table[TOKENS], 0).to_numpy(zero_copy_only=False)
        tokens = np.bincount(found[scored], weights=counts[scored], minlength=unit.buckets)
        tokens = [int(t) for t in tokens]
    return {"docs": docs.tolist(), "tokens": tokens, "unscored": int((~scored).sum())}


def _stats(cfg: BucketConfig, combine: str, quantiles: list[ColumnQuantiles],
           counted: list[dict]) -> dict:
    """What the report shows: the edges, and per bucket its score range (per measured
    column: from its lower edge, or the smallest score, to its upper edge, or the largest),
    documents and tokens."""
    docs = np.sum([c["docs"] for c in counted], axis=0) if counted else np.zeros(cfg.buckets)
    with_tokens = counted and all(c["tokens"] is not None for c in counted)
    tokens = np.sum([c["tokens"] for c in counted], axis=0) if with_tokens else None
    names = list(cfg.columns) if combine == "max" else [
        f"{combine}({', '.join(cfg.columns)})"]
    rows = []
    for b in range(cfg.buckets):
        row = {"bucket": b, "docs": int(docs[b])}
        if tokens is not None:
            row["tokens"] = int(tokens[b])
        for name, q in zip(names, quantiles):
            if q.count:
                bounds = [q.minimum, *q.values, q.maximum]
                row[f"{name} from"], row[f"{name} to"] = bounds[b], bounds[b + 1]
        rows.append(row)
    return {"columns": list(cfg.columns), "combine": combine, "buckets": cfg.buckets,
            "scored": int(docs.sum()), "unscored": sum(c["unscored"] for c in counted),
            "edges": {name: q.values for name, q in zip(names, quantiles)},
            "per_bucket": rows}
