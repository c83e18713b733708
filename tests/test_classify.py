"""classify + train-classifier: a classifier trained here on a small self-made set separates
its two classes, the stage scores and filters with it, and a job runs it end to end."""

from __future__ import annotations

import random
from collections import Counter

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pydantic import ValidationError

from stages._shared.fasttext_models import ModelFileError, one_line_str
from pipeline.runner import run_job
from pipeline.spec import SpecError, load_spec
from stages._classify.train import TrainingDataError, is_held_out, main, train_classifier
from stages.classify import Classify, ClassifyConfig
from tests.conftest import assert_accounting, write_jsonl, write_parquet, write_spec

GOOD_SUBJECTS = ["the council", "the museum", "researchers", "the orchestra", "volunteers",
                 "the library", "engineers", "local farmers", "the committee", "students"]
GOOD_VERBS = ["published", "measured", "discussed", "restored", "planted", "reviewed",
              "presented", "studied", "described", "compared"]
GOOD_OBJECTS = ["the annual budget", "the growth of wheat", "a history of printing",
                "four hundred trees", "the new bridge design", "the river's water quality",
                "a programme of Baltic composers", "the results of the survey",
                "the library's opening hours", "the effects of irrigation"]
SPAM = ["click here", "buy now", "free bonus", "best casino", "cheap pills", "win big",
        "limited offer", "subscribe today", "hot deals", "lose weight fast", "100% free",
        "act now", "earn money", "no credit check"]

KEEP_TEXT = "The museum restored a history of printing and presented the results."
DROP_TEXT = "Click here! Best casino, free bonus, win big, act now, limited offer!!!"


def good_document(rng: random.Random) -> str:
    sentences = [f"{rng.choice(GOOD_SUBJECTS).capitalize()} {rng.choice(GOOD_VERBS)} "
                 f"{rng.choice(GOOD_OBJECTS)}." for _ in range(rng.randint(2, 5))]
    return "\n".join(sentences)


def spam_document(rng: random.Random) -> str:
    return " ".join(f"{rng.choice(SPAM)}{rng.choice(['!', '!!', '', ','])}"
                    for _ in range(rng.randint(6, 16)))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("classifier-data")
    rng = random.Random(11)
    good = [{"text": good_document(rng)} for _ in range(300)]
    spam = [{"text": spam_document(rng)} for _ in range(300)]
    write_parquet(folder / "good.parquet", good)
    write_jsonl(folder / "spam.jsonl", spam)
    return folder


@pytest.fixture(scope="module")
def trained(corpus):
    model = corpus / "hq.bin"
    metrics = train_classifier([str(corpus / "good.parquet")], [str(corpus / "spam.jsonl")],
                               str(model), dim=16, bucket=20_000, holdout=0.2)
    return model, metrics


def classify(texts, **config):
    stage = Classify(ClassifyConfig(**config))
    out = stage.process(pa.table({"text": texts}))
    return out.table, out.reasons.to_pylist()


def test_trained_classifier_separates_its_classes_on_held_out_documents(trained):
    model, metrics = trained
    assert model.exists()
    assert metrics["heldout_docs"] > 60 and metrics["train_docs"] + metrics["heldout_docs"] == 600
    assert metrics["precision"] >= 0.95 and metrics["recall"] >= 0.95
    assert metrics["f1"] >= 0.95


def test_stage_scores_new_documents_and_rejects_below_threshold(trained):
    model, _ = trained
    table, reasons = classify([KEEP_TEXT, DROP_TEXT, KEEP_TEXT.replace(" ", "\n")],
                              model=str(model))
    scores = table["score"].to_pylist()
    assert scores[0] > 0.5 > scores[1]
    assert scores[2] == pytest.approx(scores[0], abs=1e-6)  # newlines fold into spaces
    assert reasons[0] is None and reasons[2] is None
    assert reasons[1] == f"classify:score={round(scores[1], 3)}"


def test_threshold_null_only_annotates_and_the_column_is_configurable(trained):
    model, _ = trained
    stage = Classify(ClassifyConfig(model=str(model), threshold=None, column="hq_score"))
    assert stage.produces() == ("hq_score",)
    out = stage.process(pa.table({"text": [KEEP_TEXT, DROP_TEXT], "hq_score": [9.0, 9.0]}))
    assert out.reasons.to_pylist() == [None, None]
    assert out.table.column_names == ["text", "hq_score"]  # replaced, not duplicated
    assert all(0 <= s <= 1 for s in out.table["hq_score"].to_pylist())


def test_empty_text_is_rejected_with_a_null_score(trained):
    model, _ = trained
    table, reasons = classify(["", None, " \n ", KEEP_TEXT], model=str(model))
    assert reasons[:3] == ["empty_text"] * 3 and reasons[3] is None
    assert table["score"].to_pylist()[:3] == [None] * 3


def test_positive_label_must_exist_in_the_model(trained):
    model, _ = trained
    assert classify([KEEP_TEXT], model=str(model), label="__label__hq")[1] == [None]
    with pytest.raises(ModelFileError, match="no label 'good'.*__label__hq"):
        Classify(ClassifyConfig(model=str(model), label="good")).setup()


def test_config_needs_an_existing_model(tmp_path):
    with pytest.raises(ValidationError, match="model file not found"):
        ClassifyConfig(model=str(tmp_path / "nope.bin"))
    with pytest.raises(ValidationError, match="model"):
        ClassifyConfig()
    assert Classify().produces() == ("score",)  # the registry's default instance still works


def test_train_classifier_command_prints_held_out_metrics(corpus, tmp_path, capsys):
    out = tmp_path / "models" / "cli.bin"
    code = main(["--positive", str(corpus / "good.parquet"), "--negative",
                 str(corpus / "spam.jsonl"), "--out", str(out), "--dim", "16",
                 "--bucket", "20000"])
    printed = capsys.readouterr().out
    assert code == 0 and out.exists()
    lines = dict(line.split(": ", 1) for line in printed.strip().splitlines())
    assert float(lines["held-out precision"]) >= 0.95
    assert float(lines["held-out recall"]) >= 0.95
    assert float(lines["held-out f1"]) >= 0.95


def test_train_classifier_explains_bad_inputs(corpus, tmp_path, capsys):
    assert main(["--positive", str(tmp_path / "missing-*.parquet"), "--negative",
                 str(corpus / "spam.jsonl"), "--out", str(tmp_path / "m.bin")]) == 2
    assert "no positive input files match" in capsys.readouterr().err
    write_parquet(tmp_path / "body.parquet", [{"body": "some text"}])
    with pytest.raises(TrainingDataError, match="has no column 'text'.*--text-column"):
        train_classifier([str(tmp_path / "body.parquet")], [str(corpus / "spam.jsonl")],
                         str(tmp_path / "m.bin"))
    with pytest.raises(TrainingDataError, match="word_ngrams must be at least 2"):
        train_classifier([str(corpus / "good.parquet")], [str(corpus / "spam.jsonl")],
                         str(tmp_path / "m.bin"), word_ngrams=1)


def test_held_out_split_follows_the_text_so_copies_stay_together(tmp_path):
    rng = random.Random(3)
    # some with Windows line ends: "\r" must not split an example in two
    good = [good_document(rng).replace("\n", "\r\n" if i % 2 else "\n") for i in range(120)]
    spam = [spam_document(rng) for _ in range(60)] + [DROP_TEXT] * 60
    write_jsonl(tmp_path / "good.jsonl", [{"text": t} for t in good])
    write_jsonl(tmp_path / "spam.jsonl", [{"text": t} for t in spam])
    metrics = train_classifier([str(tmp_path / "good.jsonl")], [str(tmp_path / "spam.jsonl")],
                               str(tmp_path / "m.bin"), dim=8, bucket=5000, holdout=0.3)
    # decided on the one-line form fastText trains on
    expected = sum(is_held_out(one_line_str(t).strip(), 0.3, seed=0) for t in good + spam)
    assert metrics["heldout_docs"] == expected
    assert metrics["train_docs"] == 240 - expected
    share = sum(is_held_out(f"document {i}", 0.3, seed=0) for i in range(5000)) / 5000
    assert 0.27 < share < 0.33


def test_classify_through_the_runner_accounts_for_every_document(trained, tmp_path,
                                                                  ray_cluster):
    model, _ = trained
    rng = random.Random(99)
    rows = [{"id": f"d{i}", "text": good_document(rng) if i % 3 else spam_document(rng)}
            for i in range(60)]
    rows[5]["text"] = ""
    write_jsonl(tmp_path / "in" / "a.jsonl", rows[:30])
    write_jsonl(tmp_path / "in" / "b.jsonl", rows[30:])
    spec = write_spec(tmp_path / "job.yaml", f"""\
name: classify-test
input: {{format: jsonl, paths: ["in/*.jsonl"]}}
output: {{path: out}}
stages:
  - classify: {{model: "{model}", label: hq, threshold: 0.5}}
""")
    run_job(load_spec(spec), progress=False)
    out = tmp_path / "out"
    assert_accounting(out)
    kept = pq.read_table(out / "data")
    rejected = pq.read_table(out / "rejected")
    assert kept.num_rows + rejected.num_rows == 60
    assert sorted(kept["id"].to_pylist()) == sorted(
        r["id"] for i, r in enumerate(rows) if i % 3 and r["text"])
    assert all(s >= 0.5 for s in kept["score"].to_pylist())
    reasons = Counter(r.split("=")[0] for r in rejected["reason"].to_pylist())
    assert reasons == {"classify:score": 20, "empty_text": 1}


def test_spec_without_a_model_fails_before_work_starts(tmp_path):
    write_jsonl(tmp_path / "a.jsonl", [{"text": "hello"}])
    spec = write_spec(tmp_path / "job.yaml", """\
name: classify-test
input: {format: jsonl, paths: ["a.jsonl"]}
output: {path: out}
stages:
  - classify: {threshold: 0.5}
""")
    with pytest.raises(SpecError, match="line 5.*missing required key.*model"):
        load_spec(spec)
