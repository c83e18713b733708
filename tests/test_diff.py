"""`pipeline diff`: two runs of the common_crawl recipe that differ in one threshold
(`langid.min_score` 0.65 -> 0.95) show their funnels side by side and exactly the documents
one kept and the other did not, with the stage and reason that decided."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.report import build_summary
from tests.browse_runs import RECIPE, cli, cli_json, rows, run_spec, run_variant
from tests.conftest import write_parquet


@pytest.fixture(scope="module")
def runs(tmp_path_factory, ray_cluster) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("diff")
    a = run_spec(RECIPE, folder / "a")
    return a, run_variant(a / "spec.yaml", folder / "b", {"langid": {"min_score": 0.95}})


def fates(out: Path) -> dict[str, tuple]:
    """id -> ("kept",) or ("rejected", stage, reason), read plainly."""
    found = {r["id"]: ("kept",) for r in rows(out, "data")}
    found |= {r["id"]: ("rejected", r["stage"], r["reason"]) for r in rows(out, "rejected")}
    return found


def test_funnels_side_by_side_are_each_runs_funnel(runs, capsys):
    a, b = runs
    result = cli_json(capsys, "diff", a, b)
    for run, out in (("a", a), ("b", b)):
        assert [(f["stage"], f[run]) for f in result["funnel"]] == [
            (f["stage"], {k: f[k] for k in ("in", "kept", "rejected")})
            for f in build_summary(str(out))["funnel"]]
    assert result["kept"] == {"a": 25, "b": 22}


def test_diff_shows_exactly_the_documents_the_changed_threshold_moved(runs, capsys):
    a, b = runs
    result = cli_json(capsys, "diff", a, b, "-n", "100")
    in_a, in_b = fates(a), fates(b)
    kept_only_in_a = {i for i, f in in_a.items() if f == ("kept",) and in_b[i] != ("kept",)}
    kept_only_in_b = {i for i, f in in_b.items() if f == ("kept",) and in_a[i] != ("kept",)}
    moved = {i for i, f in in_a.items() if f[0] == in_b[i][0] == "rejected" and
             (f[1], f[2].split("=")[0]) != (in_b[i][1], in_b[i][2].split("=")[0])}
    # what one changed threshold means: the documents kept by A that langid scored below 0.95
    low = {r["id"] for r in rows(a, "data", "lang_score < 0.95")}
    assert kept_only_in_a == low and len(low) == 3 and not kept_only_in_b and moved
    for kind, ids in (("kept_only_in_a", kept_only_in_a), ("kept_only_in_b", kept_only_in_b),
                      ("rejected_differently", moved)):
        found = result[kind]
        assert found["docs"] == len(ids) and {d["id"] for d in found["sample"]} == ids
        for doc in found["sample"]:
            for run, fate in (("a", in_a[doc["id"]]), ("b", in_b[doc["id"]])):
                assert doc[run] == ({"kept": True} if fate == ("kept",) else
                                    {"kept": False, "stage": fate[1], "reason": fate[2]})
    assert all(d["b"]["stage"] == "langid" and d["b"]["reason"] == "lang_low_score"
               for d in result["kept_only_in_a"]["sample"] + result["rejected_differently"]
               ["sample"])
    texts = {r["id"]: r["text"] for r in rows(a, "data")}
    assert all(d["text"] == texts[d["id"]] for d in result["kept_only_in_a"]["sample"])


def test_a_run_against_itself_differs_nowhere(runs, capsys):
    a, _ = runs
    result = cli_json(capsys, "diff", a, a)
    assert all(result[kind] == {"docs": 0, "sample": []} for kind in
               ("kept_only_in_a", "kept_only_in_b", "rejected_differently"))


def test_samples_are_bounded_and_follow_the_seed(runs, capsys):
    a, b = runs
    picks = [[d["id"] for d in cli_json(capsys, "diff", a, b, "-n", "2", "--seed", str(seed))
              ["rejected_differently"]["sample"]] for seed in (4, 4)]
    assert len(picks[0]) == 2 and picks[0] == picks[1]


def test_documents_missing_from_one_run_are_absent(tmp_path, capsys):
    outputs = []
    for name, kept in (("a", ["x", "y"]), ("b", ["y", "z"])):
        out = tmp_path / name
        (out / "manifests").mkdir(parents=True)
        (out / "manifests" / "part-00000.json").write_text(json.dumps(
            {"shard": "00000", "stages": [], "rows_kept": len(kept)}))
        write_parquet(out / "data" / "part-00000.parquet",
                      [{"id": i, "text": f"text of {i}"} for i in kept])
        outputs.append(out)
    result = cli_json(capsys, "diff", *outputs)
    assert [(d["id"], d["a"], d["b"], d["text"]) for d in result["kept_only_in_a"]["sample"]] == \
        [("x", {"kept": True}, {"kept": None, "absent": True}, "text of x")]
    assert [(d["id"], d["a"]) for d in result["kept_only_in_b"]["sample"]] == \
        [("z", {"kept": None, "absent": True})]


def test_text_view_names_the_stage_and_reason_that_decided(runs, capsys):
    a, b = runs
    code, out, _ = cli(capsys, "diff", a, b, "-n", "1")
    assert code == 0
    assert "langid                 45       41        4   |       45       31       14" in out
    assert "kept by A only: 3" in out and "A kept; B langid: lang_low_score" in out
    assert "rejected by both, at another stage or for another reason: 7" in out
