"""The word definitions of stages/_shared/words.py: each form of a definition agrees with the
others, and the byte-level definitions find the words their stated rule names."""

from __future__ import annotations

import random

import numpy as np
import pyarrow as pa
import pytest

from stages._shared.text_hash import utf8_buffer, word_runs
from stages._shared.words import (LETTER_WORD, count_words, dedup_word_bytes, dedup_words,
                                  ngram_token_bytes, whitespace_words)

# Every Unicode whitespace character (and the ASCII separators str.split also splits on).
WHITESPACE = [chr(c) for c in range(0x3001) if chr(c).isspace()]
SAMPLES = ["", "   ", "one", " two  words ", "end. of\tline\nnext", "tab\u00a0nbsp\u3000ideo",
           "a\x1cb\x1dc\x1ed\x1fe", "\u2028line\u2029para\u0085nel", "don't — “quoted” …"]


def random_texts(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    alphabet = list("abcXYZ019 .,'’-—“”!?_") + WHITESPACE + [
        "é", "ß", "ж", "中", "😀", "\u0301", "\u200b", "\x00", "\x07", "\u2022", "\uff01",
        "\u3002", "\u0964", "\ufeff"]
    return ["".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 60)))
            for _ in range(count)]


def runs_as_strings(texts: list[str], inside_of) -> list[list[str]]:
    """The words `word_runs` finds in each text, given a bool-per-byte definition."""
    array = pa.array(texts, pa.string())
    data, bounds = utf8_buffer(array)
    starts, lengths, counts = word_runs(inside_of(data), bounds)
    raw = data.tobytes()
    found = [raw[s:s + n].decode() for s, n in zip(starts.tolist(), lengths.tolist())]
    per_text = np.concatenate([[0], np.cumsum(counts)])
    return [found[per_text[i]:per_text[i + 1]] for i in range(len(texts))]


def test_whitespace_words_are_the_same_in_arrow_and_python():
    texts = SAMPLES + [f"a{w}b" for w in WHITESPACE] + random_texts(500, seed=1)
    counted = count_words(pa.array(texts, pa.string())).to_pylist()
    assert counted == [len(whitespace_words(t)) for t in texts]
    assert counted[:4] == [0, 0, 1, 2]


@pytest.mark.parametrize("strip_punctuation", [True, False])
def test_dedup_words_on_bytes_equal_the_scalar_reference(strip_punctuation):
    texts = SAMPLES + random_texts(500, seed=2)
    found = runs_as_strings(texts, lambda data: dedup_word_bytes(data, strip_punctuation))
    assert found == [dedup_words(t, strip_punctuation) for t in texts]
    assert found[SAMPLES.index("don't — “quoted” …")] == (
        ["don", "t", "quoted"] if strip_punctuation else ["don't", "—", "“quoted”", "…"])


def ngram_tokens_by_rule(text: str) -> list[str]:
    """Words 4 of words.py written from its docstring, one character at a time."""
    def separates(ch: str) -> bool:
        cp = ord(ch)
        if cp < 0x80:
            return not ch.isalnum()
        return (0x80 <= cp <= 0xBF or cp in (0xD7, 0xF7) or 0x2000 <= cp <= 0x2BFF
                or 0x3000 <= cp <= 0x303F or cp == 0xFEFF or 0xFE00 <= cp <= 0xFE0F
                or 0xFF01 <= cp <= 0xFF0F or 0xFF1A <= cp <= 0xFF20 or 0xFF3B <= cp <= 0xFF40
                or 0xFF5B <= cp <= 0xFF65 or 0x1F000 <= cp <= 0x1FFFF)
    tokens, current = [], ""
    for ch in text + " ":
        if separates(ch):
            tokens += [current] if current else []
            current = ""
        else:
            current += ch  # non-ASCII whitespace outside the blocks (U+1680) is a letter here
    return tokens


def test_ngram_tokens_on_bytes_follow_the_stated_rule():
    texts = SAMPLES + random_texts(500, seed=3) + ["a\u00a0b\u00d7c\u00f7d é", "x\U0001F600y"]
    assert runs_as_strings(texts, ngram_token_bytes) == [ngram_tokens_by_rule(t) for t in texts]


def test_letter_words_keep_combining_marks_and_split_at_apostrophes():
    assert LETTER_WORD.findall("don't stop") == ["don", "t", "stop"]
    assert LETTER_WORD.findall("नमस्ते दुनिया") == ["नमस्ते", "दुनिया"]  # virama and vowel signs
