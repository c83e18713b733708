"""`pipeline whatif`: the figures it works out from a run's columns equal those of a real
re-run with the changed options, on the same input: a job with `quality` and `classify` in
annotate mode, `langid` and `length_filter` (every family of pipeline/browse/thresholds.py),
and the common_crawl recipe, whose dedup steps come after the change. What the columns cannot
tell is unsure, and what cannot be evaluated at all is an error naming the option."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pyarrow as pa
import pytest

from pipeline.report import build_summary
from stages._classify.train import train_classifier
from stages._shared.words import count_words
from tests.browse_runs import RECIPE, cli, cli_json, rows, run_spec, run_variant
from tests.conftest import write_jsonl, write_parquet, write_spec
from tests.test_classify import good_document, spam_document

SUBJECTS = ["the council", "our library", "the old museum", "a local farmer", "the orchestra",
            "the river authority", "a group of students", "the harbour master"]
VERBS = ["opened", "described", "repaired", "measured", "planned", "discussed", "visited"]
OBJECTS = ["the new bridge", "a small garden", "the winter timetable", "the wheat harvest",
           "an exhibition of maps", "the ferry service", "the solar panels"]
GERMAN = ("Die Stadtbibliothek bleibt am Montag geschlossen, weil die Heizung repariert "
          "wird und die Mitarbeiter eine Schulung besuchen. ")


def english(rng: random.Random) -> str:
    sentences = [f"{rng.choice(SUBJECTS).capitalize()} {rng.choice(VERBS)} "
                 f"{rng.choice(OBJECTS)} in the spring, and it was a "
                 f"{rng.choice(['good', 'long', 'quiet'])} day."
                 for _ in range(rng.randint(2, 14))]
    if rng.random() < 0.35:  # hashtags: gopher's hash ratio
        sentences.insert(1, " ".join(f"#{rng.choice(['news', 'town', 'map'])}"
                                     for _ in range(rng.randint(1, 12))))
    if rng.random() < 0.1:
        sentences.append("Lorem ipsum dolor sit amet.")
    return "\n".join(sentences)


@pytest.fixture(scope="module")
def annotated(tmp_path_factory, ray_cluster) -> Path:
    """langid -> quality (annotate) -> classify (annotate) -> length_filter, run once."""
    folder = tmp_path_factory.mktemp("whatif")
    rng = random.Random(22)
    write_parquet(folder / "good.parquet", [{"text": good_document(rng)} for _ in range(200)])
    write_jsonl(folder / "spam.jsonl", [{"text": spam_document(rng)} for _ in range(200)])
    train_classifier([str(folder / "good.parquet")], [str(folder / "spam.jsonl")],
                     str(folder / "hq.bin"), dim=16, bucket=20_000, holdout=0.2)
    docs = [english(rng) for _ in range(70)] + [spam_document(rng) for _ in range(12)] + \
        [GERMAN * rng.randint(1, 6) for _ in range(8)] + ["", "   \n "]
    rng.shuffle(docs)
    write_jsonl(folder / "docs.jsonl", [{"id": f"doc{i:03d}", "text": t}
                                        for i, t in enumerate(docs)])
    spec = write_spec(folder / "job.yaml", """
name: whatif
input: {format: jsonl, paths: [docs.jsonl]}
output: {path: out}
stages:
  - langid: {keep: [en], min_score: 0.5}
  - quality: {mode: annotate, rules: [gopher_quality, c4]}
  - classify: {model: hq.bin, mode: annotate}
  - length_filter: {min_words: 40}
""")
    return run_spec(spec, folder / "out")


@pytest.fixture(scope="module")
def recipe(tmp_path_factory, ray_cluster) -> Path:
    return run_spec(RECIPE, tmp_path_factory.mktemp("whatif-recipe") / "out")


def assert_same_as_rerun(capsys, base: Path, rerun: Path, settings: list[str]) -> dict:
    """The what-if on `base` with `settings` says what `rerun` did, document by document."""
    args = ["whatif", base, "-n", "1000"] + [a for s in settings for a in ("--set", s)]
    result = cli_json(capsys, *args)
    funnel = build_summary(str(rerun))["funnel"]
    assert [(f["stage"], f["after"]["in"], f["after"]["kept"], f["after"]["rejected"])
            for f in result["funnel"]] == \
        [(f["stage"], f["in"], f["kept"], f["rejected"]) for f in funnel]
    assert result["kept"]["after"]["unsure"] == 0 and not result["changed"]["unsure"]["docs"]
    kept_before = {r["id"] for r in rows(base, "data")}
    kept_after = {r["id"]: r for r in rows(rerun, "data")}
    rejected_after = {r["id"]: r for r in rows(rerun, "rejected")}
    changed = result["changed"]
    assert {d["id"] for d in changed["now_rejected"]["sample"]} == kept_before - set(kept_after)
    assert {d["id"] for d in changed["now_kept"]["sample"]} == set(kept_after) - kept_before
    for doc in changed["now_rejected"]["sample"]:  # the stage and reason the re-run gave
        rejected = rejected_after[doc["id"]]
        assert doc["after"] == {"kept": False, "stage": rejected["stage"],
                                "reason": rejected["reason"]}
    texts = pa.array([r["text"] for r in kept_after.values()], pa.string())
    assert result["kept"]["after"] == {
        "docs": len(kept_after), "words": sum(count_words(texts).to_pylist()),
        "unsure": 0, "unsure_words": 0}
    return result


@pytest.mark.parametrize("settings,rerun", [
    (["quality.min_words=60", "quality.max_hash_ratio=0.05", "classify.threshold=0.635"],
     {"quality": {"mode": "filter", "gopher_quality": {"min_words": 60,
                                                       "max_hash_ratio": 0.05}},
      "classify": {"mode": "filter", "threshold": 0.635}}),
    (["quality.mode=filter", "quality.rules=[c4]"], {"quality": {"mode": "filter",
                                                                  "rules": ["c4"]}}),
    (["langid.min_score=0.985", "length_filter.min_words=20"],
     {"langid": {"min_score": 0.985}, "length_filter": {"min_words": 20}}),
    (["classify.mode=filter", "length_filter.max_words=120"],
     {"classify": {"mode": "filter"}, "length_filter": {"max_words": 120}}),
], ids=["tighter-quality-and-classify", "quality-filters-c4-only",
        "langid-tighter-length-looser", "classify-filters-length-capped"])
def test_whatif_figures_equal_a_rerun_with_the_changed_options(
        annotated, tmp_path, capsys, settings, rerun):
    variant = run_variant(annotated.parent / "job.yaml", tmp_path / "b", rerun)
    result = assert_same_as_rerun(capsys, annotated, variant, settings)
    moved = result["changed"]["now_rejected"]["docs"] + result["changed"]["now_kept"]["docs"]
    assert moved > 0  # the change changes something, so the comparison means something


def test_loosening_a_step_before_others_is_unsure_not_guessed(annotated, capsys):
    result = cli_json(capsys, "whatif", annotated, "--set", "langid.keep=[en, de]", "-n", "50")
    unsure = result["changed"]["unsure"]
    german = {r["id"] for r in rows(annotated, "rejected", "reason = 'lang:de'")}
    assert german and {d["id"] for d in unsure["sample"]} == german
    assert all("never went through quality, classify, length_filter" in d["after"]["unsure"]
               for d in unsure["sample"])
    assert result["kept"]["after"]["docs"] == result["kept"]["before"]["docs"]
    assert result["kept"]["after"]["unsure"] == len(german)


def test_the_recipe_with_a_tighter_langid_before_dedup_equals_a_rerun(recipe, tmp_path,
                                                                       capsys):
    # the spec as run: absolute paths, so the variant may live anywhere
    rerun = run_variant(recipe / "spec.yaml", tmp_path / "b", {"langid": {"min_score": 0.95}})
    result = assert_same_as_rerun(capsys, recipe, rerun, ["langid.min_score=0.95"])
    assert result["changed"]["now_rejected"]["docs"] == 3


@pytest.mark.parametrize("setting,message", [
    ("quality.min_words=10", "quality wrote no measures (it ran with `mode: filter`)"),
    ("dedup_exact.lowercase=false", "dedup_exact: no rule maps its options to columns"),
    ("langid.model=other.bin", "langid.model: a different model gives other scores"),
    ("extract.engine=resiliparse", "extract: no rule maps its options to columns"),
    ("nope.x=1", "nope: not a step of this job"),
    ("langid.min_score=2", "langid: min_score: Input should be less than or equal to 1"),
    ("langid=0.9", "write STAGE.OPTION=VALUE"),
])
def test_what_cannot_be_evaluated_is_an_error_naming_it(recipe, capsys, setting, message):
    code, out, err = cli(capsys, "whatif", recipe, "--set", setting, "--json")
    assert code == 2 and out == "" and message in err


def test_every_problem_is_named_at_once(annotated, capsys):
    code, _, err = cli(capsys, "whatif", annotated, "--set", "quality.c4.line_min_words=2",
                       "--set", "length_filter.min_chars=10", "--set", "classify.label=x")
    assert code == 2
    assert "quality.c4.line_min_words: it changes how a measure is computed" in err
    assert "length_filter.min_chars: characters are not written" in err
    assert "classify.label: only the threshold" in err


def test_a_dedup_group_that_loses_its_keeper_is_unsure(tmp_path, capsys):
    """K was kept and C rejected as its copy; with K now too short, a re-run may keep C."""
    out = tmp_path / "out"
    (out / "manifests").mkdir(parents=True)
    (out / "manifests" / "part-00000.json").write_text(json.dumps({"shard": "00000",
                                                                   "stages": []}))
    (out / "spec.yaml").write_text("stages:\n- length_filter: {min_words: 1}\n"
                                   "- dedup_exact: {}\n")
    write_parquet(out / "data" / "part-00000.parquet", [
        {"id": "K", "text": "five words of kept text", "n_words": 5},
        {"id": "Y", "text": "long " * 50, "n_words": 50}])
    write_parquet(out / "rejected" / "part-00000.parquet", [
        {"id": "C", "text": "a copy " * 25, "n_words": 50, "stage": "dedup_exact",
         "reason": "duplicate", "duplicate_of": "K"},
        {"id": "X", "text": "long " * 50, "n_words": 50, "stage": "dedup_exact",
         "reason": "duplicate", "duplicate_of": "Y"}])
    result = cli_json(capsys, "whatif", out, "--set", "length_filter.min_words=10")
    changed = result["changed"]
    assert [(d["id"], d["after"]) for d in changed["now_rejected"]["sample"]] == \
        [("K", {"kept": False, "stage": "length_filter", "reason": "too_short:words=5"})]
    assert [d["id"] for d in changed["unsure"]["sample"]] == ["C"]
    assert "dedup_exact chose it as a copy" in changed["unsure"]["sample"][0]["after"]["unsure"]
    assert result["kept"]["after"] == {"docs": 1, "words": 50, "unsure": 1, "unsure_words": 50}


def test_text_view_shows_the_funnel_and_the_documents_that_change_side(recipe, capsys):
    code, out, _ = cli(capsys, "whatif", recipe, "--set", "langid.min_score=0.95", "-n", "1")
    assert code == 0
    assert "langid                 45       41        4   ->       45       31       14" in out
    assert "kept: 25 -> 22 documents" in out
    assert "kept before, rejected now: 3" in out and "kept -> langid: lang_low_score" in out
