"""How `bucket` reads a document's scores and turns them into a bucket (docs/stages_mixture.md,
"bucket").

A measure maps a table to a (rows, m) float64 matrix: the quantiles are taken of each of its
m columns. A row lacking any score column's value (null or NaN) is NaN throughout: it is in
no quantile and gets no bucket.
- `Scores`: the columns themselves (`combine: max`, and the first round of `rank-average`);
  a document's bucket is the highest of its columns' own buckets (Nemotron-CC's ensemble);
- `MeanScore`: the mean of the columns (scores on one scale);
- `RankAverage`: the mean of the columns' ranks, each read off `RANK_GRID + 1` exact
  quantiles of its column (the share of the column's documents scoring at or below the
  value, to within 1 / RANK_GRID).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

RANK_GRID = 1000


def score_matrix(table: pa.Table, columns: Sequence[str]) -> np.ndarray:
    """(rows, columns) float64; a row with any value missing (null or NaN) is NaN throughout."""
    matrix = np.empty((table.num_rows, len(columns)), np.float64)
    for c, name in enumerate(columns):
        values = pc.cast(table[name], pa.float64())
        matrix[:, c] = pc.fill_null(values, float("nan")).to_numpy()
    matrix[np.isnan(matrix).any(axis=1)] = np.nan
    return matrix


@dataclass(frozen=True)
class Scores:
    columns: tuple[str, ...]

    def __call__(self, table: pa.Table) -> np.ndarray:
        return score_matrix(table, self.columns)


@dataclass(frozen=True)
class MeanScore:
    columns: tuple[str, ...]

    def __call__(self, table: pa.Table) -> np.ndarray:
        return score_matrix(table, self.columns).mean(axis=1, keepdims=True)


@dataclass(frozen=True)
class RankAverage:
    columns: tuple[str, ...]
    grids: tuple[tuple[float, ...], ...]  # per column, its quantiles at 0, 1/G, ..., 1

    def __call__(self, table: pa.Table) -> np.ndarray:
        return rank_average(score_matrix(table, self.columns), self.grids)


def measure_for(columns: tuple[str, ...], combine: str,
                grids: Sequence[Sequence[float]] | None) -> Scores | MeanScore | RankAverage:
    """The measure `combine` cuts; `grids`: rank-average's quantile grids per column (empty
    when no document has every score: then nothing is ranked and every bucket is null)."""
    if combine == "max":
        return Scores(columns)
    if combine == "rank-average" and grids and grids[0]:
        return RankAverage(columns, tuple(tuple(g) for g in grids))
    return MeanScore(columns)


def rank_average(matrix: np.ndarray, grids: Sequence[Sequence[float]]) -> np.ndarray:
    """Mean over columns of each value's rank in its column's grid (NaN rows stay NaN)."""
    ranks = np.column_stack([
        np.searchsorted(np.asarray(grid), matrix[:, c], side="right") / len(grid)
        for c, grid in enumerate(grids)]) if grids else np.zeros((len(matrix), 0))
    ranks[np.isnan(matrix)] = np.nan
    return ranks.mean(axis=1, keepdims=True)


def buckets_of(measured: np.ndarray, edges: Sequence[Sequence[float]]) -> np.ndarray:
    """Each row's bucket: per measured column the number of its edges at or below the value
    (0 = below the first edge), the highest over columns; -1 where the row has no value."""
    found = np.column_stack([np.searchsorted(np.asarray(e, np.float64), measured[:, c],
                                             side="right") for c, e in enumerate(edges)])
    found = found.max(axis=1)
    found[np.isnan(measured).any(axis=1)] = -1
    return found
