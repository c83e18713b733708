"""Word hashing on whole batches of text: the one copy every stage that hashes words uses
(`dedup_minhash`'s shingles, `decontam`'s n-grams, the shuffles' partition of a node).

A batch is an Arrow string array; its UTF-8 bytes are read as one numpy buffer without a
copy (`utf8_buffer`). Which bytes belong to words is each stage's own definition
(stages/_shared/words.py); given that, `word_runs` finds the words as (start, length) runs
that never cross from one string into the next, `word_hashes` hashes each from its bytes,
`window_mix` combines every n consecutive word hashes into one, and `fmix64` spreads the
bits of a combined hash. No Python object is made per word.

All are fixed functions (no per-process seed): the same text hashes the same in every
process and every run, which resume, the shuffles and datasketch compatibility rely on
(stages/_dedup_minhash/minhash.py). `word_hash` is the same hash for one word, in plain
Python: the scalar reference the vectorised code is checked against.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import xxhash

MASK64 = (1 << 64) - 1
# Words longer than this are rare (URLs, blobs); they are hashed one by one with xxh3 rather
# than making the vectorised loop run once per 8 bytes of the longest word.
LONG_WORD = 64
_BYTE_MASKS = np.array([(1 << (8 * k)) - 1 for k in range(8)] + [MASK64], np.uint64)
_WORD_SEED, _WORD_MULTIPLIER = 0x27D4EB2F165667C5, 0x9FB21C651E98DF25
_WINDOW_SEED = 0x9E3779B97F4A7C15


def utf8_buffer(strings: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """The UTF-8 bytes of a string array without copying, and each string's [start, end)
    as int64 offsets into them (len = strings + 1)."""
    if isinstance(strings, pa.ChunkedArray):
        strings = strings.combine_chunks()
    if pa.types.is_large_string(strings.type):
        offset_type = np.int64
    else:
        strings = strings.cast(pa.string())
        offset_type = np.int32
    _, offsets, values = strings.buffers()
    bounds = np.frombuffer(offsets, offset_type)[strings.offset:strings.offset + len(strings) + 1]
    data = np.frombuffer(values, np.uint8) if values is not None else np.zeros(0, np.uint8)
    return data[bounds[0]:bounds[-1]], (bounds - bounds[0]).astype(np.int64)


def word_runs(inside: np.ndarray, bounds: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Start and length of every word (maximal run of True in `inside`, one bool per byte,
    cut at each string's boundary) and the number of words per string."""
    step = np.diff(inside.view(np.int8), prepend=np.int8(0), append=np.int8(0))
    begins, finishes = step == 1, step == -1
    edges = bounds[(bounds > 0) & (bounds < len(inside))]
    split = edges[inside[edges - 1] & inside[edges]]
    begins[split] = finishes[split] = True  # a word never runs into the next string
    starts, ends = np.flatnonzero(begins), np.flatnonzero(finishes)
    counts = np.diff(np.searchsorted(starts, bounds))
    return starts, ends - starts, counts


def word_hashes(data: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """A 64-bit hash per word: its bytes read 8 at a time (little-endian, zero-padded) and
    folded by xor-multiply, then `fmix64`; `word_hash` is the same function for one word."""
    padded = np.concatenate([data, np.zeros(8, np.uint8)])
    eight_bytes = np.lib.stride_tricks.sliding_window_view(padded, 8).view("<u8")[:, 0]
    multiplier, shift = np.uint64(_WORD_MULTIPLIER), np.uint64(29)
    state = lengths.astype(np.uint64) * np.uint64(_WORD_SEED)
    state ^= eight_bytes[starts] & _BYTE_MASKS[np.minimum(lengths, 8)]
    state *= multiplier
    state ^= state >> shift
    longer = np.flatnonzero((lengths > 8) & (lengths <= LONG_WORD))  # most words end above
    offset = 8
    while len(longer):
        chunk = eight_bytes[starts[longer] + offset]
        chunk &= _BYTE_MASKS[np.minimum(lengths[longer] - offset, 8)]
        folded = (state[longer] ^ chunk) * multiplier
        state[longer] = folded ^ (folded >> shift)
        offset += 8
        longer = longer[lengths[longer] > offset]
    hashes = fmix64(state)
    for word in np.flatnonzero(lengths > LONG_WORD):
        hashes[word] = xxhash.xxh3_64_intdigest(data[starts[word]:starts[word] + lengths[word]])
    return hashes


def word_hash(word: bytes) -> int:
    """`word_hashes` for one word."""
    if len(word) > LONG_WORD:
        return xxhash.xxh3_64_intdigest(word)
    state = len(word) * _WORD_SEED & MASK64
    for offset in range(0, len(word), 8):
        chunk = int.from_bytes(word[offset:offset + 8], "little")
        state = (state ^ chunk) * _WORD_MULTIPLIER & MASK64
        state ^= state >> 29
    return fmix64_int(state)


def mix_constants(count: int) -> list[int]:
    """Odd 64-bit multipliers, one per position of a window; derived, not drawn from an RNG
    whose stream could change between numpy versions. The first k are the same for any
    count >= k."""
    return [fmix64_int(_WINDOW_SEED * (k + 1) & MASK64) | 1 for k in range(count)]


def window_mix(hashes: np.ndarray, n: int) -> np.ndarray:
    """For every position i, the sum over k < n of hashes[i + k] * mix_constants(n)[k]
    (mod 2^64; hashes past the end count as 0), so the first len - n + 1 values are the
    windows of n consecutive hashes. A linear mix: finalise it (`fmix64`) or take its high
    bits where a uniform value is needed."""
    total = len(hashes)
    constants = [np.uint64(c) for c in mix_constants(n)]
    padded = np.concatenate([hashes, np.zeros(n - 1, np.uint64)])
    mixed = padded[:total] * constants[0]
    for k in range(1, n):
        mixed += padded[k:k + total] * constants[k]
    return mixed


def fmix64(x: np.ndarray) -> np.ndarray:
    """MurmurHash3's 64-bit finaliser (a bijection that spreads every input bit)."""
    x = x ^ (x >> np.uint64(33))
    x *= np.uint64(0xFF51AFD7ED558CCD)
    x ^= x >> np.uint64(33)
    x *= np.uint64(0xC4CEB9FE1A85EC53)
    return x ^ (x >> np.uint64(33))


def fmix64_int(x: int) -> int:
    """`fmix64` for one Python int in [0, 2^64)."""
    x ^= x >> 33
    x = x * 0xFF51AFD7ED558CCD & MASK64
    x ^= x >> 33
    x = x * 0xC4CEB9FE1A85EC53 & MASK64
    return x ^ (x >> 33)
