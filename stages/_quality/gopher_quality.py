"""`gopher_quality`: Gopher's document quality heuristics (Rae et al. 2021, appendix A.1).

Defaults are the paper's: 50..100,000 words, mean word length 3..10 characters, at most 0.1
`#` or ellipses per word, at most 90 % of lines starting with a bullet and 30 % ending with
an ellipsis, at least 80 % of tokens holding a letter, at least 2 stop words.

Differences from the usual implementations, on purpose:
- the alphabetic check counts whitespace tokens, so punctuation ("Hello," / "end.") belongs
  to its word instead of counting as a word without letters;
- stop words come from the document's language (`lang` column, else the stage's
  `default_lang`); a language without a list skips the check;
- in languages written without spaces (zh, ja, th, ...) whitespace tokens are not words, so
  the word count, mean word length and per-word symbol ratios are not measured.
"""

from __future__ import annotations

import pyarrow as pa
from pydantic import Field

from stages._quality.base import Rule, RuleConfig, ratio
from stages._quality.document import BULLETS, ELLIPSES, Document
from stages._quality.stopwords import SUBSTRING_STOP_WORDS, TOKEN_STOP_WORDS


class GopherQualityConfig(RuleConfig):
    min_words: int | None = Field(50, ge=0)
    max_words: int | None = Field(100_000, ge=0)
    min_mean_word_len: float | None = Field(3, ge=0)
    max_mean_word_len: float | None = Field(10, ge=0)
    max_hash_ratio: float | None = Field(0.1, ge=0, description="'#' per word")
    max_ellipsis_ratio: float | None = Field(0.1, ge=0, description="'...' or '…' per word")
    max_bullet_line_frac: float | None = Field(0.9, ge=0, le=1)
    max_ellipsis_line_frac: float | None = Field(0.3, ge=0, le=1)
    min_alpha_token_frac: float | None = Field(0.8, ge=0, le=1,
                                               description="tokens holding a letter")
    min_stop_words: int | None = Field(2, ge=0)


class GopherQuality(Rule):
    name = "gopher_quality"
    config_model = GopherQualityConfig
    measures = {"words": pa.int64(), "mean_word_len": pa.float64(), "hash_ratio": pa.float64(),
                "ellipsis_ratio": pa.float64(), "bullet_line_frac": pa.float64(),
                "ellipsis_line_frac": pa.float64(), "alpha_token_frac": pa.float64(),
                "stop_words": pa.int64()}

    def measure(self, doc: Document) -> dict:
        text, lines = doc.text, doc.lines
        values = {
            "bullet_line_frac": ratio(sum(line.startswith(BULLETS) for line in lines),
                                      len(lines)),
            "ellipsis_line_frac": ratio(sum(line.endswith(ELLIPSES) for line in lines),
                                        len(lines)),
            "alpha_token_frac": ratio(len(doc.tokens) - doc.non_alpha_tokens, len(doc.tokens)),
            "stop_words": stop_words(doc),
        }
        if doc.spaced:
            words = doc.words
            values["words"] = len(words)
            values["mean_word_len"] = ratio(sum(map(len, words)), len(words))
            values["hash_ratio"] = ratio(text.count("#"), len(words))
            values["ellipsis_ratio"] = ratio(text.count("...") + text.count("\u2026"),
                                             len(words))
        return values


def stop_words(doc: Document) -> int | None:
    """Occurrences of the language's stop words; None for a language without a list."""
    listed = TOKEN_STOP_WORDS.get(doc.lang)
    if listed is not None:
        return sum(map(listed.__contains__, doc.words))
    substrings = SUBSTRING_STOP_WORDS.get(doc.lang)
    if substrings is not None:
        return sum(map(doc.text.count, substrings))
    return None
