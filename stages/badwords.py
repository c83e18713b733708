"""`badwords`: count the words of the LDNOOBW lists (as C4 does) and drop, or mark, pages.

The list is the document's language's: `language: en` for every document, or, without
`language`, the `lang` column `langid` writes. The lists (CC-BY-4.0) ship inside the
package, in stages/_badwords/lists/ with their LICENSE and SOURCE.md. How entries match
(whole words where words are separated by spaces, substrings in Chinese, Japanese and Thai,
multi-word entries): stages/_badwords/matcher.py.

- `mode: c4` (default): any hit rejects the page, as C4's badwords filter: `badwords:hits=3`.
- `mode: density`: reject when hits per 1,000 words exceed `max_hits_per_1000_words`:
  `badwords:hits_per_1000_words=4.2`. Words are whitespace words (stages/_shared/words.py);
  in Chinese, Japanese and Thai, which have no spaces between words, each non-space
  character counts as one.
- `mode: annotate`: reject nothing.

Every mode writes `badwords_hits` (null where the page's language has no list or the text
is empty). `keep_fraction` keeps that share of the pages that would be rejected, chosen by
a hash of their `id` (the same pages in every run), as DataTrove's C4BadWordsFilter does:
pages about medicine, sex education or abuse use these words too, and keeping some of them
keeps the subject in the corpus. Pages in a language without a list pass; the batch's
counters say how many (`no_list`), beside `hit` (pages with a hit) and `kept_by_fraction`.
"""

from __future__ import annotations

from typing import Literal

import pyarrow as pa
import xxhash
from pydantic import Field, field_validator

from pipeline.registry import register
from pipeline.stage import (Stage, StageConfig, StageOutput, column_or_nulls, reason,
                            reasons_or_none, with_column)
from stages._badwords.lists import DEFAULT_ALLOW, available, entries, list_name
from stages._badwords.matcher import Matcher
from stages._shared.words import whitespace_words

NO_SPACE_LANGUAGES = frozenset({"zh", "ja", "th"})


class BadwordsConfig(StageConfig):
    language: str | None = Field(
        None, description="list for every document (en, de, zh, ...); default: each "
                          "document's `lang` column")
    mode: Literal["c4", "density", "annotate"] = Field(
        "c4", description="c4: any hit rejects; density: reject above "
                          "max_hits_per_1000_words; annotate: count only")
    max_hits_per_1000_words: float = Field(
        1.0, ge=0, description="density: reject pages with more hits per 1,000 words")
    keep_fraction: float = Field(
        0.0, ge=0, le=1, description="share of the pages that would be rejected to keep "
                                     "anyway, chosen by a hash of `id`")
    seed: int = Field(0, description="keep_fraction: another seed keeps other pages")
    allow: list[str] = Field(
        default_factory=lambda: list(DEFAULT_ALLOW),
        description="entries never counted (default: DataTrove's, common inside Chinese "
                    "and Japanese words)")

    @field_validator("language")
    @classmethod
    def _has_list(cls, value):
        if value is not None and list_name(value, exact=True) is None:
            raise ValueError(f"no bad-word list for language {value!r}; lists: "
                             f"{', '.join(sorted(available()))}")
        return value


@register
class Badwords(Stage):
    name = "badwords"
    config_model = BadwordsConfig
    description = ("Count LDNOOBW bad words (C4's list) per language; reject pages with any "
                   "(C4), too many per 1,000 words, or only annotate.")

    def __init__(self, config: BadwordsConfig | None = None):
        super().__init__(config)
        self._matchers: dict[str, Matcher] = {}

    def requires(self):
        needed = ["text"]
        if self.config.language is None:
            needed.append("lang")
        if self.config.keep_fraction > 0 and self.config.mode != "annotate":
            needed.append("id")
        return tuple(needed)

    def produces(self):
        return ("badwords_hits",)

    def matcher(self, name: str) -> Matcher:
        """The matcher of one list, built on first use (per worker)."""
        if name not in self._matchers:
            allowed = {word.lower() for word in self.config.allow}
            self._matchers[name] = Matcher(e for e in entries(name) if e not in allowed)
        return self._matchers[name]

    def process(self, table: pa.Table) -> StageOutput:
        cfg = self.config
        texts = table["text"].to_pylist()
        if cfg.language is not None:
            names = [list_name(cfg.language, exact=True)] * len(texts)
        else:
            names = [list_name(lang) for lang in column_or_nulls(table, "lang").to_pylist()]
        hits: list[int | None] = [None] * len(texts)
        for row, (text, name) in enumerate(zip(texts, names)):
            if name is not None and text and not text.isspace():
                hits[row] = self.matcher(name).count(text)
        table = with_column(table, "badwords_hits", pa.array(hits, pa.int32()))
        counters = {"no_list": sum(name is None and bool(text) and not text.isspace()
                                   for text, name in zip(texts, names)),
                    "hit": sum(bool(h) for h in hits), "kept_by_fraction": 0}
        if cfg.mode == "annotate":
            return StageOutput(table, None, counters=counters)
        reasons = [self._verdict(h, text, name) if h else None
                   for h, text, name in zip(hits, texts, names)]
        if cfg.keep_fraction > 0 and any(reasons):
            ids = table["id"].to_pylist()
            for row, why in enumerate(reasons):
                if why is not None and self._kept_anyway(ids[row]):
                    reasons[row] = None
                    counters["kept_by_fraction"] += 1
        return StageOutput(table, reasons_or_none(reasons), counters=counters)

    def _verdict(self, hits: int, text: str, name: str) -> str | None:
        if self.config.mode == "c4":
            return reason("badwords", "hits", hits)
        words = (len("".join(text.split())) if name in NO_SPACE_LANGUAGES
                 else len(whitespace_words(text)))
        density = 1000 * hits / max(words, 1)
        if density > self.config.max_hits_per_1000_words:
            return reason("badwords", "hits_per_1000_words", round(density, 1))
        return None

    def _kept_anyway(self, doc_id) -> bool:
        digest = xxhash.xxh3_64_intdigest(f"{self.config.seed}\0{doc_id}".encode())
        return digest / 2.0**64 < self.config.keep_fraction
