"""length_filter on hand-written texts at its bounds."""

import pyarrow as pa

from stages.length_filter import LengthFilter, LengthFilterConfig


def run(texts, **config):
    out = LengthFilter(LengthFilterConfig(**config)).process(pa.table({"text": texts}))
    return out.reasons.to_pylist(), out.table["n_words"].to_pylist()


def test_word_bounds_are_inclusive_and_reasons_carry_the_measure():
    reasons, words = run(["one two", "one two three", "a b c d e", "a b c d e f"],
                         min_words=3, max_words=5)
    assert words == [2, 3, 5, 6]
    assert reasons == ["too_short:words=2", None, None, "too_long:words=6"]


def test_whitespace_edges_and_empty_text_count_correctly():
    reasons, words = run(["", "   ", None, "  one\n\ntwo  ", "tab\tseparated words"],
                         min_words=1, max_words=None)
    assert words == [0, 0, 0, 2, 3]
    assert reasons == ["too_short:words=0"] * 3 + [None, None]


def test_character_bounds():
    reasons, _ = run(["abc", "abcd", "abcdefgh"], min_words=None, max_words=None,
                     min_chars=4, max_chars=7)
    assert reasons == ["too_short:chars=3", None, "too_long:chars=8"]
