"""The inference layer of the model stages: token-budget batching, the out-of-memory split,
truncation of long texts, model-folder checks at validation, options and resources."""

from __future__ import annotations

import json
import random
import shutil

import pytest
from pydantic import ValidationError

from pipeline.runner import JobError, run_job
from pipeline.spec import SpecError, load_spec
from stages._shared.inference.batching import halve_on_out_of_memory, token_budget_batches
from stages._shared.inference.folder import inspect_folder
from stages._shared.inference.runtime import Inference, resolve_dtype
from stages._shared.inference.tokens import tokenize
from stages.embed import Embed, EmbedConfig
from tests.conftest import make_text, write_jsonl, write_spec
from tests.tiny_models import build_classifier, build_encoder, minilm_folder, shared_model


@pytest.fixture(scope="module")
def encoder(tmp_path_factory):
    return shared_model(tmp_path_factory, "encoder", build_encoder)


@pytest.fixture(scope="module")
def regression(tmp_path_factory):
    return shared_model(tmp_path_factory, "regression",
                        lambda folder: build_classifier(folder, ["edu"]))


# -- batching ----------------------------------------------------------------------------------
def test_token_budget_batches_sort_by_length_and_stay_within_the_budget():
    rng = random.Random(5)
    lengths = [rng.randint(1, 300) for _ in range(500)] + [900]
    batches = token_budget_batches(lengths, budget=1024)
    assert sorted(i for batch in batches for i in batch) == list(range(len(lengths)))
    assert batches[0] == [500]  # longest first; longer than the budget: alone
    for batch in batches:
        longest = max(lengths[i] for i in batch)
        assert lengths[batch[0]] == longest
        assert len(batch) * longest <= 1024 or len(batch) == 1
    flat = [lengths[i] for batch in batches for i in batch]
    assert flat == sorted(flat, reverse=True)
    # padding is small next to arrival-order batches of the same row count
    padded = sum(len(b) * max(lengths[i] for i in b) for b in batches)
    assert padded < 1.15 * sum(lengths)


def test_a_batch_that_runs_out_of_memory_is_halved_until_it_fits():
    import torch

    calls, released = [], []

    def run(rows):  # a model that fits at most three rows at a time
        calls.append(len(rows))
        if len(rows) > 3:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return [row * 10 for row in rows]

    rows = list(range(13))
    assert halve_on_out_of_memory(rows, run, lambda: released.append(1)) == \
        [row * 10 for row in rows]
    assert calls[0] == 13 and max(c for c in calls if c <= 3) == 3
    assert sum(c for c in calls if c <= 3) == 13  # every row ran exactly once
    assert len(released) == sum(c > 3 for c in calls)

    with pytest.raises(MemoryError, match="one document does not fit"):
        halve_on_out_of_memory([1], lambda rows: run(rows * 4))

    def broken(rows):
        calls.append(len(rows))
        raise ValueError("not a memory problem")

    calls.clear()
    with pytest.raises(ValueError, match="not a memory problem"):
        halve_on_out_of_memory(rows, broken)
    assert calls == [13]  # other errors are not retried


# -- truncation --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def minilm_tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(minilm_folder(), local_files_only=True)


def test_long_texts_keep_exactly_the_tokenizers_first_tokens(minilm_tokenizer):
    rng = random.Random(1)
    long_words = " ".join("".join(rng.choice("abcdefghij") for _ in range(150))
                          for _ in range(400))  # each word is one [UNK]: the prefix is short
    texts = [make_text(1, 60_000), "x" * 50_000, long_words, "short text", make_text(2, 100),
             "tabs\tand\nnewlines " * 2000]
    full = minilm_tokenizer(texts, truncation=True, max_length=64)["input_ids"]
    assert tokenize(minilm_tokenizer, texts, 64).ids == full
    assert len(full[0]) == 64 and full[0][0] == minilm_tokenizer.cls_token_id

    pieces = tokenize(minilm_tokenizer, texts, 32, max_chunks=3)
    overflow = minilm_tokenizer(texts, truncation=True, max_length=32,
                                return_overflowing_tokens=True)
    expected: dict[int, list] = {}
    for ids, owner in zip(overflow["input_ids"], overflow["overflow_to_sample_mapping"]):
        expected.setdefault(owner, []).append(ids)
    got: dict[int, list] = {}
    for ids, owner in zip(pieces.ids, pieces.owner):
        got.setdefault(owner, []).append(ids)
    assert got == {k: v[:3] for k, v in expected.items()}


# -- model folders, checked at validation --------------------------------------------------------
def broken_copy(source, tmp_path, remove: str):
    folder = tmp_path / f"no-{remove}"
    shutil.copytree(source, folder)
    (folder / remove).unlink()
    return folder


@pytest.mark.parametrize("missing", ["model.safetensors", "tokenizer.json", "config.json"])
def test_a_folder_missing_a_file_fails_validation_naming_it(regression, tmp_path, missing):
    folder = broken_copy(regression, tmp_path, missing)
    write_jsonl(tmp_path / "in.jsonl", [{"text": "hello"}])
    spec = write_spec(tmp_path / "job.yaml", f"""\
name: broken-model
input: {{format: jsonl, paths: [in.jsonl]}}
output: {{path: out}}
stages:
  - length_filter: {{min_words: 1}}
  - classify: {{engine: transformers, model: {folder}, column: edu}}
""")
    with pytest.raises(SpecError, match=f"line 6: .*{missing}"):
        load_spec(spec)


def test_folder_checks_name_what_is_wrong(regression, encoder, tmp_path):
    with pytest.raises(ValueError, match="model folder not found.*never downloaded"):
        inspect_folder(str(tmp_path / "nope"), "encoder")
    with pytest.raises(ValueError, match="give a local folder"):
        inspect_folder("s3://bucket/model", "encoder")
    # an encoder without a trained head would get a random one from the Auto class
    with pytest.raises(ValueError, match="BertModel is not a \\*ForSequenceClassification"):
        inspect_folder(str(encoder), "classifier")
    with pytest.raises(ValueError, match="needs a causal language model"):
        inspect_folder(str(regression), "causal_lm")
    sharded = tmp_path / "sharded"
    shutil.copytree(regression, sharded)
    (sharded / "model.safetensors").rename(sharded / "model-00001-of-00002.safetensors")
    (sharded / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {
        "a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}))
    with pytest.raises(ValueError, match="lacks weight shard model-00002-of-00002"):
        inspect_folder(str(sharded), "classifier")


def test_max_length_defaults_to_the_models_and_cannot_exceed_it(regression):
    minilm = inspect_folder(str(minilm_folder()), "encoder")
    assert minilm.max_length == 256 and minilm.pooling == "mean"  # sentence_bert_config.json
    assert inspect_folder(str(regression), "classifier").max_length == 64
    with pytest.raises(ValidationError, match="max_length 100 is more than the model takes "
                                              "\\(64 tokens\\)"):
        EmbedConfig(model=str(regression), max_length=100)


def test_options_gpus_fractions_and_dtype(encoder):
    config = EmbedConfig(model=str(encoder), gpus=0.25, cpus=2)
    resources = Embed(config).resources()
    assert (resources.gpus, resources.cpus) == (0.25, 2) and config.device() == "cuda"
    assert EmbedConfig(model=str(encoder), gpus=2).gpus == 2
    with pytest.raises(ValidationError, match="whole number"):
        EmbedConfig(model=str(encoder), gpus=1.5)
    assert resolve_dtype("auto", "cpu") == "float32"
    assert resolve_dtype("float16", "cpu") == "float16"
    inference = Inference(str(encoder), "AutoModel", cpus=2)
    assert inference.max_length == 64  # the tokenizer's limit when none is given
    assert next(inference.model.parameters()).dtype.is_floating_point


def test_a_gpu_stage_on_a_worker_without_cuda_says_so(encoder):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(RuntimeError, match="torch sees no CUDA device.*gpus: 0"):
        Embed(EmbedConfig(model=str(encoder), gpus=1)).setup()


def test_gpus_1_on_a_cluster_without_gpus_fails_before_any_work(encoder, tmp_path,
                                                                 ray_cluster):
    import ray

    if ray.cluster_resources().get("GPU", 0):
        pytest.skip("this Ray cluster has GPUs")
    write_jsonl(tmp_path / "in.jsonl", [{"text": make_text(i, 20)} for i in range(4)])
    spec = write_spec(tmp_path / "job.yaml", f"""\
name: gpu-needed
input: {{format: jsonl, paths: [in.jsonl]}}
output: {{path: out}}
resources: {{gpus: 1}}
stages:
  - embed: {{model: {encoder}, gpus: 1}}
""")
    with pytest.raises(JobError, match="'embed' needs 1 GPU.*cluster has 0"):
        run_job(load_spec(spec), progress=False)
    assert not list((tmp_path / "out").glob("data/*.parquet"))
