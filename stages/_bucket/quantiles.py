"""Exact job-wide quantiles of one or more score columns, as a distributed sample sort.

Three phases over the shards (docs/stages_mixture.md, "bucket"), nothing gathered on the
driver but counts and a few values per shard:
1. `sample` (per shard): each column's count and its values at `SAMPLES` evenly spaced
   ranks of the shard (an order-statistics sample);
2. `partition` (per shard): values written by value range (the driver picks the ranges from
   the samples so that each holds about as many values), one partition per (column, range),
   with the count per partition;
3. `select` (per partition that holds a wanted rank): sort the partition and read the values
   at the wanted ranks. The driver knows each partition's place in the column's sorted
   order from the counts, so every rank it wants is read from exactly one partition.

The order statistics found are exact, and `numpy_linear` interpolates between them as
`numpy.quantile`'s default (`linear`) method does, so the edges equal numpy's on the same
scores. Memory per unit: one shard's score columns, or one partition's values.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from typing import Callable, Sequence

import fsspec
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.stage import GlobalContext
from stages._shared.partitioned import (Source, Written, holders, read_partition, run_phase,
                                        unit_file, write_partitioned)

SAMPLES = 256  # order statistics each shard reports per column to place the ranges
VALUES = pa.schema([("part", pa.int32()), ("value", pa.float64())])

# A table's scores as a (rows, columns) float64 matrix, NaN where a row has none; must be
# a picklable object (a frozen dataclass), since every unit carries it.
Measure = Callable[[pa.Table], np.ndarray]


@dataclass(frozen=True)
class ColumnQuantiles:
    """One measured column over the job: how many rows have a value, the smallest and
    largest, and the value at each asked probability (empty when no row has a value)."""

    count: int
    minimum: float | None
    maximum: float | None
    values: list[float]


@dataclass(frozen=True)
class _SampleUnit:
    path: str
    columns: tuple[str, ...]  # what to read from the shard
    measure: Measure


@dataclass(frozen=True)
class _PartitionUnit:
    path: str
    columns: tuple[str, ...]
    measure: Measure
    splitters: tuple[tuple[float, ...], ...]  # per measured column: the ranges' bounds
    ranges: int  # value ranges per measured column
    out: str


@dataclass(frozen=True)
class _Counted(Written):
    counts: list[int]  # rows written per part, in the order of `parts`


@dataclass(frozen=True)
class _SelectUnit:
    part: int
    source: Source
    ranks: tuple[int, ...]  # ranks inside the partition, 0 = its smallest value


def read_columns(path: str, columns: Sequence[str]) -> pa.Table:
    """The named columns of a shard's Parquet file; absent ones are left out."""
    with fsspec.open(path, "rb") as f:
        present = set(pq.read_schema(f).names)
        f.seek(0)
        return pq.read_table(f, columns=[c for c in columns if c in present])


def job_quantiles(ctx: GlobalContext, prefix: str, shard_paths: Sequence[str],
                  columns: Sequence[str], measure: Measure, measured: int,
                  probabilities: np.ndarray, ranges: int) -> list[ColumnQuantiles]:
    """Exact quantiles (numpy's `linear` method) at `probabilities` of each of the `measured`
    columns `measure` makes from the shards' `columns`, over the rows where it is not NaN.
    `prefix` names the phases (a stage may run this more than once); `ranges` is the number
    of value ranges per measured column."""
    columns = tuple(columns)
    keys = [f"{i:05d}" for i in range(len(shard_paths))]
    samples = ctx.map(f"{prefix}sample", _sample, [
        _SampleUnit(p, columns, measure) for p in shard_paths], keys=keys)
    splitters = tuple(_splitters([s["counts"][c] for s in samples],
                                 [s["samples"][c] for s in samples], ranges)
                      for c in range(measured))
    folder = posixpath.join(ctx.work_dir, f"{prefix}values")
    counted = run_phase(ctx, f"{prefix}partition", _partition, [
        _PartitionUnit(p, columns, measure, splitters, ranges, unit_file(folder, i))
        for i, p in enumerate(shard_paths)], keys, _Counted)
    parts = measured * ranges
    per_part = np.zeros(parts, np.int64)
    for result in counted:
        np.add.at(per_part, np.array(result.parts, np.int64), np.array(result.counts, np.int64))
    sources = holders(counted, folder, parts)

    wanted: dict[int, set[int]] = {}  # part -> local ranks
    plans = []
    for c in range(measured):
        sizes = per_part[c * ranges:(c + 1) * ranges]
        n = int(sizes.sum())
        if n == 0:
            plans.append(None)
            continue
        low, high, gamma = order_statistics(n, probabilities)
        ranks = np.unique(np.concatenate([low, high, [0, n - 1]]))
        ends = np.cumsum(sizes)
        places = {}
        for rank in ranks.tolist():
            local_part = int(np.searchsorted(ends, rank, side="right"))
            local = rank - int(ends[local_part] - sizes[local_part])
            part = c * ranges + local_part
            wanted.setdefault(part, set()).add(local)
            places[rank] = (part, local)
        plans.append((n, low, high, gamma, places))
    chosen = sorted(wanted)
    selected = ctx.map(f"{prefix}select", _select, [
        _SelectUnit(p, sources[p], tuple(sorted(wanted[p]))) for p in chosen],
        keys=[f"{p:05d}" for p in chosen])
    found = {(p, r): v for p, result in zip(chosen, selected)
             for r, v in zip(sorted(wanted[p]), result)}

    out = []
    for plan in plans:
        if plan is None:
            out.append(ColumnQuantiles(0, None, None, []))
            continue
        n, low, high, gamma, places = plan
        value = lambda rank: found[places[int(rank)]]  # noqa: E731
        a = np.array([value(r) for r in low], np.float64)
        b = np.array([value(r) for r in high], np.float64)
        out.append(ColumnQuantiles(n, value(0), value(n - 1),
                                   numpy_linear(a, b, gamma).tolist()))
    return out


# -- numpy's `linear` method, from the order statistics ----------------------------------------
def order_statistics(n: int, probabilities: np.ndarray) -> tuple[np.ndarray, np.ndarray,
                                                                   np.ndarray]:
    """For each probability: the two ranks (0-based) numpy's `linear` method interpolates
    between among `n` sorted values, and the weight of the second (numpy's own steps)."""
    virtual = (n - 1) * np.asarray(probabilities, np.float64)
    low = np.floor(virtual)
    high = low + 1
    above = virtual >= n - 1
    low[above] = high[above] = n - 1
    gamma = virtual - low
    return low.astype(np.int64), high.astype(np.int64), gamma


def numpy_linear(a: np.ndarray, b: np.ndarray, gamma: np.ndarray) -> np.ndarray:
    """numpy's `_lerp`, operation for operation, so that results match it bit for bit."""
    diff = b - a
    out = np.add(a, diff * gamma)
    np.subtract(b, diff * (1 - gamma), out=out, where=gamma >= 0.5)
    return out


# -- phases --------------------------------------------------------------------------------------
def _measured(unit) -> np.ndarray:
    return unit.measure(read_columns(unit.path, unit.columns))


def _sample(unit: _SampleUnit) -> dict:
    matrix = _measured(unit)
    counts, samples = [], []
    for column in matrix.T:
        values = np.sort(column[~np.isnan(column)])
        counts.append(len(values))
        at = np.unique(np.linspace(0, len(values) - 1, min(SAMPLES, len(values))).round()
                       .astype(np.int64))
        samples.append(values[at].tolist())
    return {"counts": counts, "samples": samples}


def _splitters(counts: list[int], samples: list[list[float]], ranges: int) -> tuple[float, ...]:
    """`ranges - 1` bounds such that each range holds about as many values: each shard's
    sample point stands for count / len(sample) of its values."""
    values = np.concatenate([np.asarray(s, np.float64) for s in samples] + [np.zeros(0)])
    weights = np.concatenate([np.full(len(s), n / len(s)) for n, s in zip(counts, samples)
                              if len(s)] + [np.zeros(0)])
    if ranges <= 1 or not len(values):
        return ()
    order = np.argsort(values, kind="stable")
    cumulative = np.cumsum(weights[order])
    targets = cumulative[-1] * np.arange(1, ranges) / ranges
    at = np.minimum(np.searchsorted(cumulative, targets), len(values) - 1)
    return tuple(values[order][at].tolist())


def _partition(unit: _PartitionUnit) -> _Counted:
    matrix = _measured(unit)
    parts, values = [], []
    for c, column in enumerate(matrix.T):
        present = column[~np.isnan(column)]
        local = np.searchsorted(np.asarray(unit.splitters[c], np.float64), present,
                                side="right")
        parts.append(local.astype(np.int32) + c * unit.ranges)
        values.append(present)
    part = np.concatenate(parts + [np.zeros(0, np.int32)])
    table = pa.table({"part": pa.array(part, pa.int32()),
                      "value": pa.array(np.concatenate(values + [np.zeros(0)]), pa.float64())})
    written = write_partitioned(table, "part", unit.out)
    counts = np.bincount(part, minlength=max(written, default=0) + 1)
    return _Counted(parts=written, counts=[int(counts[p]) for p in written])


def _select(unit: _SelectUnit) -> list[float]:
    values = read_partition(unit.source, "part", unit.part, ["value"], VALUES)["value"]
    ordered = np.sort(values.to_numpy())
    return [float(ordered[r]) for r in unit.ranks]
