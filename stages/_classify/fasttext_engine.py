"""`classify` with `engine: fasttext` (the default): any supervised fastText model file.

The score is the model's probability of the positive `label` (default `hq`) for the text
with newlines folded into spaces, as `pipeline train-classifier` trained it. Documents below
`threshold` are rejected as `classify:<column>=<score, 3 decimals>`.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.stage import EMPTY_TEXT, StageOutput, on_rows_with_text, reasons_where, \
    with_column
from stages._shared import fasttext_models

DEFAULT_LABEL = "hq"


class FastTextClassifier(fasttext_models.HoldsModel):
    def __init__(self, config):
        self.config = config

    def columns(self) -> tuple[str, ...]:
        return (self.config.column,)

    @property
    def positive_label(self) -> str:
        label, prefix = self.config.label or DEFAULT_LABEL, fasttext_models.LABEL_PREFIX
        return label if label.startswith(prefix) else prefix + label

    def setup(self) -> None:
        model = fasttext_models.load_model(self.config.model)
        labels = getattr(model, "labels", None)  # the predict-only fasttext build has none
        if labels is not None and self.positive_label not in labels:
            raise fasttext_models.ModelFileError(
                f"{self.config.model} has no label {self.config.label or DEFAULT_LABEL!r}; its "
                f"labels are "
                f"{', '.join(labels)}; set `label:` to one of them")
        self._model = model

    def process(self, table: pa.Table) -> StageOutput:
        # fastText's own notion of empty (Unicode separators count as space), kept as it was
        score, has_text = on_rows_with_text(fasttext_models.one_line(table["text"]), self.score,
                                            content=fasttext_models.HAS_CONTENT)
        out = with_column(table, self.config.column, score)
        if self.config.mode == "annotate":
            return StageOutput(out, None)
        return StageOutput(out, reasons_where(pa.array(~has_text), EMPTY_TEXT,
                                              otherwise=self._verdict(score)))

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

    def _verdict(self, score: pa.Array) -> pa.Array | None:
        if self.config.threshold is None:
            return None
        return reasons_where(pc.less(score, self.config.threshold), "classify",
                             self.config.column, pc.round(score, 3))
