"""stages/_shared/text_hash.py: the vectorised hashes equal their scalar definitions, and
the buffer view and word runs respect string boundaries however the array is laid out."""

from __future__ import annotations

import random

import numpy as np
import pyarrow as pa
import pytest

from stages._shared.text_hash import (LONG_WORD, MASK64, fmix64, fmix64_int, mix_constants,
                                      utf8_buffer, window_mix, word_hash, word_hashes, word_runs)


def test_word_hashes_equal_the_scalar_hash_at_every_length():
    rng = random.Random(5)
    words = [bytes(rng.randrange(256) for _ in range(n)) for n in range(0, 3 * LONG_WORD)]
    data = np.frombuffer(b"".join(words), np.uint8)
    lengths = np.array([len(w) for w in words], np.int64)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    assert word_hashes(data, starts, lengths).tolist() == [word_hash(w) for w in words]
    assert len({word_hash(w) for w in words}) == len(words)


def test_fmix64_is_the_same_on_arrays_and_ints():
    values = [0, 1, 2**63, MASK64, 0x0123456789ABCDEF]
    assert fmix64(np.array(values, np.uint64)).tolist() == [fmix64_int(v) for v in values]


@pytest.mark.parametrize("n", [1, 3, 13])
def test_window_mix_is_the_weighted_sum_of_each_window(n):
    hashes = np.array([word_hash(str(i).encode()) for i in range(20)], np.uint64)
    constants = mix_constants(n)
    expected = [sum(int(h) * c for h, c in zip(hashes[i:i + n].tolist(), constants)) & MASK64
                for i in range(len(hashes))]
    assert window_mix(hashes, n).tolist() == expected
    assert mix_constants(n + 2)[:n] == constants and all(c % 2 for c in constants)


@pytest.mark.parametrize("layout", ["string", "large_string", "sliced", "chunked"])
def test_word_runs_stop_at_each_string_whatever_the_layout(layout):
    texts = ["xx", "ab", "", "cd ef", "gh"]
    array = pa.array(["skipped"] + texts, pa.string())
    array = {"string": array[1:].cast(pa.string()).take(pa.array(range(5))),
             "large_string": array[1:].cast(pa.large_string()),
             "sliced": array[1:],
             "chunked": pa.chunked_array([array[1:3], array[3:]])}[layout]
    data, bounds = utf8_buffer(array)
    assert data.tobytes() == "".join(texts).encode() and bounds.tolist() == [0, 2, 4, 4, 9, 11]
    starts, lengths, counts = word_runs(data != ord(" "), bounds)
    assert [data[s:s + n].tobytes() for s, n in zip(starts, lengths)] == \
        [b"xx", b"ab", b"cd", b"ef", b"gh"]
    assert counts.tolist() == [1, 1, 0, 2, 1]
