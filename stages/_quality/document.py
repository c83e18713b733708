"""One document, split once: the lines, tokens and words every quality rule shares.

Each view is computed on first use and kept, so running all four rule sets costs one
lowercasing, one whitespace split, one word scan and one line split per document.

Units:
- lines: the text split at newlines, stripped, empty lines dropped (blank lines are layout).
- tokens: whitespace-separated strings, punctuation attached ("end." is one token).
- words: runs of letters, digits and combining marks in the lowercased text ("don't" is
  two words); what word counts, word lengths, stop words and n-grams use.
Tokens and words are the whitespace words and letter words of stages/_shared/words.py.
"""

from __future__ import annotations

import re
from collections import Counter
from functools import cached_property

import numpy as np

from stages._quality.stopwords import NO_SPACE_LANGUAGES
from stages._shared.words import LETTER_WORD, whitespace_words

# A whitespace token without a single letter (numbers, symbols, punctuation runs), with the
# whitespace before it: matched in " " + text + " ", the leading \s lets `re` skip ahead fast.
NON_ALPHA_TOKEN = re.compile(r"\s(?:[^\w\s]|[\d_])+(?=\s)")
PARAGRAPH_BREAK = re.compile(r"\n[^\S\n]*\n\s*")

# Characters that end a sentence or a quoted sentence, in the scripts of the web's large
# languages (Latin, Cyrillic, Greek, CJK, Arabic, Devanagari, Armenian, Ethiopic).
TERMINAL_PUNCTUATION = (".", "!", "?", '"', "'", "\u201d", "\u2019", "\u00bb", "\u2026",
                        "\u3002", "\uff01", "\uff1f", "\u061f", "\u06d4", "\u0964", "\u0965",
                        "\u0589", "\u1362")
ELLIPSES = ("...", "\u2026")
BULLETS = ("\u2022", "\u25cf", "\u25cb", "\u25e6", "\u25aa", "\u25ab", "\u25a0", "\u25a1",
           "\u2023", "\u2043", "\u2219", "\u00b7", "\u25ba", "\u25b6", "\u27a4", "\u27a2",
           "\u2713", "\u2714", "\u2192", "-", "*")


class Document:
    """A text and its language (an ISO code or None), with lazily computed views."""

    def __init__(self, text: str, lang: str | None):
        self.text = text
        self.lang = lang
        self.spaced = lang not in NO_SPACE_LANGUAGES  # are words separated by spaces?

    @cached_property
    def lower(self) -> str:
        return self.text.lower()

    @cached_property
    def lines(self) -> list[str]:
        return [line for line in map(str.strip, self.text.split("\n")) if line]

    @cached_property
    def tokens(self) -> list[str]:
        return whitespace_words(self.text)

    @cached_property
    def words(self) -> list[str]:
        return LETTER_WORD.findall(self.lower)

    @cached_property
    def non_alpha_tokens(self) -> int:
        return len(NON_ALPHA_TOKEN.findall(f" {self.text} "))

    @cached_property
    def paragraphs(self) -> list[str]:
        return [p for p in PARAGRAPH_BREAK.split(self.text.strip()) if p]

    @cached_property
    def duplicate_lines(self) -> tuple[int, int]:
        """(lines that repeat an earlier line, their characters)."""
        return _repeats(self.lines)

    @cached_property
    def duplicate_paragraphs(self) -> tuple[int, int]:
        return _repeats(self.paragraphs)

    @cached_property
    def word_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """Words as (uint64 hashes, int64 lengths), for the n-gram measures."""
        words = self.words
        # str hashes differ between processes, but the measures only compare them for
        # equality, so the results do not.
        hashes = np.fromiter(map(hash, words), dtype=np.int64, count=len(words))
        lengths = np.fromiter(map(len, words), dtype=np.int64, count=len(words))
        return hashes.view(np.uint64), lengths


def _repeats(items: list[str]) -> tuple[int, int]:
    counts = Counter(items)
    repeats = len(items) - len(counts)
    if not repeats:
        return 0, 0
    return repeats, sum(len(item) * (n - 1) for item, n in counts.items() if n > 1)
