"""`gopher_repetition`: Gopher's repetition heuristics (Rae et al. 2021, table A1).

Defaults are the paper's: duplicate lines 0.30 and paragraphs 0.30 of their count, 0.20 of
the characters each; the most frequent 2-, 3-, 4-gram at most 0.20, 0.18, 0.16 of the
characters; duplicate 5..10-grams at most 0.15, 0.14, 0.13, 0.12, 0.11, 0.10.

Lines are non-empty lines (a page's blank lines are not repeated content); paragraphs are
separated by blank lines. Character fractions are of the whole text. N-grams are over
lowercased words; see `stages/_quality/ngrams.py` for how they are counted.
"""

from __future__ import annotations

import pyarrow as pa
from pydantic import Field

from stages._quality.base import Rule, RuleConfig, ratio
from stages._quality.document import Document
from stages._quality.ngrams import repetition

TOP_ORDERS = (2, 3, 4)
DUP_ORDERS = (5, 6, 7, 8, 9, 10)


class GopherRepetitionConfig(RuleConfig):
    max_dup_line_frac: float | None = Field(0.3, ge=0, le=1)
    max_dup_para_frac: float | None = Field(0.3, ge=0, le=1)
    max_dup_line_char_frac: float | None = Field(0.2, ge=0, le=1)
    max_dup_para_char_frac: float | None = Field(0.2, ge=0, le=1)
    max_top_2gram_char_frac: float | None = Field(0.20, ge=0, le=1)
    max_top_3gram_char_frac: float | None = Field(0.18, ge=0, le=1)
    max_top_4gram_char_frac: float | None = Field(0.16, ge=0, le=1)
    max_dup_5gram_char_frac: float | None = Field(0.15, ge=0, le=1)
    max_dup_6gram_char_frac: float | None = Field(0.14, ge=0, le=1)
    max_dup_7gram_char_frac: float | None = Field(0.13, ge=0, le=1)
    max_dup_8gram_char_frac: float | None = Field(0.12, ge=0, le=1)
    max_dup_9gram_char_frac: float | None = Field(0.11, ge=0, le=1)
    max_dup_10gram_char_frac: float | None = Field(0.10, ge=0, le=1)


class GopherRepetition(Rule):
    name = "gopher_repetition"
    config_model = GopherRepetitionConfig
    measures = {name: pa.float64() for name in (
        "dup_line_frac", "dup_para_frac", "dup_line_char_frac", "dup_para_char_frac",
        *(f"top_{n}gram_char_frac" for n in TOP_ORDERS),
        *(f"dup_{n}gram_char_frac" for n in DUP_ORDERS))}

    def measure(self, doc: Document) -> dict:
        chars = len(doc.text)
        dup_lines, dup_line_chars = doc.duplicate_lines
        dup_paras, dup_para_chars = doc.duplicate_paragraphs
        values = {
            "dup_line_frac": ratio(dup_lines, len(doc.lines)),
            "dup_para_frac": ratio(dup_paras, len(doc.paragraphs)),
            "dup_line_char_frac": ratio(dup_line_chars, chars),
            "dup_para_char_frac": ratio(dup_para_chars, chars),
        }
        hashes, lengths = doc.word_arrays
        fractions = repetition(hashes, lengths, chars, TOP_ORDERS, DUP_ORDERS)
        for n in TOP_ORDERS:
            values[f"top_{n}gram_char_frac"] = fractions[n]
        for n in DUP_ORDERS:
            values[f"dup_{n}gram_char_frac"] = fractions[n]
        return values
