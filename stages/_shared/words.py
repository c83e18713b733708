"""What a word is: every stage that counts, measures or hashes words takes its definition
from here. There are four, side by side, because four jobs need different things and a
stage's outputs must not change with a refactor:

1. Whitespace words (`count_words` on Arrow arrays, `whitespace_words` on one string):
   whatever lies between whitespace, punctuation attached ("end." is one word). For length
   limits (`length_filter`) and the quality rules' token counts, because that is how C4 and
   Gopher count words (`len(text.split())`), and their thresholds assume it. Arrow's and
   Python's whitespace are the same set of characters, so both forms agree.
2. Letter words (`LETTER_WORD`): runs of letters, digits and combining marks in lowercased
   text ("don't" is two words). For the quality rules' word lengths, stop words and
   repetition n-grams, which must not count punctuation; the marks keep Devanagari, Arabic
   or Thai words whole.
3. Dedup words (`dedup_word_bytes`, `dedup_words`): runs of characters that are not
   whitespace, control characters or, with `strip_punctuation`, Unicode punctuation and
   symbols (categories P*, S*). For `dedup_minhash`'s shingles. Defined by Python's
   `unicodedata`, so that the scalar reference `dedup_words` finds exactly the words the
   vectorised code finds: that is what lets datasketch reproduce our signatures.
4. N-gram tokens (`ngram_token_bytes`, after removing `NGRAM_APOSTROPHES`): runs of letters
   and digits, classified per byte by one table without decoding UTF-8. For `decontam`,
   which scans every document of a job and must map matches back to character positions.
   Apostrophes are removed rather than separating, so "don't", "don’t" and "dont" match
   (copies of a benchmark differ in exactly that); non-ASCII punctuation and symbols in the
   listed blocks separate, any other non-ASCII character counts as a letter.

The byte-level definitions (3, 4) return one bool per byte of a `text_hash.utf8_buffer`;
`text_hash.word_runs` turns that into words.
"""

from __future__ import annotations

import functools
import re
import unicodedata

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


# -- 1. whitespace words -----------------------------------------------------------------------
def count_words(text: pa.Array) -> pa.Array:
    """Whitespace-separated words per string (Arrow's split yields empty edge tokens)."""
    trimmed = pc.utf8_trim_whitespace(text)
    tokens = pc.list_value_length(pc.utf8_split_whitespace(trimmed)).cast(pa.int64())
    return pc.if_else(pc.equal(pc.binary_length(trimmed), 0), 0, tokens)


def whitespace_words(text: str) -> list[str]:
    """The whitespace words of one string; `count_words` counts the same words."""
    return text.split()


# -- 2. letter words ---------------------------------------------------------------------------
# \w misses combining marks, which would cut Devanagari, Arabic or Thai words apart; the
# ranges add the marks of the scripts in common use (not their punctuation, e.g. the danda).
_MARKS = ("\u0300-\u036f\u0483-\u0489\u0591-\u05bd\u05bf\u05c1\u05c2\u05c4\u05c5\u05c7"
          "\u0610-\u061a\u064b-\u065f\u0670\u06d6-\u06dc\u06df-\u06e4\u06e7\u06e8\u06ea-\u06ed"
          "\u0900-\u0963\u0966-\u0dff\u0e00-\u0eff\u0f00-\u0fff\u1000-\u109f\u1780-\u17ff"
          "\u200c\u200d")
LETTER_WORD = re.compile(rf"[\w{_MARKS}]+")
# What lies between letter words: keyword_filter rewrites a text as its letter words joined
# by single spaces with one substitution, without a Python string per word.
LETTER_SEPARATOR = re.compile(rf"[^\w{_MARKS}]+")


# -- 3. dedup words ----------------------------------------------------------------------------
@functools.lru_cache(maxsize=2)
def dedup_separators(strip_punctuation: bool) -> np.ndarray:
    """A bool per code point: does it separate words? Whitespace and control characters do;
    with `strip_punctuation`, punctuation and symbols too (Unicode categories P*, S*).
    Built once per process (0.1 s) from Python's unicodedata, which `dedup_words` uses too."""
    def separates(char: str) -> bool:
        category = unicodedata.category(char)
        return char.isspace() or category == "Cc" or (strip_punctuation and category[0] in "PS")
    table = np.fromiter(map(separates, map(chr, range(0x110000))), bool, 0x110000)
    # `_ascii_dedup_word_bytes` tests ASCII with two comparisons instead of this table.
    if not np.array_equal(~table[:128], _ascii_dedup_word_bytes(np.arange(128, dtype=np.uint8),
                                                                strip_punctuation)):
        raise RuntimeError("this Python's Unicode tables classify ASCII unexpectedly")
    return table


def _ascii_dedup_word_bytes(data: np.ndarray, strip_punctuation: bool) -> np.ndarray:
    """Word bytes among ASCII (letters and digits, or every printable character without
    `strip_punctuation`); bytes of multi-byte characters count as word bytes here."""
    if strip_punctuation:
        inside = (data | np.uint8(0x20)) - np.uint8(ord("a")) < np.uint8(26)
        inside |= data - np.uint8(ord("0")) < np.uint8(10)
    else:
        inside = data - np.uint8(0x21) < np.uint8(0x7F - 0x21)
    inside |= data >= np.uint8(0x80)
    return inside


def dedup_word_bytes(data: np.ndarray, strip_punctuation: bool) -> np.ndarray:
    """True for every byte of a dedup word character. ASCII bytes are classified by
    comparisons; multi-byte characters are decoded from their lead byte (only those,
    usually few)."""
    inside = _ascii_dedup_word_bytes(data, strip_punctuation)
    lead = np.flatnonzero(data >= 0xC0)
    if len(lead):
        table = dedup_separators(strip_punctuation)
        padded = np.concatenate([data, np.zeros(3, np.uint8)])
        first = padded[lead].astype(np.int64)
        c1, c2, c3 = (padded[lead + k].astype(np.int64) & 0x3F for k in (1, 2, 3))
        size = 2 + (first >= 0xE0) + (first >= 0xF0)
        code = np.where(size == 2, ((first & 0x1F) << 6) | c1,
                        np.where(size == 3, ((first & 0x0F) << 12) | (c1 << 6) | c2,
                                 ((first & 0x07) << 18) | (c1 << 12) | (c2 << 6) | c3))
        hit = table[np.minimum(code, 0x10FFFF)]
        for k in range(4):
            inside[np.minimum(lead[hit & (size > k)] + k, len(data) - 1)] = False
    return inside


def dedup_words(normalised: str, strip_punctuation: bool = True) -> list[str]:
    """The dedup words of one text, as `dedup_word_bytes` finds them (the scalar reference)."""
    table = dedup_separators(strip_punctuation)
    return "".join(" " if table[ord(c)] else c for c in normalised).split()


# -- 4. n-gram tokens --------------------------------------------------------------------------
NGRAM_APOSTROPHES = ("'", "\u2019", "\u2018")  # removed before tokens are found


def _ngram_byte_table() -> bytes:
    table = bytearray(256)
    for b in range(256):
        ch = chr(b)
        table[b] = 1 if b >= 0x80 or ch.isascii() and ch.isalnum() else 0
    return bytes(table)


_NGRAM_BYTES = _ngram_byte_table()
_SYMBOL_LEADS = bytes(1 if b in (0xC2, 0xC3, 0xE2, 0xE3, 0xEF, 0xF0) else 0 for b in range(256))


def ngram_token_bytes(data: np.ndarray) -> np.ndarray:
    """True for every byte of an n-gram token: ASCII letters and digits, and non-ASCII
    characters outside the separating blocks (Latin-1 symbols and NBSP, U+2000-U+2BFF
    quotes/dashes/bullets/arrows/math, CJK and full-width punctuation, emoji)."""
    classes = np.frombuffer(data.tobytes().translate(_NGRAM_BYTES), np.uint8).copy()
    _separate_symbols(data, classes)
    return classes.astype(bool)


def _separate_symbols(data: np.ndarray, classes: np.ndarray) -> None:
    """Mark the bytes of non-ASCII punctuation and symbols as separators."""
    leads = np.flatnonzero(np.frombuffer(data.tobytes().translate(_SYMBOL_LEADS), np.uint8))
    if not len(leads):
        return
    padded = np.concatenate([data, np.zeros(4, np.uint8)])
    b0, b1, b2 = padded[leads], padded[leads + 1], padded[leads + 2]
    two = (b0 == 0xC2) | ((b0 == 0xC3) & ((b1 == 0x97) | (b1 == 0xB7)))
    three = ((b0 == 0xE2) & (b1 >= 0x80) & (b1 <= 0xAF)) | ((b0 == 0xE3) & (b1 == 0x80)) | (
        (b0 == 0xEF) & (((b1 == 0xBB) & (b2 == 0xBF)) | ((b1 == 0xB8) & (b2 <= 0x8F)) | (
            (b1 == 0xBC) & (((b2 >= 0x81) & (b2 <= 0x8F)) | ((b2 >= 0x9A) & (b2 <= 0xA0))
                            | (b2 >= 0xBB))) | (
            (b1 == 0xBD) & ((b2 == 0x80) | ((b2 >= 0x9B) & (b2 <= 0xA5))))))
    four = (b0 == 0xF0) & (b1 == 0x9F)
    for mask, width in ((two, 2), (three, 3), (four, 4)):
        at = leads[mask]
        for k in range(width):
            classes[np.minimum(at + k, len(classes) - 1)] = 0
