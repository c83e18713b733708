"""`bucket`: job-wide quantile buckets through the real runner, checked against numpy on the
same scores: the edges equal `numpy.quantile`'s, every document's bucket equals the one
numpy's edges give, for each way of combining columns; the report's per-bucket counts; resume
inside a phase."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from pipeline.runner import run_job
from pipeline.spec import SpecError, load_spec
from stages._bucket.scores import RANK_GRID
from tests.conftest import assert_accounting, leave_phase_half_done, write_parquet, write_spec

ROWS = 3000
EDGES = np.arange(1, 20) / 20


def corpus(folder: Path) -> list[dict]:
    """Three Parquet files of small row groups (so several shards each): two scores, one
    with many ties (two decimals) and a few nulls, one with two nulls (one on a row whose
    other score is null too); token counts."""
    rng = random.Random(7)
    rows = []
    for i in range(ROWS):
        edu = None if i % 97 == 0 else round(rng.betavariate(2, 5) * 5, 2)
        dclm = None if i in (5, 97 * 3) else rng.gauss(0, 1)
        rows.append({"id": f"d{i:05d}", "text": "x", "edu_score": edu, "dclm_score": dclm,
                     "n_tokens": rng.randint(1, 900)})
    for part in range(3):
        write_parquet(folder / "in" / f"p{part}.parquet", rows[part::3], row_group_size=250)
    return rows


def spec(folder: Path, out: str, options: str) -> Path:
    return write_spec(folder / f"{out}.yaml", f"""\
name: bucket
input: {{format: parquet, paths: ["in/*.parquet"], shard_rows: 500}}
output: {{path: {out}}}
stages:
  - bucket: {options}
""")


@pytest.fixture(scope="module")
def rows(tmp_path_factory) -> tuple[Path, list[dict]]:
    folder = tmp_path_factory.mktemp("bucket")
    return folder, corpus(folder)


def kept(out: Path) -> dict[str, int | None]:
    table = pq.read_table(out / "data")
    return dict(zip(table["id"].to_pylist(), table["bucket"].to_pylist()))


def stats(out: Path) -> dict:
    (manifest,) = (out / "manifests").glob("global-*-bucket.json")
    return json.loads(manifest.read_text())["stats"]


def scores(rows: list[dict], columns: list[str]) -> tuple[list[str], np.ndarray]:
    """The ids and score matrix of the rows with every column (not null, not NaN)."""
    ids, matrix = [], []
    for row in rows:
        values = [row[c] for c in columns]
        if all(v is not None for v in values):
            ids.append(row["id"])
            matrix.append(values)
    return ids, np.array(matrix, np.float64)


def expected(rows, ids, measured: np.ndarray) -> dict[str, int | None]:
    """Buckets from numpy's edges on each measured column, the highest over columns."""
    edges = [np.quantile(measured[:, c], EDGES) for c in range(measured.shape[1])]
    found = np.max([np.searchsorted(e, measured[:, c], side="right")
                    for c, e in enumerate(edges)], axis=0)
    out = {r["id"]: None for r in rows}
    out.update(zip(ids, found.tolist()))
    return out


@pytest.mark.parametrize("partitions", [1, 5])
def test_one_column_edges_are_numpys(rows, ray_cluster, partitions):
    folder, data = rows
    out = folder / f"one-{partitions}"
    run_job(load_spec(spec(folder, out.name, "{columns: [edu_score], partitions: "
                           f"{partitions}}}")), progress=False)
    ids, matrix = scores(data, ["edu_score"])
    found = stats(out)
    assert found["edges"]["edu_score"] == np.quantile(matrix[:, 0], EDGES).tolist()
    buckets = kept(out)
    assert buckets == expected(data, ids, matrix)
    assert sum(b is None for b in buckets.values()) == ROWS - len(ids) > 0  # nulls: no bucket
    sizes = np.bincount([b for b in buckets.values() if b is not None], minlength=20)
    assert sizes.sum() == len(ids) and set(range(20)) == set(np.flatnonzero(sizes))
    assert_accounting(out)


def test_combine_max_mean_rank_average(rows, ray_cluster):
    folder, data = rows
    columns = ["edu_score", "dclm_score"]
    ids, matrix = scores(data, columns)
    for combine in ("max", "mean", "rank-average"):
        out = folder / f"combine-{combine}"
        run_job(load_spec(spec(folder, out.name, f"{{columns: {columns}, combine: {combine}}}")),
                progress=False)
        if combine == "max":  # each column its own edges; the highest bucket of the two
            measured = matrix
        elif combine == "mean":
            measured = matrix.mean(axis=1, keepdims=True)
        else:  # each column's rank off 1001 of its quantiles, averaged
            ranks = [np.searchsorted(np.quantile(matrix[:, c], np.linspace(0, 1, RANK_GRID + 1)),
                                     matrix[:, c], side="right") / (RANK_GRID + 1)
                     for c in range(2)]
            measured = np.mean(ranks, axis=0)[:, None]
        assert kept(out) == expected(data, ids, measured), combine
        names = columns if combine == "max" else [f"{combine}(edu_score, dclm_score)"]
        assert stats(out)["edges"] == {name: np.quantile(measured[:, c], EDGES).tolist()
                                       for c, name in enumerate(names)}
    # the three are different cuts of the same documents
    assert kept(folder / "combine-max") != kept(folder / "combine-mean")
    assert kept(folder / "combine-mean") != kept(folder / "combine-rank-average")


def test_report_shows_range_documents_and_tokens_per_bucket(rows, ray_cluster):
    folder, data = rows
    out = folder / "one-1"  # written by the first test (module order)
    if not out.exists():
        run_job(load_spec(spec(folder, out.name, "{columns: [edu_score], partitions: 1}")),
                progress=False)
    table = pq.read_table(out / "data").to_pylist()
    summary = json.loads((out / "report" / "summary.json").read_text())
    (entry,) = [g for g in summary["global_stages"] if g["stage"] == "bucket"]
    per_bucket = entry["stats"]["per_bucket"]
    for row in per_bucket:
        mine = [r for r in table if r["bucket"] == row["bucket"]]
        assert row["docs"] == len(mine)
        assert row["tokens"] == sum(r["n_tokens"] for r in mine)
        assert row["edu_score from"] <= min(r["edu_score"] for r in mine)
        assert max(r["edu_score"] for r in mine) <= row["edu_score to"]
    assert entry["stats"]["unscored"] == sum(r["bucket"] is None for r in table)
    page = (out / "report" / "index.html").read_text()
    assert "<th>edu_score from</th>" in page and page.count("<tr><td>") >= 20


def test_resume_inside_select_phase(rows, ray_cluster):
    folder, data = rows
    out = folder / "resumed"
    job = load_spec(spec(folder, out.name, "{columns: [edu_score, dclm_score], "
                         "combine: rank-average, partitions: 4}"))
    run_job(job, progress=False, keep_work=True)
    clean = kept(out)
    phases = leave_phase_half_done(out, "select")
    sampled = {p.name: p.read_text() for p in (phases / "rank_select").glob("*.json")}
    assert len(list((phases / "select").glob("*.json"))) == 1
    run_job(job, progress=False, keep_work=True)
    assert {p.name: p.read_text() for p in (phases / "rank_select").glob("*.json")} == sampled
    assert kept(out) == clean
    assert_accounting(out)


def test_validation_names_the_problem(rows):
    folder, _ = rows
    with pytest.raises(SpecError, match="needs column 'quality_score'"):
        load_spec(spec(folder, "bad", "{columns: [quality_score]}"))
    with pytest.raises(SpecError, match="named twice"):
        load_spec(spec(folder, "bad", "{columns: [edu_score, edu_score]}"))
    with pytest.raises(SpecError, match="combine"):
        load_spec(spec(folder, "bad", "{columns: [edu_score], combine: median}"))


def test_no_document_scored_gives_null_buckets(tmp_path, ray_cluster):
    write_parquet(tmp_path / "in" / "a.parquet",
                  [{"id": f"n{i}", "text": "x", "a": None if i % 2 else 0.5,
                    "b": 0.5 if i % 2 else None} for i in range(40)])
    out = tmp_path / "none"
    run_job(load_spec(spec(tmp_path, out.name, "{columns: [a, b], combine: rank-average}")),
            progress=False)
    assert set(kept(out).values()) == {None} and len(kept(out)) == 40
    found = stats(out)
    assert (found["scored"], found["unscored"]) == (0, 40)
    assert all(row["docs"] == 0 for row in found["per_bucket"])
