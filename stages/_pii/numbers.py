"""Runs of numbers in a whole batch at once: where cards, SSNs, IPv4 addresses and phone
numbers can be.

A run is digit groups joined by short separators (up to 5 bytes of space, no-break space,
`-`, en dash, `.`, `/`, parentheses): `4111 1111 1111 1111`, `+44 (0)115 496 0914`,
`8.8.8.8`, `123-45-6789`, but also `12.05.2023`. Runs are found on the batch's UTF-8 bytes with numpy (a regex scan
for digits costs ~10 ns a character in Python's `re`; this ~3), and only runs with at least
`MIN_DIGITS` digits are handed to the finders as character offsets, so a page whose numbers
are all years and counts costs no Python per number. Digits are ASCII: the finders'
validation (Luhn, `ipaddress`, phone plans) reads ASCII digits.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from stages._shared.text_hash import utf8_buffer, word_runs

MIN_DIGITS = 4  # fewer than any finder needs (an IPv4 address has 4)
MAX_GAP = 5  # separator bytes between two digit groups of one run (` – ` is 5)
# Separator bytes; C2 A0 is the no-break space, E2 80 93 the en dash. (A byte of these
# inside another character, `°` = C2 B0, fails the check of the bytes beside it.)
_SEPARATOR = np.zeros(256, bool)
_SEPARATOR[list(b" -./()\xc2\xa0\xe2\x80\x93")] = True


def number_runs(texts: pa.Array | pa.ChunkedArray) -> dict[int, list[tuple[int, int, int]]]:
    """{row: [(start, end, digits), ...]} in UTF-8 byte offsets of each row's text, for the
    rows that have a run of MIN_DIGITS digits or more (`in_characters` converts)."""
    data, bounds = utf8_buffer(texts)
    if not len(data):
        return {}
    is_digit = (data - np.uint8(48)) < 10
    starts, lengths, counts = word_runs(is_digit, bounds)
    if not len(starts):
        return {}
    ends = starts + lengths
    row = np.repeat(np.arange(len(counts)), counts)
    gap = starts[1:] - ends[:-1]
    joined = (gap <= MAX_GAP) & (row[1:] == row[:-1])
    last_byte = len(data) - 1
    for k in range(MAX_GAP):
        joined &= (gap <= k) | _SEPARATOR[data[np.minimum(ends[:-1] + k, last_byte)]]
    first = np.flatnonzero(np.concatenate([[True], ~joined]))
    last = np.concatenate([first[1:] - 1, [len(starts) - 1]])
    digits = np.add.reduceat(lengths, first)
    keep = digits >= MIN_DIGITS
    runs: dict[int, list[tuple[int, int, int]]] = {}
    for r, b_start, b_end, n in zip(row[first][keep].tolist(), starts[first][keep].tolist(),
                                    ends[last][keep].tolist(), digits[keep].tolist()):
        runs.setdefault(r, []).append((b_start - int(bounds[r]), b_end - int(bounds[r]), n))
    return runs


def in_characters(text: str, runs: list[tuple[int, int, int]]) -> list[tuple[int, int, int]]:
    """`runs` of `text` with byte offsets turned into character offsets."""
    if text.isascii():
        return runs
    encoded = np.frombuffer(text.encode("utf-8", "surrogatepass"), np.uint8)
    chars_before = np.concatenate([[0], np.cumsum((encoded & 0xC0) != 0x80)])
    return [(int(chars_before[s]), int(chars_before[e]), n) for s, e, n in runs]
