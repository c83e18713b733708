"""`perplexity` on a tiny GPT-2 built here: equal to a direct forward pass over the same
first tokens in any batch order, min/max filtering and annotate, through the runner."""

from __future__ import annotations

import random

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pydantic import ValidationError

from pipeline.runner import run_job
from pipeline.spec import load_spec
from stages.perplexity import Perplexity, PerplexityConfig
from tests.conftest import assert_accounting, make_text, write_jsonl, write_spec
from tests.tiny_models import build_causal_lm, build_classifier, shared_model


@pytest.fixture(scope="module")
def lm(tmp_path_factory):
    return shared_model(tmp_path_factory, "causal-lm", build_causal_lm)


def texts(n: int = 20) -> list[str]:
    out = [make_text(i, 1 + 7 * i) for i in range(n)] + ["river", make_text(5, 3000)]
    random.Random(n).shuffle(out)
    return out


def direct(folder, texts: list[str], max_length: int) -> tuple[np.ndarray, np.ndarray]:
    """(mean token log-probability, perplexity) from a plain forward pass per text."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(folder, local_files_only=True)
    means = []
    for text in texts:
        ids = tokenizer(text, truncation=True, max_length=max_length,
                        return_tensors="pt")["input_ids"]
        with torch.no_grad():
            logprobs = torch.log_softmax(model(input_ids=ids).logits[0, :-1], dim=-1)
        means.append(logprobs.gather(-1, ids[0, 1:, None]).mean().item())
    means = np.array(means)
    return means, np.exp(-means)


def run_stage(texts: list[str], **options):
    stage = Perplexity(PerplexityConfig(cpus=2, **options))
    out = stage.process(pa.table({"text": texts}))
    return out.table, (out.reasons.to_pylist() if out.reasons is not None
                       else [None] * len(texts))


@pytest.mark.parametrize("max_length", [12, None])
def test_perplexity_equals_a_direct_forward_pass(lm, max_length):
    docs = texts()
    table, reasons = run_stage(docs, model=str(lm), max_length=max_length, batch_tokens=100)
    logprob, perplexity = direct(lm, docs, max_length or 64)
    got_logprob = np.array(table["perplexity_logprob"].to_pylist())
    got = np.array(table["perplexity"].to_pylist())
    assert np.abs(got_logprob - logprob).max() <= 1e-4
    assert np.abs(got / perplexity - 1).max() <= 1e-4
    assert np.ptp(logprob) > 0.1 and reasons == [None] * len(docs)


def test_min_max_filter_and_annotate(lm):
    docs = texts(12) + [""]
    table, _ = run_stage(docs, model=str(lm), mode="annotate")
    values = sorted(v for v in table["perplexity"].to_pylist() if v is not None)
    low, high = values[2], values[-3]
    table, reasons = run_stage(docs, model=str(lm), min=low, max=high)
    for value, why in zip(table["perplexity"].to_pylist(), reasons):
        if value is None:
            assert why == "empty_text"
        else:
            assert why == (f"perplexity_low:ppl={value:.4g}" if value < low else
                           f"perplexity_high:ppl={value:.4g}" if value > high else None)
    assert sum(r is not None for r in reasons) == 2 + 2 + 1


def test_config_checks(lm, tmp_path_factory):
    with pytest.raises(ValidationError, match="min 9.0 is above max 2.0"):
        PerplexityConfig(model=str(lm), min=9, max=2)
    classifier = shared_model(tmp_path_factory, "regression",
                              lambda folder: build_classifier(folder, ["edu"]))
    with pytest.raises(ValidationError, match="needs a causal language model"):
        PerplexityConfig(model=str(classifier))
    assert Perplexity().produces() == ("perplexity", "perplexity_logprob")


def test_perplexity_through_the_runner(lm, tmp_path, ray_cluster):
    docs = texts(16)
    rows = [{"id": f"d{i}", "text": t} for i, t in enumerate(docs)] + [{"id": "e", "text": ""}]
    write_jsonl(tmp_path / "in" / "a.jsonl", rows)
    _, perplexity = direct(lm, docs, 32)
    cut = float(np.median(perplexity))
    spec = write_spec(tmp_path / "job.yaml", f"""\
name: perplexity-test
input: {{format: jsonl, paths: ["in/*.jsonl"]}}
output: {{path: out}}
stages:
  - perplexity: {{model: "{lm}", max_length: 32, max: {cut!r}}}
""")
    run_job(load_spec(spec), progress=False)
    assert_accounting(tmp_path / "out")
    kept = pq.read_table(tmp_path / "out" / "data").to_pylist()
    rejected = pq.read_table(tmp_path / "out" / "rejected").to_pylist()
    expected = dict(zip(docs, perplexity))
    assert sorted(r["text"] for r in kept) == sorted(t for t in docs if expected[t] <= cut)
    for row in kept:
        assert abs(row["perplexity"] / expected[row["text"]] - 1) <= 1e-4
    assert sorted(r["reason"].split(":")[0] for r in rejected) == \
        ["empty_text"] + ["perplexity_high"] * sum(p > cut for p in perplexity)
