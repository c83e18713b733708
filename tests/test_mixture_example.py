"""examples/mixture/ end to end, as its README runs it: train the quality classifier on the
bundled sets, run the spec (length_filter -> tokenize -> classify -> bucket -> mix) on the
bundled sample, export the mixture as Megatron files and read them back with megatron-core."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pipeline.cli import main as cli_main
from pipeline.runner import run_job
from pipeline.spec import load_spec
from tests.conftest import assert_accounting

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "mixture"
EOS = "</s>"


@pytest.fixture(scope="module")
def example(tmp_path_factory, ray_cluster) -> Path:
    """The README's three commands, in a copy of the repository's layout (examples/mixture/
    next to examples/data/, out/ beside them) so the spec's relative paths hold as written."""
    root = tmp_path_factory.mktemp("repo")
    shutil.copytree(EXAMPLE, root / "examples" / "mixture")
    (root / "examples" / "data").symlink_to(ROOT / "examples" / "data")
    data = root / "examples" / "data" / "classifier"
    assert cli_main(["train-classifier", "--positive", str(data / "hq.jsonl"), "--negative",
                     str(data / "lq.jsonl"), "--out", str(root / "out" / "hq.bin")]) == 0
    run_job(load_spec(root / "examples" / "mixture" / "mixture.yaml"), progress=False)
    assert cli_main(["export", str(root / "out" / "mixture"), "--format", "megatron",
                     "--tokenizer", str(root / "examples" / "mixture" / "tokenizer.json"),
                     "--add-eos", EOS, "--shuffle", "--seed", "0",
                     "--out", str(root / "out" / "mixture-megatron")]) == 0
    return root / "out"


def kept(out: Path) -> list[dict]:
    return pq.read_table(out / "mixture" / "data").to_pylist()


def test_the_mixture_halves_the_lowest_bucket_and_repeats_the_highest(example):
    assert_accounting(example / "mixture")
    summary = json.loads((example / "mixture" / "report" / "summary.json").read_text())
    funnel = {step["stage"]: step for step in summary["funnel"]}
    assert funnel["length_filter"]["kept"] == 205 and funnel["mix"]["in"] == 205
    rows = kept(example)
    assert {r["repeat"] for r in rows if r["bucket"] == 3} == {2}
    assert {r["repeat"] for r in rows if r["bucket"] != 3} == {1}
    per_bucket = Counter(r["bucket"] for r in rows)
    # quartiles of 205 scored documents; the lowest keeps about half of its tokens
    assert 0 < per_bucket[0] < 0.7 * per_bucket[1] and per_bucket[1] == per_bucket[2] == 51


def test_megatron_files_hold_every_copy_as_the_tokenizer_encodes_it(example):
    from megatron.core.datasets.indexed_dataset import IndexedDataset
    from tokenizers import Tokenizer

    manifest = json.loads((example / "mixture-megatron" / "manifest.json").read_text())
    tokenizer = Tokenizer.from_file(str(EXAMPLE / "tokenizer.json"))
    eos = tokenizer.token_to_id(EOS)
    rows = kept(example)
    expected = sorted(tokenizer.encode(r["text"], add_special_tokens=False).ids + [eos]
                      for r in rows for _ in range(r["repeat"]))
    got = []
    for entry in manifest["files"]:
        dataset = IndexedDataset(str(example / "mixture-megatron" / entry["name"]))
        got += [dataset[i].tolist() for i in range(len(dataset))]
    assert sorted(got) == expected and got != expected  # every copy, shuffled
    assert manifest["documents"] == sum(r["repeat"] for r in rows) == len(got)
    assert manifest["tokens"] == sum(r["repeat"] * r["n_tokens"] for r in rows)
    assert manifest["plan"]["reuse_ids"] is True  # the job's token_ids, as README says
    assert manifest["dtype"] == "uint16"
