"""`classify`: score documents with a classifier; keep those that pass.

Engines (`engine:`):
- `fasttext` (default): a fastText model file - one trained by `pipeline train-classifier`,
  DCLM's `fasttext_oh_eli5` (`label: hq`) or another; `score` = the probability of `label`;
  below `threshold` (0.5) a document is rejected as `classify:score=<value>`
  (`stages/_classify/fasttext_engine.py`).
- `transformers`: a local Hugging Face sequence classifier (FineWeb-Edu's, ...) or an
  encoder + head folder, on the CPU or GPU workers: regression, single- and multi-label heads,
  columns named from `column` (`stages/_classify/transformers_engine.py`,
  docs/stages_models.md).
Options: `stages/_classify/config.py`. Empty or whitespace-only text is rejected as `empty_text` with null scores; `mode: annotate`
(or `threshold: null` with no `keep_labels`) keeps every document. An ensemble is several
`classify` steps with different `column`s.

Keeping a top fraction of the corpus (DCLM keeps the best 10 %) needs every document's score
before the first can be decided, so it is not a map-stage option: it would be a global stage
and is not built yet. Pick a threshold from the score histogram of the job report instead.
"""

from __future__ import annotations

import pyarrow as pa

from pipeline.registry import register
from pipeline.stage import Resources, Stage, StageOutput
from stages._classify.config import ClassifyConfig
from stages._classify.fasttext_engine import FastTextClassifier
from stages._classify.transformers_engine import TransformersClassifier
from stages._shared.inference.options import MODEL_PACKAGES


@register
class Classify(Stage):
    name = "classify"
    config_model = ClassifyConfig
    description = ("Score documents with a classifier (fastText, or a transformers model on "
                   "CPU/GPU); keep those above a threshold.")

    def engine(self) -> FastTextClassifier | TransformersClassifier:
        if getattr(self, "_engine", None) is None:
            transformers = getattr(self.config, "engine", "fasttext") == "transformers"
            self._engine = (TransformersClassifier if transformers
                            else FastTextClassifier)(self.config)
        return self._engine

    def produces(self):
        return self.engine().columns()

    def resources(self) -> Resources:
        if self.config.engine == "transformers":
            return self.config.resources()
        return Resources(cpus=1, memory_gb=1.0)

    def packages(self):
        return MODEL_PACKAGES if self.config.engine == "transformers" else {}

    def setup(self) -> None:
        self.engine().setup()

    def process(self, table: pa.Table) -> StageOutput:
        return self.engine().process(table)
