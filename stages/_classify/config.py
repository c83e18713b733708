"""The `classify` stage's options, and the checks that they fit the engine and the model's
head (labels, threshold range) when the spec is validated."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from pipeline.stage import SpecPath
from stages._classify.transformers_engine import MULTI_LABEL, REGRESSION, inspect_classifier, \
    label_column
from stages._shared import fasttext_models
from stages._shared.inference.options import ModelOptions

# Options that only the transformers engine reads.
TRANSFORMERS_ONLY = {"max_length", "batch_tokens", "dtype", "gpus", "cpus", "keep_labels",
                     "int_score", "int_range"}


class ClassifyConfig(ModelOptions):
    engine: Literal["fasttext", "transformers"] = Field(
        "fasttext", description="fasttext (a model file) or transformers (a model folder)")
    model: SpecPath = Field(description="fastText classifier file, or (engine transformers) "
                            "a local model folder")
    label: str | None = Field(None, description="positive label whose probability is the "
                              "score; fasttext: default hq; transformers: default the second "
                              "of two labels, else the most likely label")
    threshold: float | None = Field(
        0.5, description="reject documents scoring below; null keeps every one")
    column: str = Field("score", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
                        description="column the score is written to (and prefix of the others)")
    mode: Literal["filter", "annotate"] = Field("filter", description="annotate keeps every "
                                                "document, scores only")
    keep_labels: list[str] | None = Field(None, description="transformers: labels to keep "
                                          "(single-label: the argmax; multi-label: any above "
                                          "threshold)")
    int_score: bool = Field(False, description="regression heads: add <column>_int, the "
                            "score rounded and clipped to int_range")
    int_range: tuple[int, int] = Field((0, 5), description="bounds of <column>_int")

    @field_validator("model")
    @classmethod
    def _model_exists(cls, value, info: ValidationInfo):
        if info.data.get("engine") == "transformers":
            inspect_classifier(value)  # names the missing file
            return value
        return fasttext_models.local_model_file(
            value, "; train one with `pipeline train-classifier`")

    def model_folder(self):
        return inspect_classifier(self.model).folder if self.engine == "transformers" else None

    @model_validator(mode="after")
    def _options_fit_the_model(self):
        if self.engine == "fasttext":
            # Left at their defaults they are harmless: the job's own spec.yaml writes every
            # option out, and must load again.
            defaults = type(self).model_fields
            given = sorted(k for k in TRANSFORMERS_ONLY & self.model_fields_set
                           if getattr(self, k) != defaults[k].get_default(
                               call_default_factory=True))
            if given:
                raise ValueError(f"{', '.join(given)}: only for engine transformers")
            problem, labels = "single_label_classification", None
        else:
            classifier = inspect_classifier(self.model)
            problem, labels = classifier.problem_type, classifier.labels
        _check_labels(self, problem, labels)
        return self


def _check_labels(cfg: ClassifyConfig, problem: str, labels: list[str] | None) -> None:
    probability = problem != REGRESSION
    if probability and cfg.threshold is not None and not 0 <= cfg.threshold <= 1:
        raise ValueError(f"threshold {cfg.threshold}: a probability is between 0 and 1")
    wrong = [(cfg.keep_labels and problem == REGRESSION, "keep_labels"),
             (cfg.int_score and problem != REGRESSION, "int_score"),
             (cfg.label and problem != "single_label_classification" and labels, "label")]
    for bad, name in wrong:
        if bad:
            raise ValueError(f"{name} does not apply to a {problem.replace('_', '-')} head")
    asked = ([cfg.label] if cfg.label else []) + (cfg.keep_labels or [])
    unknown = [x for x in asked if labels is not None and x not in labels]
    if unknown:
        raise ValueError(f"the model has no label {unknown[0]!r}; its labels: {labels}")
    if problem == MULTI_LABEL and len({label_column("c", x) for x in labels}) < len(labels):
        raise ValueError(f"labels {labels} give clashing column names")
