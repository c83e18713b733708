"""`classify` with `engine: transformers`: a sequence classifier from a local folder, either
an `AutoModelForSequenceClassification` folder or an encoder + head folder (`head.py`).

What it writes depends on the model's head (columns named from `column`, here `edu`):
- regression (one output, e.g. FineWeb-Edu's): `edu` = the score; `int_score: true` adds
  `edu_int`, the score rounded and clipped to `int_range`;
- single-label: `edu_label` = the most likely label, `edu` = the probability of `label`
  (default: the second label of a two-label model, else the most likely label's);
- multi-label: `edu_<label>` = each label's probability (sigmoid).
Filtering (`mode: filter`): `keep_labels` rejects other argmax labels (single-label) or rows
where no kept label reaches `threshold` (multi-label, default 0.5); `threshold` rejects
scores below it (regression, single-label). Reasons: `classify:<column>=<value>`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from pipeline.stage import (EMPTY_TEXT, StageOutput, has_text, reason, reasons_or_none,
                            scatter, with_column)
from stages._classify.head import Head, head_module, is_head_folder, read_head
from stages._shared.inference.folder import ModelFolder, inspect_folder
from stages._shared.inference.pooling import normalize, pool
from stages._shared.inference.runtime import Inference

REGRESSION, MULTI_LABEL = "regression", "multi_label_classification"


@dataclass(frozen=True)
class Classifier:
    """What a classifier folder holds, as validation reads it (nothing loaded)."""

    folder: ModelFolder  # the folder loaded: the classifier, or the head's encoder
    head: Head | None

    @property
    def labels(self) -> list[str]:
        return list(self.head.labels) if self.head else self.folder.labels

    @property
    def problem_type(self) -> str:
        return self.head.problem_type if self.head else self.folder.problem_type


def inspect_classifier(path: str) -> Classifier:
    if is_head_folder(path):
        head = read_head(path)
        return Classifier(inspect_folder(head.encoder, "encoder"), head)
    return Classifier(inspect_folder(path, "classifier"), None)


def label_column(column: str, label: str) -> str:
    return f"{column}_{re.sub(r'[^A-Za-z0-9_]', '_', label)}"


class TransformersClassifier:
    def __init__(self, config):
        self.config = config
        self.classifier = inspect_classifier(config.model)
        self._inference = self._head = None

    def __getstate__(self):  # each worker loads its own model
        return dict(self.__dict__, _inference=None, _head=None)

    def columns(self) -> tuple[str, ...]:
        c, problem = self.config.column, self.classifier.problem_type
        if problem == REGRESSION:
            return (c, f"{c}_int") if self.config.int_score else (c,)
        if problem == MULTI_LABEL:
            return tuple(label_column(c, label) for label in self.classifier.labels)
        return (c, f"{c}_label")

    def positive_label(self) -> str | None:
        labels = self.classifier.labels
        return self.config.label or (labels[1] if len(labels) == 2 else None)

    def setup(self) -> None:
        cfg, folder, head = self.config, self.classifier.folder, self.classifier.head
        self._inference = Inference(
            folder.transformer, "AutoModel" if head else "AutoModelForSequenceClassification",
            device=cfg.device(), dtype=cfg.dtype, cpus=cfg.cpus, batch_tokens=cfg.batch_tokens,
            max_length=cfg.max_length, default_max_length=folder.max_length)
        if head:
            hidden = self._inference.model.config.hidden_size
            self._head = head_module(head, hidden).to(cfg.device())
            self._pooling = head.pooling or folder.pooling or "mean"

    def logits(self, texts: list[str]) -> np.ndarray:
        """One row of logits per text, over its first max_length tokens."""
        if self._inference is None:
            self.setup()
        return self._inference.run(self._inference.tokenize(texts).ids, self._forward)

    def _forward(self, model, input_ids, mask):
        if self._head is None:
            return model(input_ids=input_ids, attention_mask=mask).logits
        vectors = pool(model(input_ids=input_ids, attention_mask=mask).last_hidden_state,
                       mask, self._pooling)
        return self._head(normalize(vectors) if self.classifier.head.normalize else vectors)

    def process(self, table: pa.Table) -> StageOutput:
        mask = has_text(table["text"])
        present = [t for t, keep in zip(table["text"].to_pylist(), mask) if keep]
        logits = self.logits(present) if present else np.zeros((0, len(self.classifier.labels)))
        columns, verdicts = self._outputs(logits)
        for name, (values, type_) in columns.items():
            table = with_column(table, name, scatter(values, mask, type_))
        if self.config.mode == "annotate":
            return StageOutput(table, None)
        found = iter(verdicts)
        return StageOutput(table, reasons_or_none([next(found) if keep else EMPTY_TEXT
                                                   for keep in mask]))

    def _outputs(self, logits: np.ndarray) -> tuple[dict, list[str | None]]:
        """Columns ({name: (values, type)}) and one verdict per row, from the logits."""
        cfg, c, labels = self.config, self.config.column, self.classifier.labels
        problem = self.classifier.problem_type
        if problem == REGRESSION:
            score = logits[:, 0].astype(np.float64)
            columns = {c: (score.tolist(), pa.float64())}
            if cfg.int_score:
                rounded = np.clip(np.rint(score), *cfg.int_range).astype(np.int64)
                columns[f"{c}_int"] = (rounded.tolist(), pa.int64())
            return columns, [self._below(c, s) for s in score]
        if problem == MULTI_LABEL:
            probs = 1.0 / (1.0 + np.exp(-logits.astype(np.float64)))
            columns = {label_column(c, label): (probs[:, k].tolist(), pa.float64())
                       for k, label in enumerate(labels)}
            return columns, [self._no_kept_label(row) for row in probs]
        shifted = np.exp(logits - logits.max(axis=1, keepdims=True)).astype(np.float64)
        probs = shifted / shifted.sum(axis=1, keepdims=True)
        best = [labels[k] for k in probs.argmax(axis=1)]
        positive = self.positive_label()
        score = probs[:, labels.index(positive)] if positive else probs.max(axis=1)
        verdicts = [reason("classify", f"{c}_label", label)
                    if cfg.keep_labels and label not in cfg.keep_labels else self._below(c, s)
                    for label, s in zip(best, score)]
        return {c: (score.tolist(), pa.float64()), f"{c}_label": (best, pa.string())}, verdicts

    def _below(self, column: str, score: float) -> str | None:
        threshold = self.config.threshold
        return reason("classify", column, float(score)) \
            if threshold is not None and score < threshold else None

    def _no_kept_label(self, probs: np.ndarray) -> str | None:
        if not self.config.keep_labels:
            return None  # a multi-label head filters by the labels it is told to keep
        labels = self.classifier.labels
        kept = [labels.index(label) for label in self.config.keep_labels]
        best = max(kept, key=lambda k: probs[k])
        threshold = 0.5 if self.config.threshold is None else self.config.threshold
        if probs[best] >= threshold:
            return None
        return reason("classify", label_column(self.config.column, labels[best]),
                      float(probs[best]))
