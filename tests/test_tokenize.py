"""`tokenize`: ids through the stage equal `tokenizers`' own encoding (a tiny BPE trained
here, and the real all-MiniLM-L6-v2 tokenizer), BOS/EOS placement, empty and very long
texts, token bounds, validation errors naming the file or token, and a real job."""

from __future__ import annotations

import os

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pydantic import ValidationError

from pipeline.runner import run_job
from pipeline.spec import load_spec
from stages.tokenize import Tokenize, TokenizeConfig
from tests.conftest import assert_accounting, make_text, write_jsonl, write_spec
from tests.tiny_models import minilm_folder

SENTENCES = [
    "The council published the annual budget for the new bridge.",
    "Researchers measured the river's water quality after the flood.",
    "Volunteers planted four hundred trees along the island's coast.",
    "A history of printing, from movable type to the modern press.",
]
TEXTS = SENTENCES + ["Ünïcödé façade — naïve café 東京 🚀", "x", " ".join(SENTENCES) * 300]


@pytest.fixture(autouse=True)
def _thread_settings_restored():
    """The stage sets the encoding threads in the process environment (as each Ray worker
    does); put them back so the tests after these see the environment they started with."""
    names = ("TOKENIZERS_PARALLELISM", "RAYON_NUM_THREADS")
    before = {name: os.environ.get(name) for name in names}
    yield
    for name, value in before.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture(scope="module")
def bpe_file(tmp_path_factory):
    """A byte-level BPE trained on SENTENCES, with <s> and </s>, and a post-processor that
    adds </s> (as many causal LM tokenizers add their own EOS)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.train_from_iterator(SENTENCES * 5, trainers.BpeTrainer(
        vocab_size=300, special_tokens=["<s>", "</s>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tokenizer.post_processor = processors.TemplateProcessing(
        single="$A </s>", special_tokens=[("</s>", tokenizer.token_to_id("</s>"))])
    file = tmp_path_factory.mktemp("bpe") / "tokenizer.json"
    tokenizer.save(str(file))
    return file


def raw(file, texts, special=True):
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(file))
    return [e.ids for e in tokenizer.encode_batch(texts, add_special_tokens=special)]


def run(stage: Tokenize, texts) -> dict:
    return stage.process(pa.table({"text": pa.array(texts, pa.string())})).table.to_pydict()


def test_ids_equal_tokenizers_own_encoding_tiny_bpe(bpe_file):
    got = run(Tokenize(TokenizeConfig(tokenizer=str(bpe_file), ids=True)), TEXTS)
    expected = raw(bpe_file, TEXTS)
    assert got["token_ids"] == expected
    assert got["n_tokens"] == [len(ids) for ids in expected]
    assert all(ids[-1] == 1 for ids in got["token_ids"])  # the post-processor's </s>
    assert got["n_tokens"][-1] > 10_000  # the long page is counted whole


def test_ids_equal_tokenizers_own_encoding_minilm():
    folder = minilm_folder()
    got = run(Tokenize(TokenizeConfig(tokenizer=str(folder), ids=True)), TEXTS)
    expected = raw(folder / "tokenizer.json", TEXTS)
    # the file says truncate at 128 and pad to 128: the stage counts whole documents
    from tokenizers import Tokenizer

    plain = Tokenizer.from_file(str(folder / "tokenizer.json"))
    plain.no_truncation()
    plain.no_padding()
    whole = [e.ids for e in plain.encode_batch(TEXTS)]
    assert max(map(len, expected)) == 128
    assert got["token_ids"] == whole
    assert got["token_ids"][0][0] == 101 and got["token_ids"][0][-1] == 102  # [CLS] .. [SEP]
    assert got["n_tokens"][-1] > 5000


def test_bos_eos_replace_the_post_processor(bpe_file):
    plain = raw(bpe_file, TEXTS, special=False)
    both = run(Tokenize(TokenizeConfig(tokenizer=str(bpe_file), ids=True,
                                       add_bos="<s>", add_eos=1)), TEXTS)
    assert both["token_ids"] == [[0] + ids + [1] for ids in plain]
    assert both["n_tokens"] == [len(ids) + 2 for ids in plain]
    bos = run(Tokenize(TokenizeConfig(tokenizer=str(bpe_file), ids=True, add_bos=0)), TEXTS)
    assert bos["token_ids"] == [[0] + ids for ids in plain]  # no </s> from the post-processor
    eos_only = Tokenize(TokenizeConfig(tokenizer=str(bpe_file), add_eos="</s>"))
    assert run(eos_only, TEXTS)["n_tokens"] == [len(ids) + 1 for ids in plain]
    assert "token_ids" not in run(eos_only, TEXTS)


def test_empty_text_counts_zero_and_is_kept(bpe_file):
    stage = Tokenize(TokenizeConfig(tokenizer=str(bpe_file), ids=True, add_bos="<s>",
                                    add_eos="</s>"))
    texts = [None, "", "  \n", "river", None]
    out = stage.process(pa.table({"text": pa.array(texts, pa.string())}))
    assert out.reasons is None
    got = out.table.to_pydict()
    assert got["n_tokens"] == [0, 0, 0, 2 + len(raw(bpe_file, ["river"], False)[0]), 0]
    assert got["token_ids"][:3] == [[], [], []] and got["token_ids"][4] == []
    assert out.table.schema.field("token_ids").type == pa.list_(pa.uint32())
    assert out.table.schema.field("n_tokens").type == pa.int64()
    all_empty = run(stage, [None, ""])
    assert all_empty["n_tokens"] == [0, 0] and all_empty["token_ids"] == [[], []]


def test_min_and_max_tokens_reject_with_the_count(bpe_file):
    counts = [len(ids) for ids in raw(bpe_file, TEXTS)]
    stage = Tokenize(TokenizeConfig(tokenizer=str(bpe_file), min_tokens=5, max_tokens=1000))
    reasons = stage.process(pa.table({"text": TEXTS + [None]})).reasons.to_pylist()
    expected = [f"too_few_tokens:tokens={c}" if c < 5 else
                f"too_many_tokens:tokens={c}" if c > 1000 else None for c in counts + [0]]
    assert reasons == expected
    assert reasons[-1] == "too_few_tokens:tokens=0" and reasons[-2].startswith("too_many")


def test_validation_names_the_missing_file_and_token(tmp_path, bpe_file):
    with pytest.raises(ValidationError, match=f"{tmp_path}/nothing.json"):
        TokenizeConfig(tokenizer=str(tmp_path / "nothing.json"))
    with pytest.raises(ValidationError, match=f"folder {tmp_path} has no tokenizer.json"):
        TokenizeConfig(tokenizer=str(tmp_path))
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(ValidationError, match="bad.json is not a tokenizers"):
        TokenizeConfig(tokenizer=str(tmp_path / "bad.json"))
    with pytest.raises(ValidationError, match="'<bos>' is not in the tokenizer"):
        TokenizeConfig(tokenizer=str(bpe_file), add_bos="<bos>")
    with pytest.raises(ValidationError, match="id 99999 is outside"):
        TokenizeConfig(tokenizer=str(bpe_file), add_eos=99999)
    with pytest.raises(ValidationError, match="not true/false"):
        TokenizeConfig(tokenizer=str(bpe_file), add_eos=True)
    with pytest.raises(ValidationError, match="min_tokens"):
        TokenizeConfig(tokenizer=str(bpe_file), min_tokens=9, max_tokens=3)


def test_spec_validation_points_at_the_missing_file(tmp_path):
    write_jsonl(tmp_path / "in" / "a.jsonl", [{"id": "a", "text": "river"}])
    spec = write_spec(tmp_path / "job.yaml", """\
name: tok
input: {format: jsonl, paths: ["in/*.jsonl"]}
output: {path: out}
stages:
  - tokenize: {tokenizer: models/missing}
""")
    with pytest.raises(Exception, match=str(tmp_path / "models" / "missing")):
        load_spec(spec)


def test_tokenize_through_a_job(tmp_path, ray_cluster, bpe_file):
    texts = [make_text(i, 3 + 11 * i) for i in range(12)] + SENTENCES
    rows = [{"id": f"d{i}", "text": t} for i, t in enumerate(texts)]
    rows += [{"id": "empty", "text": ""}, {"id": "null", "text": None}]
    write_jsonl(tmp_path / "in" / "a.jsonl", rows[:9])
    write_jsonl(tmp_path / "in" / "b.jsonl", rows[9:])
    spec = write_spec(tmp_path / "job.yaml", f"""\
name: tok
input: {{format: jsonl, paths: ["in/*.jsonl"]}}
output: {{path: out}}
stages:
  - tokenize: {{tokenizer: "{bpe_file}", ids: true, add_eos: "</s>", min_tokens: 8}}
""")
    run_job(load_spec(spec), progress=False)
    manifests = assert_accounting(tmp_path / "out")
    kept = pq.read_table(tmp_path / "out" / "data").to_pylist()
    rejected = pq.read_table(tmp_path / "out" / "rejected").to_pylist()
    assert len(kept) + len(rejected) == len(rows)
    plain = dict(zip([r["id"] for r in rows], raw(bpe_file, [r["text"] or "" for r in rows],
                                                  special=False)))
    for row in kept:
        assert row["token_ids"] == plain[row["id"]] + [1]
        assert row["n_tokens"] == len(plain[row["id"]]) + 1 >= 8
    # a null text never reaches a stage: the reader rejects it
    assert [r["reason"] for r in rejected if r["id"] == "null"] == ["missing_text"]
    ours = [r for r in rejected if r["stage"] == "tokenize"]
    for row in ours:
        expected = 0 if row["id"] == "empty" else len(plain[row["id"]]) + 1
        assert row["reason"] == f"too_few_tokens:tokens={expected}"
    assert "empty" in {r["id"] for r in ours} and len(ours) == len(rejected) - 1
    assert sum(s["rejected"] for m in manifests for s in m["stages"]
               if s["stage"] == "tokenize") == len(ours)


def test_encoding_threads_follow_cpus(monkeypatch, bpe_file):
    from stages._tokenize.threads import limit_threads

    for name in ("TOKENIZERS_PARALLELISM", "RAYON_NUM_THREADS"):
        monkeypatch.delenv(name, raising=False)
    assert limit_threads(1) == 1
    assert os.environ["TOKENIZERS_PARALLELISM"] == "false"
    assert "RAYON_NUM_THREADS" not in os.environ  # no pool at all, so no size
    assert limit_threads(2.5) == 2
    assert (os.environ["TOKENIZERS_PARALLELISM"], os.environ["RAYON_NUM_THREADS"]) == \
        ("true", "2")
    # a worker of two CPUs asks Ray for two and encodes the same ids in parallel
    pair = Tokenize(TokenizeConfig(tokenizer=str(bpe_file), ids=True, cpus=2))
    assert pair.resources().cpus == 2
    texts = TEXTS * 50
    assert run(pair, texts)["token_ids"] == raw(bpe_file, texts)
