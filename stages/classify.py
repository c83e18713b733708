"""`classify`: score documents with a fastText classifier and keep those above a threshold.

`model:` is any supervised fastText model file: one trained by `pipeline train-classifier`,
DCLM's `fasttext_oh_eli5` (`label: hq`) or another quality classifier. The score is the
model's probability of the positive `label` for the text with newlines folded into spaces,
as the trainer saw it; it goes to the `score` column (or `column:`). Documents scoring below
`threshold` are rejected as `classify:score=<value>`; `threshold: null` only annotates.
Empty or whitespace-only text is rejected as `empty_text` with a null score.

Keeping a top fraction of the corpus (DCLM keeps the best 10 %) needs every document's score
before the first can be decided, so it is not a map-stage option: it would be a global stage
(a first pass of per-shard score histograms, merged into the cut-off score) and is not built
yet. Pick a threshold from the score histogram of the job report instead.
"""

from __future__ import annotations


import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field, field_validator

from stages._shared import fasttext_models
from pipeline.registry import register
from pipeline.stage import (Resources, SpecPath, Stage, StageConfig, StageOutput,
                            with_column)

EMPTY_TEXT = "empty_text"


class ClassifyConfig(StageConfig):
    model: SpecPath = Field(description="fastText classifier file (local path)")
    label: str = Field("hq", description="positive label whose probability is the score "
                                         "(`hq` and `__label__hq` are the same)")
    threshold: float | None = Field(
        0.5, ge=0, le=1, description="reject documents scoring below; null keeps every one")
    column: str = Field("score", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
                        description="column the score is written to")

    @field_validator("model")
    @classmethod
    def _model_file_exists(cls, value):
        return fasttext_models.local_model_file(
            value, "; train one with `pipeline train-classifier`")


@register
class Classify(fasttext_models.HoldsModel, Stage):
    name = "classify"
    config_model = ClassifyConfig
    description = "Score documents with a fastText classifier; keep those above a threshold."

    def produces(self):
        return (self.config.column,)

    def resources(self) -> Resources:
        return Resources(cpus=1, memory_gb=1.0)

    @property
    def positive_label(self) -> str:
        label, prefix = self.config.label, fasttext_models.LABEL_PREFIX
        return label if label.startswith(prefix) else prefix + label

    def setup(self) -> None:
        model = fasttext_models.load_model(self.config.model)
        labels = getattr(model, "labels", None)  # the predict-only fasttext build has none
        if labels is not None and self.positive_label not in labels:
            raise fasttext_models.ModelFileError(
                f"{self.config.model} has no label {self.config.label!r}; its labels are "
                f"{', '.join(labels)}; set `label:` to one of them")
        self._model = model

    def process(self, table: pa.Table) -> StageOutput:
        has_text = fasttext_models.has_content(table["text"])
        lines = fasttext_models.one_line(table["text"])
        present = lines if has_text.all() else pc.filter(lines, pa.array(has_text))
        scores = np.zeros(len(has_text))
        scores[has_text] = self.score(present.to_pylist())
        score = pa.array(scores, mask=~has_text)
        reasons = pc.if_else(pa.array(has_text), self._verdict(score), EMPTY_TEXT)
        return StageOutput(with_column(table, self.config.column, score), reasons)

    def score(self, texts: list[str]) -> np.ndarray:
        """Probability of the positive label for each one-line text."""
        labels, probs = fasttext_models.predict(self.loaded_model(), texts, k=-1)
        positive = self.positive_label
        out = np.zeros(len(texts))
        for i, (names, values) in enumerate(zip(labels, probs)):
            if positive in names:
                out[i] = values[names.index(positive)]
        # Quantized models can overshoot 1 by a few 1e-5; a probability stays within [0, 1].
        return np.clip(out, 0.0, 1.0)

    def _verdict(self, score: pa.Array) -> pa.Array:
        if self.config.threshold is None:
            return pa.nulls(len(score), pa.string())
        low = pc.less(score, self.config.threshold)
        text = pc.binary_join_element_wise(
            f"classify:{self.config.column}=", pc.cast(pc.round(score, 3), pa.string()), "")
        return pc.if_else(low, text, pa.scalar(None, pa.string()))

