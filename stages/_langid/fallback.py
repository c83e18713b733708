"""A second opinion for the documents fastText is unsure of: lingua.

lid.176 is fast but guesses on short or ambiguous texts (closely related languages, a few
words of a name or a menu). lingua scores character 1- to 5-grams against per-language
models and is much more accurate there, but about 100x slower, so only documents whose
fastText score is below `below` are sent to it. Its answer replaces fastText's, and its
confidence becomes `lang_score`, so `min_score` judges every document by whichever
identifier decided.
"""

from __future__ import annotations

from functools import cache
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from stages._shared.langcodes import normalize_code

# lingua's n-gram models grow with the text while its answer stops improving after a few
# sentences: a document's head is enough.
MAX_CHARS = 2000


class FallbackConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    engine: Literal["lingua"] = "lingua"
    below: float = Field(0.7, ge=0, le=1,
                         description="documents whose fastText score is lower go to lingua")
    languages: list[str] | None = Field(
        None, description="languages lingua chooses among; null: all 75 it knows")
    accuracy: Literal["high", "low"] = Field(
        "high", description="low: trigrams only, ~3x faster, weaker on short texts")

    @field_validator("languages")
    @classmethod
    def _known(cls, value):
        if value is None:
            return None
        codes = list(dict.fromkeys(normalize_code(str(code)) for code in value))
        unknown = [code for code in codes if code not in lingua_languages()]
        if unknown:
            raise ValueError(f"lingua does not know {', '.join(unknown)}; it knows "
                             f"{', '.join(sorted(lingua_languages()))}")
        if len(codes) < 2:
            raise ValueError("languages: lingua needs at least two languages to choose among")
        return codes


@cache
def lingua_languages() -> dict:
    """Our code -> lingua's Language, for every language lingua knows (Bokmål is `no`)."""
    from lingua import Language
    return {normalize_code(lang.iso_code_639_1.name): lang for lang in Language.all()}


class Lingua:
    """lingua, built once per worker on first use (its models load lazily per language)."""

    def __init__(self, config: FallbackConfig):
        self._config = config
        self._detector = None

    def identify(self, texts: list[str]) -> list[tuple[str | None, float]]:
        """(language, confidence) of each text; (None, 0.0) where lingua finds none."""
        detector = self._detector or self._build()
        found = []
        for text in texts:
            ranked = detector.compute_language_confidence_values(text[:MAX_CHARS])
            best = ranked[0] if ranked else None
            found.append((normalize_code(best.language.iso_code_639_1.name), best.value)
                         if best and best.value > 0 else (None, 0.0))
        return found

    def _build(self):
        from lingua import LanguageDetectorBuilder
        known = lingua_languages()
        codes = self._config.languages or sorted(known)
        builder = LanguageDetectorBuilder.from_languages(*(known[c] for c in codes))
        if self._config.accuracy == "low":
            builder = builder.with_low_accuracy_mode()
        self._detector = builder.build()
        return self._detector

    def __getstate__(self):  # ship the settings to workers, never a built detector
        return {"_config": self._config, "_detector": None}
