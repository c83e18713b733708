"""`pipeline train-classifier --from OUT`: distil labels into a head on a frozen encoder.

    pipeline train-classifier --from out/edu-annotated --label-column edu_score \\
        --task regression --encoder /models/all-MiniLM-L6-v2 --out models/edu-head

As FineWeb-Edu trained a regression head on a BERT-like encoder's embeddings from an LLM's
scores: the kept documents of a finished job (OUT) that carry a label are embedded by the
encoder (or their embeddings are read from an `embed` step's column, `--embedding-column`),
split into training and held-out rows (stratified by label, rounded for regression;
seeded), and a small head is fitted on the training rows (`head_fit.py`). The held-out
metrics (`head_metrics.py`) are printed and saved beside the model.

The model folder is what `classify: {engine: transformers, model: MODEL_DIR}` loads
(stages/_classify/head.py):
    head.json, head.safetensors   the head (on L2-normalised pooled vectors, as `embed` gives)
    encoder/                      a copy of the encoder (files hard-linked where possible);
                                  with --link-encoder, head.json names the encoder's folder
    metrics.json                  the held-out metrics, the split and how it was trained
    heldout.parquet               the held-out rows: id, label and the head's prediction
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from dataclasses import asdict, dataclass

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from stages._classify.head import HEAD_CONFIG, save_head
from stages._classify.head_fit import (CLASSIFICATION, REGRESSION, FitOptions, fit_head,
                                       head_outputs, stratified_split)
from stages._classify.head_metrics import classification_metrics, describe, \
    regression_metrics

METRICS_FILE, HELDOUT_FILE, ENCODER_FOLDER = "metrics.json", "heldout.parquet", "encoder"
MAX_CLASSES = 100  # more distinct labels than this is a score: use --task regression
_ENCODE_CHUNK = 2048


class HeadTrainingError(ValueError):
    """Inputs that cannot train a head; the message says what to change."""


@dataclass(frozen=True)
class Labelled:
    """The labelled kept rows of a job, in file order."""

    ids: list
    labels: list
    texts: list[str] | None        # when the encoder must run
    embeddings: np.ndarray | None  # [rows, dim], when read from a column


@dataclass(frozen=True)
class EncoderSettings:
    """How the training vectors were made; `classify` must read documents the same way."""

    path: str
    pooling: str | None = None     # None: the folder's own (what embed's `auto` takes)
    max_length: int | None = None  # None: the encoder's default, as classify's


def train_head(source: str, label_column: str, task: str, out: str, *,
               encoder: str | None = None, embedding_column: str | None = None,
               text_column: str = "text", holdout: float = 0.1, seed: int = 0,
               cut: float = 3.0, link_encoder: bool = False, max_length: int | None = None,
               batch_tokens: int = 16384, cpus: int | None = None, log=None,
               **fit_options) -> dict:
    """Train a head on the labelled kept documents of the job output `source`, write the
    model folder `out`, and return what metrics.json holds."""
    log = log or (lambda message: None)
    if task not in (REGRESSION, CLASSIFICATION):
        raise HeadTrainingError(f"--task must be {REGRESSION} or {CLASSIFICATION}, got {task!r}")
    if not 0 <= holdout < 1:
        raise HeadTrainingError(f"--holdout must be in [0, 1), got {holdout}")
    _check_out(out)
    fit = FitOptions(seed=seed, **fit_options)
    clock = _Clock()
    job = _job_output(source)
    settings = _encoder_settings(job, encoder, embedding_column, max_length)
    data = read_labelled(job, label_column, text_column, embedding_column)
    y, strata, labels = _targets(data.labels, task, label_column)
    clock.lap("read")
    if data.embeddings is not None:
        x = data.embeddings
    else:
        log(f"embedding {len(data.texts):,} documents with {settings.path}")
        x = embed_texts(data.texts, settings, batch_tokens, cpus, log)
        clock.lap("embed")
    train_rows, held_rows = stratified_split(strata, holdout, seed)
    if len(train_rows) < 2:
        raise HeadTrainingError(f"only {len(train_rows)} labelled training documents; "
                                "label more documents or lower --holdout")
    fitted = fit_head(x, y[train_rows], task, 1 if task == REGRESSION else len(labels),
                      strata[train_rows], fit, rows=train_rows)
    clock.lap("fit")
    heldout, predictions = _evaluate(fitted, task, labels, x[held_rows], y[held_rows], cut,
                                     float(y[train_rows].mean()))
    record = {
        "task": task, "label_column": label_column, "source": os.path.abspath(source),
        "labels": labels, "embedding_column": embedding_column,
        "encoder": asdict(settings),
        "split": {"seed": seed, "holdout": holdout, "stratified_by":
                  "rounded label" if task == REGRESSION else "label",
                  "train_docs": int(len(train_rows) - fitted.validation_rows),
                  "validation_docs": fitted.validation_rows,
                  "heldout_docs": int(len(held_rows))},
        "head": asdict(fit) | {"steps": fitted.steps, "best_step": fitted.best_step,
                               "validation_loss": fitted.validation_loss},
        "classify": {"engine": "transformers", "model": os.path.abspath(out),
                     "max_length": settings.max_length},
        "heldout": heldout,
        "seconds": clock.laps,
    }
    shown = (lambda v: v) if task == REGRESSION else str
    held_table = pa.table({"id": [data.ids[i] for i in held_rows],
                           "label": [shown(data.labels[i]) for i in held_rows],
                           "prediction": predictions})
    _write_model(out, fitted, task, labels, settings, link_encoder, record, held_table)
    return record


def _evaluate(fitted, task: str, labels: list[str], x: np.ndarray, y: np.ndarray, cut: float,
              train_mean: float) -> tuple[dict, list]:
    """The held-out metrics and each held-out row's prediction (a score, or a label)."""
    outputs = head_outputs(fitted.layers, fitted.activations, x)
    if task == REGRESSION:
        predicted = outputs[:, 0].astype(np.float64)
        return regression_metrics(y, predicted, cut, train_mean), predicted.tolist()
    predicted = outputs.argmax(axis=1)
    return classification_metrics(y, predicted, labels), [labels[k] for k in predicted]


class _Clock:
    """Seconds spent in each phase (read, embed, fit), for metrics.json."""

    def __init__(self):
        self.laps: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps[name] = round(now - self._last, 3)
        self._last = now


def _job_output(source: str):
    from pipeline.browse.output import BrowseError, JobOutput

    try:
        return JobOutput(source)
    except BrowseError as exc:
        raise HeadTrainingError(f"{exc}; --from takes a finished job's output folder") from None


def read_labelled(job, label_column: str, text_column: str = "text",
                  embedding_column: str | None = None) -> Labelled:
    """The kept rows with a label (and text, or an embedding), in file order."""
    from pipeline.browse.output import KEPT, ROW
    from pipeline.stage import has_text

    have = job.columns[KEPT]
    for column in (label_column, embedding_column or text_column):
        if column not in have:
            raise HeadTrainingError(f"the kept documents of {job.root} have no column "
                                    f"{column!r} (columns: {', '.join(have)})")
    data = embedding_column or text_column
    # rows come in file order: DuckDB keeps a scan's order (no ORDER BY, which would hold
    # every vector in memory once more)
    rows = job.con.sql(
        f'SELECT {"id" if "id" in have else ROW} AS id, "{label_column}" AS label, '
        f'"{data}" AS data FROM {job.scan((KEPT,))} '
        f'WHERE "{label_column}" IS NOT NULL AND "{data}" IS NOT NULL')
    if embedding_column is None:
        table = rows.to_arrow_table()
        table = table.filter(pa.array(has_text(table["data"])))
        labelled = Labelled(table["id"].to_pylist(), table["label"].to_pylist(),
                            table["data"].to_pylist(), None)
    else:
        labelled = _read_vectors(job, rows, label_column, embedding_column)
    if not labelled.ids:
        raise HeadTrainingError(f"no kept document of {job.root} has a {label_column!r} "
                                f"value{'' if embedding_column else ' and text'}")
    return labelled


def _read_vectors(job, rows, label_column: str, column: str) -> Labelled:
    """Stream the rows into one float32 matrix (sized by the labelled rows), so the
    vectors are held once."""
    from pipeline.browse.output import KEPT

    bound = job.con.execute(f'SELECT count(*) FROM {job.scan((KEPT,))} '
                            f'WHERE "{label_column}" IS NOT NULL').fetchall()[0][0]
    ids, labels, matrix, filled = [], [], None, 0
    for batch in rows.to_arrow_reader(8192):
        vectors = batch.column(2)
        flat = np.asarray(vectors.flatten().to_numpy(zero_copy_only=False), np.float32)
        if matrix is None and len(vectors):
            matrix = np.empty((bound, flat.size // len(vectors)), np.float32)
        if matrix is None:
            continue
        if flat.size != matrix.shape[1] * len(vectors):
            raise HeadTrainingError(f"column {column!r} holds vectors of different sizes; "
                                    "give an `embed` step's column")
        matrix[filled:filled + len(vectors)] = flat.reshape(len(vectors), -1)
        filled += len(vectors)
        ids += batch.column(0).to_pylist()
        labels += batch.column(1).to_pylist()
    return Labelled(ids, labels, None, None if matrix is None else matrix[:filled])


def _encoder_settings(job, encoder: str | None, embedding_column: str | None,
                      max_length: int | None) -> EncoderSettings:
    """The encoder, and the pooling and length an `embed` step used for the column read."""
    step = None
    if embedding_column:
        step = next((options for name, options in job.steps
                     if name == "embed" and options.get("column") == embedding_column), None)
    if step is None:
        if not encoder:
            raise HeadTrainingError(
                "--encoder is needed: the folder of the encoder the head is trained on "
                "(and that `classify` will run)" + (
                    f"; no `embed` step of {job.root} wrote {embedding_column!r}"
                    if embedding_column else ""))
        return EncoderSettings(os.path.abspath(encoder), None, max_length)
    if step.get("long_documents", "truncate") != "truncate":
        raise HeadTrainingError(
            f"the `embed` step that wrote {embedding_column!r} averaged chunks of long "
            "documents; `classify` reads a document's first tokens only, so its scores "
            "would differ: embed with `long_documents: truncate`, or train without "
            "--embedding-column")
    model = os.path.abspath(step["model"])
    if encoder and os.path.realpath(encoder) != os.path.realpath(model):
        raise HeadTrainingError(f"--encoder {encoder} is not the encoder that wrote "
                                f"{embedding_column!r} ({model}); leave --encoder out or "
                                "give that folder")
    if max_length and step.get("max_length") and max_length != step["max_length"]:
        raise HeadTrainingError(f"--max-length {max_length}: the embeddings were made with "
                                f"max_length {step['max_length']}")
    pooling = step.get("pooling", "auto")
    return EncoderSettings(model, None if pooling == "auto" else pooling,
                           step.get("max_length") or max_length)


def _targets(values: list, task: str, column: str) -> tuple[np.ndarray, np.ndarray, list]:
    """(targets, strata, label names): floats and their rounding for regression; class
    indices (twice) and the sorted class names for classification."""
    if task == REGRESSION:
        try:
            y = np.asarray(values, np.float64)
        except (TypeError, ValueError):
            raise HeadTrainingError(f"column {column!r} is not numeric (e.g. "
                                    f"{values[0]!r}); use --task classification") from None
        if not np.isfinite(y).all():
            raise HeadTrainingError(f"column {column!r} holds NaN or infinite values")
        return y, np.rint(y).astype(np.int64), [column]
    classes = sorted(set(values), key=lambda v: (isinstance(v, str), v))
    if len(classes) < 2:
        raise HeadTrainingError(f"column {column!r} has one class ({classes[0]!r}); a "
                                "classifier needs two or more")
    if len(classes) > MAX_CLASSES:
        raise HeadTrainingError(f"column {column!r} has {len(classes)} distinct values; "
                                "for a score use --task regression")
    index = {v: k for k, v in enumerate(classes)}
    y = np.array([index[v] for v in values], np.int64)
    return y, y, [str(v) for v in classes]


def embed_texts(texts: list[str], settings: EncoderSettings, batch_tokens: int = 16384,
                cpus: int | None = None, log=None) -> np.ndarray:
    """Unit vectors as the `embed` stage (and `classify` on an encoder + head) computes them."""
    import torch

    from stages.embed import Embed, EmbedConfig

    gpu = torch.cuda.is_available()
    stage = Embed(EmbedConfig(model=settings.path, max_length=settings.max_length,
                              pooling=settings.pooling or "auto", batch_tokens=batch_tokens,
                              dtype="float32", gpus=1 if gpu else 0,
                              cpus=cpus or os.cpu_count() or 1))
    parts = []
    for start in range(0, len(texts), _ENCODE_CHUNK):
        parts.append(stage.embed(texts[start:start + _ENCODE_CHUNK]))
        if log and len(texts) > _ENCODE_CHUNK:
            log(f"  {min(start + _ENCODE_CHUNK, len(texts)):,} / {len(texts):,}")
    return np.concatenate(parts) if parts else np.zeros((0, 0), np.float32)


def _check_out(out: str) -> None:
    """Refuse to replace a folder that is not a trained head (it may be anything)."""
    if os.path.isdir(out) and os.listdir(out) and \
            not os.path.isfile(os.path.join(out, HEAD_CONFIG)):
        raise HeadTrainingError(f"--out {out} is a folder that holds something other than a "
                                "trained head; give a new or empty folder")
    if os.path.exists(out) and not os.path.isdir(out):
        raise HeadTrainingError(f"--out {out} is a file; give a folder")


def _write_model(out: str, fitted, task: str, labels: list[str], settings: EncoderSettings,
                 link_encoder: bool, record: dict, heldout: pa.Table) -> None:
    """Write the folder next to `out` and move it into place, so a failure leaves the old
    model (if any) whole."""
    out = os.path.abspath(out)
    partial = out + ".partial"
    shutil.rmtree(partial, ignore_errors=True)
    os.makedirs(partial)
    if link_encoder:
        reference = os.path.relpath(settings.path, out)  # `partial` lies beside `out`
    else:
        shutil.copytree(settings.path, os.path.join(partial, ENCODER_FOLDER),
                        copy_function=_link_or_copy, ignore=shutil.ignore_patterns(".git"))
        reference = ENCODER_FOLDER
    problem = REGRESSION if task == REGRESSION else "single_label_classification"
    save_head(partial, fitted.layers, fitted.activations, problem, labels,
              pooling=settings.pooling, normalize=True, encoder=reference)
    with open(os.path.join(partial, METRICS_FILE), "w", encoding="utf-8") as f:
        json.dump(record, f, indent=1)
    pq.write_table(heldout, os.path.join(partial, HELDOUT_FILE))
    if os.path.isdir(out):
        shutil.rmtree(out)
    os.rename(partial, out)


def _link_or_copy(source: str, target: str) -> str:
    try:
        os.link(source, target)  # the encoder's weights are large and never written to
    except OSError:
        shutil.copy2(source, target)
    return target


def add_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = FitOptions()
    parser.add_argument("--from", dest="source", required=True, metavar="OUT",
                        help="a finished job's output folder; its kept documents are read")
    parser.add_argument("--label-column", required=True, help="the label, e.g. edu_score")
    parser.add_argument("--task", required=True, choices=(REGRESSION, CLASSIFICATION))
    parser.add_argument("--out", required=True, help="the model folder to write")
    parser.add_argument("--encoder", help="the encoder folder (Hugging Face or "
                        "sentence-transformers); optional with --embedding-column when an "
                        "`embed` step of the job wrote it")
    parser.add_argument("--embedding-column", help="read the documents' vectors from this "
                        "column (an `embed` step's) instead of running the encoder")
    parser.add_argument("--text-column", default="text")
    parser.add_argument("--holdout", type=float, default=0.1,
                        help="share of documents held out (stratified by label)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cut", type=float, default=3.0, help="regression: report "
                        "precision/recall/F1 of score >= cut (FineWeb-Edu keeps >= 3)")
    parser.add_argument("--hidden", type=int, default=defaults.hidden,
                        help="0: a linear head; N: one ReLU layer of N units")
    parser.add_argument("--lr", type=float, default=defaults.lr)
    parser.add_argument("--weight-decay", type=float, default=defaults.weight_decay)
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--max-steps", type=int, default=defaults.max_steps)
    parser.add_argument("--max-length", type=int, help="tokens read per document (default: "
                        "the encoder's limit, as classify's default)")
    parser.add_argument("--batch-tokens", type=int, default=16384)
    parser.add_argument("--link-encoder", action="store_true", help="name the encoder's "
                        "folder in head.json instead of copying it into the model folder")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="pipeline train-classifier",
        description="Train a head on a frozen encoder's embeddings from the labelled kept "
                    "documents of a job; prints held-out metrics and writes a model folder "
                    "for `classify: {engine: transformers}`.")
    add_arguments(parser)
    args = parser.parse_args(argv)
    say = lambda message: print(message, file=sys.stderr, flush=True)  # noqa: E731
    try:
        record = train_head(
            args.source, args.label_column, args.task, args.out, encoder=args.encoder,
            embedding_column=args.embedding_column, text_column=args.text_column,
            holdout=args.holdout, seed=args.seed, cut=args.cut,
            link_encoder=args.link_encoder, max_length=args.max_length,
            batch_tokens=args.batch_tokens, log=say, hidden=args.hidden, lr=args.lr,
            weight_decay=args.weight_decay, batch_size=args.batch_size,
            max_steps=args.max_steps)
    except (HeadTrainingError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    split = record["split"]
    print(f"model: {record['classify']['model']}")
    print(f"documents: {split['train_docs']} train, {split['validation_docs']} to decide "
          f"when to stop, {split['heldout_docs']} held out (stratified by "
          f"{split['stratified_by']}, seed {split['seed']})")
    for line in describe(record["heldout"]):
        print(line)
    print(f"metrics: {os.path.join(record['classify']['model'], METRICS_FILE)}")
    options = f", max_length: {record['classify']['max_length']}" \
        if record["classify"]["max_length"] else ""
    print(f"use it: classify: {{engine: transformers, model: {record['classify']['model']}, "
          f"column: NAME{options}, threshold: null}}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
