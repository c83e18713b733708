"""`mix`: the selection on 100k documents directly (the same functions the stage's phases
run: a histogram per shard, a threshold per group, copies per document), then the stage
through the real runner: after `bucket`, with weights and repeats by two columns; with shares
of a token budget; the report's figures against the kept rows; resume inside a phase."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.runner import run_job
from pipeline.spec import SpecError, load_spec
from stages._mix.selection import (ALL, copies_of, group_values, histogram, id_hashes,
                                   multipliers, threshold_of)
from tests.conftest import assert_accounting, leave_phase_half_done, write_parquet, write_spec

DOMAINS = {"web": 0.7, "wiki": 0.2, "code": 0.1}  # share of the documents


def documents(n: int, seed: int = 3) -> pa.Table:
    rng = np.random.default_rng(seed)
    domain = rng.choice(list(DOMAINS), size=n, p=list(DOMAINS.values()))
    return pa.table({"id": [f"doc-{i:06d}" for i in range(n)], "domain": domain,
                     "bucket": rng.integers(0, 4, n).astype(np.int32),
                     "n_tokens": np.maximum(1, rng.lognormal(6, 1.2, n)).astype(np.int64),
                     "score": rng.random(n)})


def select(table: pa.Table, by: list[str], seed: int, weights=None, repeats=None,
           shares=None, budget=None, shards: int = 4) -> tuple[np.ndarray, dict]:
    """Copies per document, decided as the stage does: histograms per shard (here: slices),
    a threshold per group from their sum, copies per document."""
    groups = group_values(table, by)
    hashes = id_hashes(table["id"], seed)
    tokens = table["n_tokens"].to_numpy()
    step = -(-table.num_rows // shards)
    bins = pa.concat_tables([histogram(groups[i:i + step], hashes[i:i + step],
                                       tokens[i:i + step]) for i in range(0, len(tokens), step)])
    totals = {}
    for g, t in zip(bins["group"].to_pylist(), bins["tokens"].to_pylist()):
        totals[g] = totals.get(g, 0) + t
    factor, asked, planned = multipliers(totals, weights or {}, repeats or {}, shares or {},
                                         budget)
    decided = {}
    for g, m in factor.items():
        mine = bins.filter(pa.compute.equal(bins["group"], g))
        rest = (m - np.floor(m)) * totals.get(g, 0)
        decided[g] = (int(np.floor(m)), threshold_of(mine["bin"].to_numpy(),
                                                     mine["tokens"].to_numpy(), rest))
    return copies_of(groups, hashes, decided), {"asked": asked, "planned": planned,
                                                "groups": groups.to_pylist()}


def tokens_by_group(groups: list[str], tokens: np.ndarray) -> dict[str, int]:
    out: dict[str, int] = {}
    for g, t in zip(groups, tokens.tolist()):
        out[g] = out.get(g, 0) + t
    return out


@pytest.fixture(scope="module")
def big() -> pa.Table:
    return documents(100_000)


@pytest.mark.parametrize("fraction", [0.4, 1.3])  # below the corpus, and above (repeats)
def test_shares_and_budget_on_100k_documents(big, fraction):
    tokens = big["n_tokens"].to_numpy()
    budget = int(tokens.sum() * fraction)
    shares = {"web": 0.5, "wiki": 0.3, "code": 0.2}
    copies, info = select(big, ["domain"], 0, shares=shares, budget=budget)
    after = tokens_by_group(info["groups"], copies * tokens)
    total = sum(after.values())
    assert abs(total - budget) <= 0.005 * budget
    for group, share in shares.items():
        assert abs(after[group] / total - share) <= 0.01 * share, (group, after[group] / total)
    if fraction > 1:  # code (10% of the tokens) must be taken 2.6 times: 2 or 3 copies
        code = np.array(info["groups"]) == "code"
        assert set(np.unique(copies[code])) == {2, 3}
    else:
        assert set(np.unique(copies)) == {0, 1}


def test_budget_scales_weights_and_repeats_on_100k_documents(big):
    tokens = big["n_tokens"].to_numpy()
    budget = int(tokens.sum() * 0.5)
    copies, info = select(big, ["domain"], 0, weights={"web": 0.2}, repeats={"code": 3},
                          budget=budget)
    after = tokens_by_group(info["groups"], copies * tokens)
    before = tokens_by_group(info["groups"], tokens)
    assert abs(sum(after.values()) - budget) <= 0.005 * budget
    # one factor for all: the proportions the weights and repeats set are kept
    planned = {"web": 0.2 * before["web"], "wiki": before["wiki"], "code": 3 * before["code"]}
    for group in planned:
        wanted = planned[group] / sum(planned.values())
        assert abs(after[group] / sum(after.values()) - wanted) <= 0.01 * wanted
        assert info["asked"][group] == pytest.approx(wanted)


def test_seed_decides_the_selection(big):
    weights = {"web": 0.5, "wiki": 0.5, "code": 0.5}
    first, _ = select(big, ["domain"], 0, weights=weights)
    again, _ = select(big, ["domain"], 0, weights=weights, shards=7)  # other shard cuts
    other, _ = select(big, ["domain"], 1, weights=weights)
    assert np.array_equal(first, again)
    assert 0.45 < np.mean(first != other) < 0.55  # two independent halves: half differ


def test_repeat_one_and_a_half_takes_half_the_tokens_twice(big):
    copies, info = select(big, ["domain"], 0, repeats={"web": 1.5})
    tokens = big["n_tokens"].to_numpy()
    web = np.array(info["groups"]) == "web"
    assert set(np.unique(copies[web])) == {1, 2}
    assert set(np.unique(copies[~web])) == {1}
    twice = tokens[web & (copies == 2)].sum() / tokens[web].sum()
    assert abs(twice - 0.5) <= 0.005
    assert abs(np.mean(copies[web] == 2) - 0.5) <= 0.02  # by documents, about half too


def test_threshold_bounds():
    bins, tokens = np.array([3, 1, 3]), np.array([10, 20, 30])
    assert threshold_of(bins, tokens, 0) == 0
    assert threshold_of(bins, tokens, 60) == ALL
    # 20 tokens in bin 1, then 40 in bin 3: 40 tokens = halfway through bin 3
    assert threshold_of(bins, tokens, 40) == (3 << 52) + (1 << 51)


# -- through the runner --------------------------------------------------------------------------
ROWS = 4000


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> tuple[Path, pa.Table]:
    folder = tmp_path_factory.mktemp("mix")
    table = documents(ROWS, seed=11).append_column("text", pa.array(["x"] * ROWS))
    rows = table.to_pylist()
    for part in range(2):
        write_parquet(folder / "in" / f"p{part}.parquet", rows[part::2], row_group_size=500)
    return folder, table


def spec(folder: Path, out: str, stages: str) -> Path:
    return write_spec(folder / f"{out}.yaml", f"""\
name: mix
input: {{format: parquet, paths: ["in/*.parquet"], shard_rows: 1000}}
output: {{path: {out}}}
stages:
{stages}""")


def outcome(out: Path) -> tuple[dict, dict]:
    kept = {r["id"]: r for r in pq.read_table(out / "data").to_pylist()}
    rejected = {r["id"]: (r["stage"], r["reason"])
                for f in (out / "rejected").glob("*.parquet") for r in pq.read_table(f).to_pylist()}
    return kept, rejected


def mix_stats(out: Path) -> dict:
    summary = json.loads((out / "report" / "summary.json").read_text())
    (entry,) = [g for g in summary["global_stages"] if g["stage"] == "mix"]
    return entry["stats"]


def test_weights_and_repeats_by_domain_and_bucket(corpus, ray_cluster):
    folder, table = corpus
    out = folder / "weighted"
    run_job(load_spec(spec(folder, out.name, """\
  - bucket: {columns: [score], buckets: 4}
  - mix:
      by: [domain, bucket]
      weights: {"web|0": 0, "web|1": 0.5}
      repeats: {"wiki|3": 2, "code|3": 1.5}
      seed: 5
""")), progress=False)
    kept, rejected = outcome(out)
    assert len(kept) + len(rejected) == ROWS
    assert set(rejected.values()) == {("mix", "mix:sampled_out")}
    groups = {i: f"{r['domain']}|{r['bucket']}" for i, r in kept.items()}
    assert not any(g == "web|0" for g in groups.values())
    assert {r["repeat"] for i, r in kept.items() if groups[i] == "wiki|3"} == {2}
    assert {r["repeat"] for i, r in kept.items() if groups[i] == "code|3"} == {1, 2}
    assert {r["repeat"] for i, r in kept.items() if groups[i] == "web|2"} == {1}
    # the report's after-figures are the kept rows'
    stats = mix_stats(out)
    for row in stats["per_group"]:
        mine = [r for i, r in kept.items() if groups[i] == row["group"]]
        assert row["docs_after"] == len(mine)
        assert row["copies_after"] == sum(r["repeat"] for r in mine)
        assert row["tokens_after"] == sum(r["repeat"] * r["n_tokens"] for r in mine)
    web1 = next(r for r in stats["per_group"] if r["group"] == "web|1")
    assert abs(web1["tokens_after"] / web1["tokens"] - 0.5) < 0.03
    assert_accounting(out)


def test_shares_of_a_budget_through_the_runner(corpus, ray_cluster):
    folder, table = corpus
    out = folder / "shares"
    budget = int(table["n_tokens"].to_numpy().sum() * 0.6)
    run_job(load_spec(spec(folder, out.name, f"""\
  - mix: {{by: [domain], shares: {{web: 0.4, wiki: 0.35, code: 0.25}},
           budget_tokens: {budget}, seed: 2}}
""")), progress=False)
    kept, rejected = outcome(out)
    copies, _ = select(table, ["domain"], 2, shares={"web": 0.4, "wiki": 0.35, "code": 0.25},
                       budget=budget)
    ids = table["id"].to_pylist()
    # the stage decided exactly what the selection functions decide on the same documents
    assert {i: kept[i]["repeat"] if i in kept else 0 for i in ids} == dict(zip(ids,
                                                                            copies.tolist()))
    stats = mix_stats(out)
    assert stats["tokens_requested"] == budget and stats["counted"] == "tokens"
    assert abs(stats["tokens_after"] - budget) <= 0.005 * budget
    for row in stats["per_group"]:
        assert abs(row["share_achieved"] - row["share_requested"]) <= 0.01 * row[
            "share_requested"]
    page = (out / "report" / "index.html").read_text()
    assert "<th>share_achieved</th>" in page
    assert_accounting(out)


def test_resume_inside_the_tally_phase(corpus, ray_cluster):
    folder, _ = corpus
    stages = "  - mix: {by: [domain, bucket], weights: {web|2: 0.3, code|1: 0.7}, partitions: 3}\n"
    run_job(load_spec(spec(folder, "clean", stages)), progress=False)
    job = load_spec(spec(folder, "resumed", stages))
    out = folder / "resumed"
    run_job(job, progress=False, keep_work=True)
    phases = leave_phase_half_done(out, "tally")
    counted = {p.name: p.read_text() for p in (phases / "count").glob("*.json")}
    run_job(job, progress=False, keep_work=True)
    assert {p.name: p.read_text() for p in (phases / "count").glob("*.json")} == counted
    assert outcome(out) == outcome(folder / "clean")
    assert_accounting(out)


def test_validation(corpus):
    folder, _ = corpus
    no_tokens = write_spec(folder / "nt.yaml", """\
name: mix
input: {format: jsonl, paths: ["j/*.jsonl"]}
output: {path: nt}
stages:
  - mix: {by: [url], shares: {a: 1}}
""")
    (folder / "j").mkdir(exist_ok=True)
    (folder / "j" / "a.jsonl").write_text('{"text": "x"}\n')
    with pytest.raises(SpecError, match="needs column 'n_tokens'.*'tokenize'"):
        load_spec(no_tokens)
    for options, message in (
            ("{by: [domain], shares: {web: 0.5, wiki: 0.4}}", "add up to 1"),
            ("{by: [domain], weights: {web: 1.5}}", "less than or equal to 1"),
            ("{by: [domain], repeats: {web: 0.5}}", "greater than or equal to 1"),
            ("{by: [domain], weights: {web: 0.5}, repeats: {web: 2}}", "both a weight"),
            ("{by: [domain], weights: {web: 0.5}, shares: {web: 1}}", "drop weights"),
            ("{by: [lang]}", "needs column 'lang'")):
        with pytest.raises(SpecError, match=message):
            load_spec(spec(folder, "bad", f"  - mix: {options}\n"))


def test_after_tokenize_and_bucket(tmp_path, ray_cluster):
    """The chain the mixture recipe runs: `tokenize` counts (a word-level tokenizer: one
    token per word), `bucket` cuts a score, `mix` takes shares of a budget by bucket (YAML
    number keys name the buckets)."""
    from tokenizers import Tokenizer, models, pre_tokenizers

    from tests.conftest import WORDS, make_text

    words = Tokenizer(models.WordLevel({w: i for i, w in enumerate(["[UNK]", *WORDS])},
                                       unk_token="[UNK]"))
    words.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    words.save(str(tmp_path / "tokenizer.json"))
    rng = np.random.default_rng(4)
    rows = [{"id": f"t{i:04d}", "text": make_text(i, int(rng.integers(5, 400))),
             "score": float(rng.random())} for i in range(800)]
    write_parquet(tmp_path / "in" / "a.parquet", rows, row_group_size=200)
    budget = sum(len(r["text"].split()) for r in rows) // 2
    run_job(load_spec(spec(tmp_path, "chain", f"""\
  - tokenize: {{tokenizer: tokenizer.json}}
  - bucket: {{columns: [score], buckets: 4}}
  - mix: {{by: [bucket], shares: {{3: 0.4, 2: 0.3, 1: 0.2, 0: 0.1}}, budget_tokens: {budget}}}
""")), progress=False)
    kept, rejected = outcome(tmp_path / "chain")
    assert all(r["n_tokens"] == len(r["text"].split()) for r in kept.values())
    assert set(rejected.values()) == {("mix", "mix:sampled_out")}
    after = {b: sum(r["repeat"] * r["n_tokens"] for r in kept.values() if r["bucket"] == b)
             for b in range(4)}
    total = sum(after.values())
    assert abs(total - budget) <= 0.01 * budget  # 800 documents: one is ~0.3% of a bucket
    for bucket, share in {3: 0.4, 2: 0.3, 1: 0.2, 0: 0.1}.items():
        assert abs(after[bucket] / total - share) <= 0.02 * share
    assert_accounting(tmp_path / "chain")
