"""`classify` with `engine: transformers` on tiny BERT classifiers built here (regression,
single-label, multi-label) and on an encoder + head folder over the real all-MiniLM-L6-v2:
scores equal a direct forward pass with the same truncation in any batch order, filters
and columns follow the head, bad options fail validation, and a two-classifier ensemble
runs through the runner with every document accounted for."""

from __future__ import annotations

import random
from collections import Counter

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pydantic import ValidationError

from pipeline.runner import run_job
from pipeline.spec import load_spec
from stages._classify.head import save_head
from stages.classify import Classify, ClassifyConfig
from tests.conftest import assert_accounting, make_text, write_jsonl, write_spec
from tests.tiny_models import build_classifier, minilm_folder, shared_model

HEADS = {"regression": (["edu"], None),
         "single": (["low", "mid", "high"], None),
         "multi": (["news", "sport", "science"], "multi_label_classification")}


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    return {name: shared_model(tmp_path_factory, name,
                               lambda folder, spec=spec: build_classifier(folder, *spec))
            for name, spec in HEADS.items()}


def texts(n: int = 24) -> list[str]:
    """Short to far longer than the models' 64 positions, in a shuffled order."""
    out = [make_text(i, 3 + 9 * i) for i in range(n)] + ["river", make_text(99, 5000)]
    random.Random(n).shuffle(out)
    return out


def direct_logits(folder, texts: list[str], max_length: int) -> np.ndarray:
    """A plain transformers forward pass, one padded batch, the same truncation."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    model = AutoModelForSequenceClassification.from_pretrained(folder, local_files_only=True)
    batch = tokenizer(texts, truncation=True, max_length=max_length, padding=True,
                      return_tensors="pt")
    with torch.no_grad():
        return model(**batch).logits.numpy()


def run_stage(texts: list[str], **options):
    stage = Classify(ClassifyConfig(engine="transformers", cpus=2, **options))
    out = stage.process(pa.table({"text": texts}))
    return stage, out.table, (out.reasons.to_pylist() if out.reasons is not None
                              else [None] * len(texts))


@pytest.mark.parametrize("max_length", [16, None])
def test_scores_equal_a_direct_forward_pass_for_every_head(models, max_length):
    docs = texts()
    for name, folder in models.items():
        _, table, _ = run_stage(docs, model=str(folder), column="edu", max_length=max_length,
                                threshold=None, batch_tokens=128)
        logits = direct_logits(folder, docs, max_length or 64)
        if name == "regression":
            got, expected = np.array(table["edu"].to_pylist()), logits[:, 0]
        elif name == "single":
            expected = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
            assert table["edu_label"].to_pylist() == [HEADS["single"][0][k]
                                                      for k in expected.argmax(axis=1)]
            got, expected = np.array(table["edu"].to_pylist()), expected.max(axis=1)
        else:
            got = np.array([table[f"edu_{label}"].to_pylist() for label in HEADS[name][0]]).T
            expected = 1 / (1 + np.exp(-logits))
        assert np.abs(got - expected).max() <= 1e-4, name
        assert np.ptp(expected) > 0.05  # the tiny models tell texts apart


def test_truncation_changes_the_scores(models):
    doc = [make_text(7, 200)]
    short = run_stage(doc, model=str(models["regression"]), max_length=8, threshold=None)[1]
    full = run_stage(doc, model=str(models["regression"]), threshold=None)[1]
    assert abs(short["score"][0].as_py() - full["score"][0].as_py()) > 1e-3


def test_regression_threshold_int_score_and_empty_texts(models):
    docs = texts(12) + ["", None]
    _, table, reasons = run_stage(docs, model=str(models["regression"]), column="edu",
                                  threshold=0.0, int_score=True, int_range=[0, 2])
    scores, ints = table["edu"].to_pylist(), table["edu_int"].to_pylist()
    assert reasons[-2:] == ["empty_text"] * 2 and scores[-2:] == [None] * 2
    for score, value, why in zip(scores[:-2], ints, reasons):
        assert value == min(2, max(0, round(score)))
        assert why == (f"classify:edu={score:.4g}" if score < 0 else None)
    assert {None, f"classify:edu={min(scores[:-2]):.4g}"} <= set(reasons)
    _, _, kept = run_stage(docs, model=str(models["regression"]), column="edu",
                           threshold=0.0, mode="annotate")
    assert kept == [None] * len(docs)


def test_single_label_keep_labels_and_positive_label(models):
    docs = texts(12)
    _, table, reasons = run_stage(docs, model=str(models["single"]), column="topic",
                                  label="high", threshold=0.3, keep_labels=["high", "mid"])
    for label, p, why in zip(table["topic_label"].to_pylist(), table["topic"].to_pylist(),
                             reasons):
        expected = (f"classify:topic_label={label}" if label == "low"
                    else f"classify:topic={p:.4g}" if p < 0.3 else None)
        assert why == expected
    assert any(reasons) and not all(reasons)


def test_multi_label_keeps_documents_with_a_kept_label(models):
    docs = texts(12)
    stage, table, reasons = run_stage(docs, model=str(models["multi"]), column="t",
                                      keep_labels=["sport"], threshold=0.5)
    assert stage.produces() == ("t_news", "t_sport", "t_science")
    for p, why in zip(table["t_sport"].to_pylist(), reasons):
        assert why == (None if p >= 0.5 else f"classify:t_sport={p:.4g}")


def test_options_that_do_not_fit_the_model_fail_validation(models, tmp_path):
    def invalid(match, **options):
        with pytest.raises(ValidationError, match=match):
            ClassifyConfig(**options)

    regression, single = str(models["regression"]), str(models["single"])
    invalid("no label 'spam'.*'low', 'mid', 'high'", engine="transformers", model=single,
            label="spam")
    invalid("keep_labels does not apply to a regression head", engine="transformers",
            model=regression, keep_labels=["edu"])
    invalid("int_score does not apply", engine="transformers", model=single, int_score=True)
    invalid("threshold 3.0: a probability", engine="transformers", model=single, threshold=3)
    fasttext_file = tmp_path / "m.bin"
    fasttext_file.write_bytes(b"x")
    invalid("gpus, max_length: only for engine transformers", model=str(fasttext_file),
            max_length=8, gpus=1)
    assert ClassifyConfig(engine="transformers", model=regression, threshold=3).threshold == 3


def test_a_fasttext_step_written_out_with_every_option_loads_again(tmp_path):
    # a job's spec.yaml holds every option, the transformers-only ones at their defaults
    fasttext_file = tmp_path / "m.bin"
    fasttext_file.write_bytes(b"x")
    written = ClassifyConfig(model=str(fasttext_file)).model_dump()
    assert {"max_length", "gpus", "int_range"} <= set(written)
    assert ClassifyConfig(**written).engine == "fasttext"


# -- encoder + head ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def minilm_head(tmp_path_factory):
    """A random two-layer regression head over the real all-MiniLM-L6-v2 vectors."""
    import torch

    torch.manual_seed(4)
    layers = [(torch.randn(16, 384), torch.randn(16)), (torch.randn(2, 16), torch.randn(2))]
    folder = tmp_path_factory.mktemp("head")
    save_head(folder, layers, ["relu", None], "single_label_classification",
              ["other", "edu"], normalize=True, encoder=str(minilm_folder()))
    return folder, layers


def test_encoder_and_head_folder_equals_the_head_over_sentence_transformers(minilm_head):
    import torch
    from sentence_transformers import SentenceTransformer

    folder, layers = minilm_head
    docs = texts(10)
    _, table, _ = run_stage(docs, model=str(folder), max_length=128, threshold=None,
                            batch_tokens=300)
    encoder = SentenceTransformer(str(minilm_folder()), device="cpu", local_files_only=True)
    encoder.max_seq_length = 128
    vectors = encoder.encode(docs, convert_to_tensor=True, normalize_embeddings=True)
    (w1, b1), (w2, b2) = layers
    logits = torch.relu(vectors @ w1.T + b1) @ w2.T + b2
    expected = torch.softmax(logits, dim=1)[:, 1].numpy()  # `edu`, the second label
    assert np.abs(np.array(table["score"].to_pylist()) - expected).max() <= 1e-4
    assert table["score_label"].to_pylist() == \
        [["other", "edu"][k] for k in logits.argmax(dim=1).tolist()]


def test_a_head_folder_without_its_weights_fails_validation(minilm_head, tmp_path):
    import shutil

    broken = tmp_path / "head"
    shutil.copytree(minilm_head[0], broken)
    (broken / "head.safetensors").unlink()
    with pytest.raises(ValidationError, match="has no head.safetensors"):
        ClassifyConfig(engine="transformers", model=str(broken))


# -- through the runner -------------------------------------------------------------------------
def test_an_ensemble_of_two_classifiers_through_the_runner(models, tmp_path, ray_cluster):
    docs = texts(30)
    rows = [{"id": f"d{i}", "text": t} for i, t in enumerate(docs)] + [{"id": "e", "text": " "}]
    write_jsonl(tmp_path / "in" / "a.jsonl", rows)
    spec = write_spec(tmp_path / "job.yaml", f"""\
name: ensemble
input: {{format: jsonl, paths: ["in/*.jsonl"]}}
output: {{path: out}}
stages:
  - classify: {{engine: transformers, model: "{models['regression']}", column: edu,
                max_length: 32, threshold: null}}
  - classify: {{engine: transformers, model: "{models['single']}", column: topic,
                keep_labels: [high], threshold: null}}
""")
    run_job(load_spec(spec), progress=False)
    assert_accounting(tmp_path / "out")
    kept = pq.read_table(tmp_path / "out" / "data").to_pylist()
    rejected = pq.read_table(tmp_path / "out" / "rejected").to_pylist()
    assert len(kept) + len(rejected) == len(rows)
    reasons = Counter(r["reason"] for r in rejected)
    assert reasons["empty_text"] == 1 and sum(reasons.values()) > 1
    for row in rejected:  # the second classifier rejects every label but `high`
        if row["reason"] != "empty_text":
            assert row["reason"] == f"classify:topic_label={row['topic_label']}" != \
                "classify:topic_label=high"
    assert kept and all(r["topic_label"] == "high" for r in kept)
    by_text = {r["text"]: r for r in kept + rejected if r["text"].strip()}
    edu = direct_logits(models["regression"], docs, 32)[:, 0]
    got = np.array([by_text[t]["edu"] for t in docs])
    assert np.abs(got - edu).max() <= 1e-4
