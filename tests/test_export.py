"""`pipeline export`: the ids in the written files equal `tokenizers`' own encoding (read
back with megatron-core's IndexedDataset and with numpy), BOS/EOS placement, the dtype at the
vocabulary boundary, repeats, file cutting, the seeded shuffle, reuse of a job's token_ids,
accounting, Ray against in-process, and a killed export resumed without a duplicate."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from pipeline.cli import main as cli_main
from pipeline.export.options import ExportOptions, parse_size, token_dtype
from pipeline.export.run import run_export
from pipeline.export.source import ExportError
from pipeline.runner import run_job
from pipeline.spec import load_spec
from tests.conftest import assert_accounting, kill_tree, make_text, write_parquet, write_spec

ROOT = Path(__file__).resolve().parents[1]
# 40 documents over 4 shards; repeats 0..3 (0: not exported) and a whitespace-only text.
ROWS = [{"id": f"doc-{i:03d}", "text": make_text(i, 5 + (i * 7) % 40) + f" number {i}.",
         "repeat": [1, 2, 0, 3][i % 4] if i % 5 else None} for i in range(40)]
ROWS[13]["text"] = "   "


@pytest.fixture(scope="module")
def bpe(tmp_path_factory) -> Path:
    """A byte-level BPE with <s> and </s>, trained on the corpus."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.train_from_iterator([r["text"] for r in ROWS], trainers.BpeTrainer(
        vocab_size=400, special_tokens=["<s>", "</s>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    path = tmp_path_factory.mktemp("bpe") / "tokenizer.json"
    tokenizer.save(str(path))
    return path


def run_corpus_job(folder: Path, stages: str, rows=ROWS) -> Path:
    write_parquet(folder / "in" / "corpus.parquet", rows, row_group_size=10)
    spec = write_spec(folder / "job.yaml", f"""
name: export-input
input: {{format: parquet, paths: [in/corpus.parquet], shard_rows: 10}}
output: {{path: out}}
stages:
{stages}
""")
    run_job(load_spec(spec), progress=False)
    assert_accounting(folder / "out")
    return folder / "out"


@pytest.fixture(scope="module")
def job(tmp_path_factory, bpe, ray_cluster) -> Path:
    """A job that counts tokens without keeping ids: the export encodes."""
    return run_corpus_job(tmp_path_factory.mktemp("job"),
                          f"  - tokenize: {{tokenizer: {bpe}}}\n")


@pytest.fixture(scope="module")
def job_with_ids(tmp_path_factory, bpe, ray_cluster) -> Path:
    return run_corpus_job(tmp_path_factory.mktemp("job_ids"),
                          f"  - tokenize: {{tokenizer: {bpe}, ids: true, add_eos: '</s>'}}\n")


def export(job: Path, out: Path, **options) -> dict:
    mode = options.pop("mode", "local")
    return run_export(ExportOptions(source=str(job), out=str(out), **options), mode=mode)


def kept_texts(job: Path) -> list[tuple[str, str, int]]:
    """(id, text, repeat) of the kept rows, in the job's order (shard, row)."""
    import pyarrow.parquet as pq

    out = []
    for path in sorted((job / "data").glob("part-*.parquet")):
        for row in pq.read_table(path, columns=["id", "text", "repeat"]).to_pylist():
            out.append((row["id"], row["text"], 1 if row["repeat"] is None else row["repeat"]))
    return out


def expected_ids(bpe: Path, job: Path, bos: int | None = None, eos: int | None = None
                 ) -> list[list[int]]:
    """`tokenizers`' own encoding of each exported copy, in the job's order (a text of only
    whitespace has no tokens, as in `tokenize`, and is not exported)."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(bpe))
    out = []
    for _, text, repeat in kept_texts(job):
        ids = tokenizer.encode(text, add_special_tokens=False).ids
        if text.strip():
            out += [([bos] if bos is not None else []) + ids +
                    ([eos] if eos is not None else [])] * repeat
    return out


def megatron_documents(out: Path) -> list[list[int]]:
    from megatron.core.datasets.indexed_dataset import IndexedDataset

    manifest = json.loads((out / "manifest.json").read_text())
    docs = []
    for entry in manifest["files"]:
        dataset = IndexedDataset(str(out / entry["name"]))
        assert len(dataset) == entry["documents"] == len(dataset.document_indices) - 1
        docs += [dataset[i].tolist() for i in range(len(dataset))]
    return docs


def numpy_documents(out: Path) -> list[list[int]]:
    manifest = json.loads((out / "manifest.json").read_text())
    docs = []
    for entry in manifest["files"]:
        tokens = np.memmap(out / f"{entry['name']}.npy", dtype=manifest["dtype"], mode="r")
        starts = np.load(out / f"{entry['name']}.docs.npy")
        assert starts[-1] == len(tokens) == entry["tokens"]
        docs += [tokens[a:b].tolist() for a, b in zip(starts[:-1], starts[1:])]
    return docs


def jsonl_documents(out: Path) -> list[dict]:
    manifest = json.loads((out / "manifest.json").read_text())
    return [json.loads(line) for entry in manifest["files"]
            for line in (out / f"{entry['name']}.jsonl").read_text().splitlines()]


# -- what is written ----------------------------------------------------------------------------
def test_megatron_files_hold_tokenizers_own_ids_with_eos(job, bpe, tmp_path):
    manifest = export(job, tmp_path / "mg", format="megatron", tokenizer=str(bpe),
                      add_eos="</s>", file_size=2000)
    expected = expected_ids(bpe, job, eos=1)
    assert megatron_documents(tmp_path / "mg") == expected
    assert all(doc[-1] == 1 and 1 not in doc[:-1] for doc in expected)
    assert manifest["dtype"] == "uint16" and len(manifest["files"]) > 1
    assert manifest["plan"]["reuse_ids"] is False


def test_numpy_memmaps_hold_tokenizers_own_ids_with_bos_and_eos(job, bpe, tmp_path):
    export(job, tmp_path / "np", format="numpy", tokenizer=str(bpe), add_bos="<s>",
           add_eos=1, file_size=3000)
    docs = numpy_documents(tmp_path / "np")
    assert docs == expected_ids(bpe, job, bos=0, eos=1)
    assert all(d[0] == 0 and d[-1] == 1 and 0 not in d[1:-1] for d in docs)


def test_accounting_repeats_and_empty_documents(job, bpe, tmp_path):
    manifest = export(job, tmp_path / "mg", format="megatron", tokenizer=str(bpe),
                      file_size=1500)
    kept = kept_texts(job)
    empty_copies = sum(r for _, text, r in kept if not text.strip())
    assert manifest["input"] == {"shards": 4, "rows": len(ROWS), "copies":
                                 sum(r for *_, r in kept), "empty": empty_copies}
    assert empty_copies == 2  # doc-013's repeat is 2
    assert manifest["documents"] == manifest["input"]["copies"] - empty_copies
    assert manifest["documents"] == sum(f["documents"] for f in manifest["files"])
    assert manifest["tokens"] == sum(map(len, megatron_documents(tmp_path / "mg")))
    for entry in manifest["files"]:
        assert (tmp_path / "mg" / f"{entry['name']}.bin").stat().st_size == entry["bytes"] \
            == 2 * entry["tokens"]
    assert not (tmp_path / "mg" / "_work").exists()


def test_jsonl_keeps_ids_and_texts_with_their_repeats(job, tmp_path):
    export(job, tmp_path / "js", format="jsonl", file_size=parse_size("1KB"))
    got = jsonl_documents(tmp_path / "js")
    assert got == [{"id": i, "text": t} for i, t, r in kept_texts(job) for _ in range(r)]
    assert [d["id"] for d in got].count("doc-003") == 3
    assert "doc-002" not in {d["id"] for d in got}  # repeat 0


def test_files_are_cut_at_the_target_size(job, tmp_path):
    size = 1500
    manifest = export(job, tmp_path / "js", format="jsonl", file_size=size)
    lines = [len((json.dumps(d, ensure_ascii=False) + "\n").encode())
             for d in jsonl_documents(tmp_path / "js")]
    assert len(manifest["files"]) == (sum(lines) - lines[-1]) // size + 1
    for entry in manifest["files"][:-1]:  # a document goes to the file where it starts
        assert size - max(lines) < entry["bytes"] < size + max(lines)
    for entry in manifest["files"]:
        assert (tmp_path / "js" / f"{entry['name']}.jsonl").stat().st_size == entry["bytes"]


# -- dtype --------------------------------------------------------------------------------------
@pytest.mark.parametrize("vocab, numpy_dtype, megatron_dtype", [
    (2**16, np.uint16, np.uint16), (2**16 + 1, np.uint32, np.int32)])
def test_dtype_at_the_vocabulary_boundary(tmp_path, ray_cluster, vocab, numpy_dtype,
                                          megatron_dtype):
    from tokenizers import Tokenizer, models, pre_tokenizers

    words = {f"w{i}": i for i in range(vocab - 1)} | {"[UNK]": vocab - 1}
    tokenizer = Tokenizer(models.WordLevel(words, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer.save(str(tmp_path / "tokenizer.json"))
    top = [f"w{vocab - 2} w{vocab - 3} zzz w0", "w1 w65535 w65534 unknown"]
    job = run_corpus_job(tmp_path, f"  - tokenize: {{tokenizer: {tmp_path}}}\n",
                         rows=[{"id": str(i), "text": t} for i, t in enumerate(top)])
    expected = [[vocab - 2, vocab - 3, vocab - 1, 0],
                [1, min(65535, vocab - 1), 65534, vocab - 1]]
    assert token_dtype(vocab, "numpy") == numpy_dtype
    assert token_dtype(vocab, "megatron") == megatron_dtype
    for fmt, read, dtype in (("numpy", numpy_documents, numpy_dtype),
                             ("megatron", megatron_documents, megatron_dtype)):
        manifest = export(job, tmp_path / fmt, format=fmt, tokenizer=str(tmp_path))
        assert manifest["dtype"] == np.dtype(dtype).name
        assert read(tmp_path / fmt) == expected
    from megatron.core.datasets.indexed_dataset import IndexedDataset

    assert IndexedDataset(str(tmp_path / "megatron" / "part-00000")).index.dtype == megatron_dtype


# -- shuffle ------------------------------------------------------------------------------------
def test_same_seed_same_selection_and_order_across_file_sizes(job, tmp_path):
    runs = {name: export(job, tmp_path / name, format="jsonl", shuffle=True, seed=seed,
                         file_size=size) for name, seed, size in
            (("a", 7, 1500), ("b", 7, 1500), ("c", 7, 4000), ("d", 8, 1500))}
    docs = {name: jsonl_documents(tmp_path / name) for name in runs}
    assert docs["a"] == docs["b"] == docs["c"]  # the order is the seed's, not the files'
    assert len(runs["a"]["files"]) > len(runs["c"]["files"])
    for entry in runs["a"]["files"]:
        assert (tmp_path / "a" / f"{entry['name']}.jsonl").read_bytes() == \
            (tmp_path / "b" / f"{entry['name']}.jsonl").read_bytes()
    in_order = [{"id": i, "text": t} for i, t, r in kept_texts(job) for _ in range(r)]
    key = json.dumps
    assert sorted(map(key, docs["a"])) == sorted(map(key, in_order))  # the same selection
    assert docs["a"] != in_order and docs["d"] != docs["a"]


def test_shuffled_megatron_export_is_a_permutation_of_the_encoded_copies(job, bpe, tmp_path):
    export(job, tmp_path / "mg", format="megatron", tokenizer=str(bpe), shuffle=True,
           seed=3, file_size=1000)
    got = megatron_documents(tmp_path / "mg")
    expected = expected_ids(bpe, job)
    assert sorted(got) == sorted(expected) and got != expected


# -- reuse of the job's token_ids ---------------------------------------------------------------
def test_token_ids_of_the_same_tokenizer_are_reused_and_equal_encoding(job_with_ids, bpe,
                                                                        tmp_path):
    reused = export(job_with_ids, tmp_path / "reused", format="megatron", tokenizer=str(bpe),
                    add_eos=1)
    encoded = export(job_with_ids, tmp_path / "encoded", format="megatron",
                     tokenizer=str(bpe), add_eos="</s>", reencode=True)
    assert reused["plan"]["reuse_ids"] is True and encoded["plan"]["reuse_ids"] is False
    assert "sha256" in reused["plan"]["reuse_reason"]
    for suffix in (".bin", ".idx"):
        assert (tmp_path / "reused" / f"part-00000{suffix}").read_bytes() == \
            (tmp_path / "encoded" / f"part-00000{suffix}").read_bytes()
    assert megatron_documents(tmp_path / "reused") == expected_ids(bpe, job_with_ids, eos=1)


def test_token_ids_are_encoded_again_when_bos_eos_or_tokenizer_differ(job_with_ids, bpe,
                                                                      tmp_path):
    other = tmp_path / "other" / "tokenizer.json"
    other.parent.mkdir()
    other.write_text(bpe.read_text().replace('"<s>"', '"<bos>"'))
    no_eos = export(job_with_ids, tmp_path / "a", format="megatron", tokenizer=str(bpe))
    changed = export(job_with_ids, tmp_path / "b", format="megatron", tokenizer=str(other),
                     add_eos="</s>")
    assert no_eos["plan"]["reuse_ids"] is False and "add_bos/add_eos" in \
        no_eos["plan"]["reuse_reason"]
    assert changed["plan"]["reuse_ids"] is False and "differs" in \
        changed["plan"]["reuse_reason"]
    assert megatron_documents(tmp_path / "a") == expected_ids(bpe, job_with_ids)


# -- where it runs, resume ----------------------------------------------------------------------
def test_ray_tasks_write_the_same_files_as_one_process(job, bpe, tmp_path):
    for mode in ("local", "ray"):
        export(job, tmp_path / mode, format="megatron", tokenizer=str(bpe), shuffle=True,
               file_size=1500, mode=mode)
    names = sorted(p.name for p in (tmp_path / "local").iterdir() if p.suffix != ".json")
    assert names == sorted(p.name for p in (tmp_path / "ray").iterdir()
                           if p.suffix != ".json") and len(names) > 2
    for name in names:
        assert (tmp_path / "local" / name).read_bytes() == (tmp_path / "ray" / name).read_bytes()


def test_other_options_into_the_same_folder_are_refused(job, bpe, tmp_path):
    export(job, tmp_path / "x", format="jsonl")
    assert export(job, tmp_path / "x", format="jsonl")["documents"] > 0  # done: left as is
    with pytest.raises(ExportError, match="another export"):
        export(job, tmp_path / "x", format="jsonl", shuffle=True)
    (tmp_path / "y").mkdir()
    (tmp_path / "y" / "notes.txt").write_text("mine")
    with pytest.raises(ExportError, match="not an export"):
        export(job, tmp_path / "y", format="jsonl")


def test_cli_refuses_a_token_format_without_tokenizer(job, tmp_path, capsys):
    code = cli_main(["export", str(job), "--format", "numpy", "--out", str(tmp_path / "o")])
    assert code == 2 and "needs --tokenizer" in capsys.readouterr().err


HOLD = """
import os, sys, time
import pipeline.export.encode as encode, pipeline.export.formats as formats
import pipeline.export.write as write
write.CHUNK_DOCUMENTS = 3

def hold():
    with open(sys.argv[1], "w") as f:
        f.write(f"{os.getpid()}\\n")
    time.sleep(600)

add, write_sorted = formats.Writer.add, encode._write_sorted
def held_add(self, payload):
    add(self, payload)
    self.main.flush()
    if sys.argv[2] == "write" and "part-00001" in self.tmp_prefix:  # the 2nd file, half written
        hold()
def held_write_sorted(fs, path, *args):
    write_sorted(fs, path, *args)
    if sys.argv[2] == "encode" and path.endswith("part-00002.parquet"):  # before its marker
        hold()
formats.Writer.add, encode._write_sorted = held_add, held_write_sorted
from pipeline.cli import main
sys.exit(main(sys.argv[3:]))
"""


def killed_export(tmp_path: Path, args: list[str], phase: str) -> None:
    """Run `pipeline export ARGS` in a subprocess, held in `phase` (encode: the third shard
    written, its marker not; write: the second file half written), and kill it and all its
    children there."""
    hold = tmp_path / f"held-{phase}"
    with open(tmp_path / "export.log", "w") as log:
        proc = subprocess.Popen([sys.executable, "-c", HOLD, str(hold), phase, *args],
                                cwd=ROOT, start_new_session=True, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 90
        while not (hold.exists() and hold.read_text().endswith("\n")):
            assert time.monotonic() < deadline and proc.poll() is None, \
                (tmp_path / "export.log").read_text()
            time.sleep(0.05)
    finally:
        kill_tree(proc)


@pytest.fixture(scope="module")
def clean_export(job, bpe, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("clean") / "out"
    export(job, out, format="megatron", tokenizer=str(bpe), shuffle=True, file_size=1500)
    return out


def assert_same_export(out: Path, clean: Path) -> None:
    manifest = json.loads((clean / "manifest.json").read_text())
    assert json.loads((out / "manifest.json").read_text())["files"] == manifest["files"]
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in clean.iterdir())
    for entry in manifest["files"]:
        for name in entry["files"]:
            assert (out / name).read_bytes() == (clean / name).read_bytes()
    assert len(megatron_documents(out)) == manifest["documents"]  # none twice, none missing


def export_args(job: Path, bpe: Path, out: Path) -> list[str]:
    return ["export", str(job), "--format", "megatron", "--tokenizer", str(bpe), "--out",
            str(out), "--shuffle", "--file-size", "1500", "--local"]


def test_export_killed_while_writing_a_file_resumes_without_duplicating_a_document(
        job, bpe, clean_export, tmp_path):
    out = tmp_path / "killed"
    killed_export(tmp_path, export_args(job, bpe, out), "write")
    assert (out / "part-00000.bin").exists() and not (out / "part-00001.bin").exists()
    assert list((out / "_work" / "tmp").glob("part-00001.*"))  # the half-written file
    first = (out / "part-00000.bin").stat().st_mtime_ns

    assert cli_main(export_args(job, bpe, out)) == 0
    assert (out / "part-00000.bin").stat().st_mtime_ns == first  # not written again
    assert_same_export(out, clean_export)


def test_export_killed_while_encoding_resumes_from_the_committed_shards(
        job, bpe, clean_export, tmp_path, capsys):
    out = tmp_path / "killed"
    killed_export(tmp_path, export_args(job, bpe, out), "encode")
    encoded = out / "_work" / "encoded"
    assert sorted(p.name for p in encoded.glob("*.json")) == ["part-00000.json",
                                                              "part-00001.json"]
    assert (encoded / "part-00002.parquet").exists()  # written, not committed
    assert not list(out.glob("part-*"))

    assert cli_main(export_args(job, bpe, out)) == 0
    assert "encode: 4 shards (2 already done)" in capsys.readouterr().out
    assert_same_export(out, clean_export)
