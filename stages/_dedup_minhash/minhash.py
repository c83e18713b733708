"""Vectorised MinHash for `dedup_minhash`: words, shingles, signatures, LSH bands.

Compatibility with datasketch (>= 2.0, its default "affine32" scheme): the signature of a
document equals, bit for bit, what

    m = datasketch.MinHash(num_perm, seed=seed, hashfunc=datasketch_hashfunc)
    m.update_batch(datasketch_shingles(normalised_text, ngram))

computes, so estimates agree exactly and our signatures can be queried against a datasketch
index built that way. Only the input hash differs from datasketch's default (SHA-1, ~0.4 us a
shingle in Python): a word hashes from its bytes read 8 at a time, a shingle is a fixed
linear mix of its words' hashes, and both run as a few numpy passes over the whole batch.
The permutations are datasketch's: `a * fmix32(h) + b mod 2^32` with the same `a`, `b` drawn
from `numpy.random.RandomState(seed)`.

Words are maximal runs of characters that are not separators: whitespace (`str.isspace`),
control characters and, with `strip_punctuation`, Unicode punctuation and symbols (categories
P*, S*). They are found on the UTF-8 bytes: ASCII by two comparisons, and only non-ASCII
characters are decoded and looked up. Batches are cut into ~1 MB pieces (`pieces`) so the
per-byte and per-word arrays stay in cache: this alone is worth ~15%.

Why not numba or a C extension: not a dependency of this project, and the hot loop
(multiply, add, minimum over shingles x permutations) is already SIMD in numpy when laid out
permutation-major in cache-sized chunks; see benchmarks/minhash_bench.py for the figures.
"""

from __future__ import annotations

import functools
import unicodedata
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import xxhash

MASK32 = (1 << 32) - 1
MASK64 = (1 << 64) - 1
EMPTY = np.uint32(MASK32)  # datasketch's initial value: a signature of no shingles
# Text per piece of a batch (see `pieces`).
PIECE_BYTES = 1 << 20
# Shingles per chunk in `signatures`: num_perm x chunk uint32 (7 MB at 112) stays in cache.
CHUNK_SHINGLES = 16384
# Words longer than this are rare (URLs, blobs); they are hashed one by one with xxh3 rather
# than making the vectorised loop run once per 8 bytes of the longest word.
LONG_WORD = 64
_BYTE_MASKS = np.array([(1 << (8 * k)) - 1 for k in range(8)] + [MASK64], np.uint64)
_WORD_SEED, _WORD_MULTIPLIER = 0x27D4EB2F165667C5, 0x9FB21C651E98DF25


# -- normalisation and words -------------------------------------------------------------------
def normalise(text: pa.Array, *, lowercase: bool = True, strip_digits: bool = False) -> pa.Array:
    """Text as shingles see it, before the split into words (which drops punctuation and
    folds whitespace)."""
    text = pc.fill_null(text, "")
    try:
        return _normalise(text, lowercase, strip_digits)
    except pa.ArrowInvalid:  # invalid UTF-8 (Parquet input is not validated): repair it
        repaired = [b.decode("utf-8", "replace") for b in text.cast(pa.binary()).to_pylist()]
        return _normalise(pa.array(repaired, pa.string()), lowercase, strip_digits)


def _normalise(text: pa.Array, lowercase: bool, strip_digits: bool) -> pa.Array:
    if lowercase:
        text = pc.utf8_lower(text)
    if strip_digits:
        text = pc.replace_substring_regex(text, r"\d", "0")
    return text


@functools.lru_cache(maxsize=2)
def separators(strip_punctuation: bool) -> np.ndarray:
    """A bool per code point: does it separate words? Whitespace and control characters do;
    with `strip_punctuation`, punctuation and symbols too (Unicode categories P*, S*).
    Built once per process (0.1 s) from Python's unicodedata, which the scalar reference
    below uses too."""
    def separates(char: str) -> bool:
        category = unicodedata.category(char)
        return char.isspace() or category == "Cc" or (strip_punctuation and category[0] in "PS")
    table = np.fromiter(map(separates, map(chr, range(0x110000))), bool, 0x110000)
    # `_ascii_word_bytes` tests ASCII with two comparisons instead of this table.
    if not np.array_equal(~table[:128], _ascii_word_bytes(np.arange(128, dtype=np.uint8),
                                                           strip_punctuation)):
        raise RuntimeError("this Python's Unicode tables classify ASCII unexpectedly")
    return table


def _ascii_word_bytes(data: np.ndarray, strip_punctuation: bool) -> np.ndarray:
    """Word bytes among ASCII (letters and digits, or every printable character without
    `strip_punctuation`); bytes of multi-byte characters count as word bytes here."""
    if strip_punctuation:
        inside = (data | np.uint8(0x20)) - np.uint8(ord("a")) < np.uint8(26)
        inside |= data - np.uint8(ord("0")) < np.uint8(10)
    else:
        inside = data - np.uint8(0x21) < np.uint8(0x7F - 0x21)
    inside |= data >= np.uint8(0x80)
    return inside


def words(normalised: str, strip_punctuation: bool = True) -> list[str]:
    """The words of one text, as `shingle_hashes` finds them (the scalar reference)."""
    table = separators(strip_punctuation)
    return "".join(" " if table[ord(c)] else c for c in normalised).split()


def pieces(strings: pa.Array, target_bytes: int = PIECE_BYTES) -> Iterator[tuple[int, pa.Array]]:
    """(first index, slice) of consecutive strings holding about `target_bytes` of text
    each, at least one string per slice."""
    if isinstance(strings, pa.ChunkedArray):
        strings = strings.combine_chunks()
    _, bounds = _utf8_buffer(strings)
    start = 0
    while start < len(strings):
        stop = int(np.searchsorted(bounds, bounds[start] + target_bytes, side="right")) - 1
        stop = min(max(stop, start + 1), len(strings))
        yield start, strings.slice(start, stop - start)
        start = stop


def _utf8_buffer(strings: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """The UTF-8 bytes of a string array without copying, and each string's [start, end)."""
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


def _word_bytes(data: np.ndarray, table: np.ndarray, strip_punctuation: bool) -> np.ndarray:
    """True for every byte of a word character. ASCII bytes are classified by comparisons;
    multi-byte characters are decoded from their lead byte (only those, usually few)."""
    inside = _ascii_word_bytes(data, strip_punctuation)
    lead = np.flatnonzero(data >= 0xC0)
    if len(lead):
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


def _words(data: np.ndarray, bounds: np.ndarray, strip_punctuation: bool
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Start and length of every word (maximal run of word bytes inside one string) and
    the number of words per string."""
    inside = _word_bytes(data, separators(strip_punctuation), strip_punctuation)
    step = np.diff(inside.view(np.int8), prepend=np.int8(0), append=np.int8(0))
    begins, finishes = step == 1, step == -1
    edges = bounds[(bounds > 0) & (bounds < len(data))]
    split = edges[inside[edges - 1] & inside[edges]]
    begins[split] = finishes[split] = True  # a word never runs into the next document
    starts, ends = np.flatnonzero(begins), np.flatnonzero(finishes)
    counts = np.diff(np.searchsorted(starts, bounds))
    return starts, ends - starts, counts


def _word_hashes(data: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """A 64-bit hash per word: its bytes read 8 at a time (little-endian, zero-padded) and
    folded by xor-multiply, then mixed; `word_hash` is the same function for one word."""
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


# -- shingles ----------------------------------------------------------------------------------
def _mix_constants(count: int) -> list[int]:
    """Odd 64-bit multipliers, one per shingle position; derived, not drawn from an RNG
    whose stream could change between numpy versions."""
    return [_fmix64_int(0x9E3779B97F4A7C15 * (k + 1) & MASK64) | 1 for k in range(count)]


def _fmix64_int(x: int) -> int:
    x ^= x >> 33
    x = x * 0xFF51AFD7ED558CCD & MASK64
    x ^= x >> 33
    x = x * 0xC4CEB9FE1A85EC53 & MASK64
    return x ^ (x >> 33)


def fmix64(x: np.ndarray) -> np.ndarray:
    """MurmurHash3's 64-bit finaliser (a bijection that spreads every input bit)."""
    x = x ^ (x >> np.uint64(33))
    x *= np.uint64(0xFF51AFD7ED558CCD)
    x ^= x >> np.uint64(33)
    x *= np.uint64(0xC4CEB9FE1A85EC53)
    return x ^ (x >> np.uint64(33))


def fmix32(x: np.ndarray) -> np.ndarray:
    """MurmurHash3's 32-bit finaliser, as datasketch applies it to every input hash."""
    x = x ^ (x >> np.uint32(16))
    x *= np.uint32(0x85EBCA6B)
    x ^= x >> np.uint32(13)
    x *= np.uint32(0xC2B2AE35)
    return x ^ (x >> np.uint32(16))


@dataclass
class Shingles:
    """The shingle hashes of a batch: document i owns hashes[offsets[i]:offsets[i+1]]
    (unsorted, may repeat; empty for a document without words)."""

    hashes: np.ndarray  # uint32
    offsets: np.ndarray  # int64, len = documents + 1

    def of(self, doc: int) -> np.ndarray:
        return self.hashes[self.offsets[doc]:self.offsets[doc + 1]]


def shingle_hashes(normalised: pa.Array, ngram: int, strip_punctuation: bool = True
                   ) -> Shingles:
    """Word `ngram`-gram hashes of each document. A document shorter than `ngram` words has
    one shingle, all its words, so short near-identical texts can still match; a document
    without words has none."""
    data, bounds = _utf8_buffer(normalised)
    starts, lengths, counts = _words(data, bounds, strip_punctuation)
    word_hashes = _word_hashes(data, starts, lengths)
    word_starts = np.concatenate([[0], np.cumsum(counts)])[:-1]
    per_doc = np.where(counts >= ngram, counts - ngram + 1, np.minimum(counts, 1))
    offsets = np.concatenate([[0], np.cumsum(per_doc)]).astype(np.int64)
    constants = [np.uint64(c) for c in _mix_constants(ngram)]

    # Every window of `ngram` words in the flat word stream, then only the windows that
    # start inside a document and end before its last word: the last k words of a document
    # with more than k words start no window.
    total = len(word_hashes)
    padded = np.concatenate([word_hashes, np.zeros(ngram - 1, np.uint64)])
    windows = padded[:total] * constants[0]
    for k in range(1, ngram):
        windows += padded[k:k + total] * constants[k]
    starts_window = np.ones(total, bool)
    doc_ends = word_starts + counts
    for k in range(1, ngram):
        starts_window[(doc_ends - k)[counts > k]] = False
    values = windows[starts_window]

    short = np.flatnonzero((counts > 0) & (counts < ngram))
    if len(short):  # their single shingle mixes only the words they have
        partial = np.zeros(len(short), np.uint64)
        for k, c in enumerate(constants[:-1]):
            has = counts[short] > k
            partial[has] += word_hashes[word_starts[short[has]] + k] * c
        values[offsets[short]] = partial
    # The high half of the mix depends on every bit of every word hash; datasketch's
    # fmix32 (applied in `signatures`) spreads it further.
    return Shingles((values >> np.uint64(32)).astype(np.uint32), offsets)


# -- the datasketch-compatible reference (scalar, slow; for checks and benchmarks) -------------
def word_hash(word: bytes) -> int:
    """`_word_hashes` for one word."""
    if len(word) > LONG_WORD:
        return xxhash.xxh3_64_intdigest(word)
    state = len(word) * _WORD_SEED & MASK64
    for offset in range(0, len(word), 8):
        chunk = int.from_bytes(word[offset:offset + 8], "little")
        state = (state ^ chunk) * _WORD_MULTIPLIER & MASK64
        state ^= state >> 29
    return _fmix64_int(state)


def datasketch_shingles(normalised: str, ngram: int, strip_punctuation: bool = True
                        ) -> list[bytes]:
    """The shingles of one normalised text as datasketch is fed them: words joined by a
    space, encoded as UTF-8."""
    found = words(normalised, strip_punctuation)
    if not found:
        return []
    if len(found) < ngram:
        return [" ".join(found).encode()]
    return [" ".join(found[i:i + ngram]).encode() for i in range(len(found) - ngram + 1)]


def datasketch_hashfunc(shingle: bytes) -> int:
    """The 32-bit shingle hash `shingle_hashes` computes, one shingle at a time; pass it as
    `hashfunc` to datasketch.MinHash to reproduce our signatures."""
    parts = shingle.split(b" ")
    mixed = sum(word_hash(w) * c for w, c in zip(parts, _mix_constants(len(parts)))) & MASK64
    return mixed >> 32


# -- signatures and bands ----------------------------------------------------------------------
def permutations(num_perm: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """datasketch's affine32 permutation parameters (odd `a`, any `b`) for `seed`."""
    gen = np.random.RandomState(seed)
    a = gen.randint(0, 1 << 31, num_perm, dtype=np.uint32) * np.uint32(2) + np.uint32(1)
    b = gen.randint(0, 1 << 32, num_perm, dtype=np.uint32)
    return a, b


def signatures(shingles: Shingles, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """MinHash signatures, one row of len(a) uint32 per document; a document without
    shingles keeps the EMPTY value in every slot."""
    docs = len(shingles.offsets) - 1
    by_perm = np.full((len(a), docs), EMPTY, np.uint32)
    mixed = fmix32(shingles.hashes)
    owner = np.repeat(np.arange(docs), np.diff(shingles.offsets))
    # Permutation-major: each row of the buffer is one permutation over a run of shingles,
    # so multiply, add and the per-document minimum all stream over contiguous memory.
    buffer = np.empty((len(a), CHUNK_SHINGLES), np.uint32)
    a_col, b_col = a[:, None], b[:, None]
    for start in range(0, len(mixed), CHUNK_SHINGLES):
        stop = min(start + CHUNK_SHINGLES, len(mixed))
        permuted = buffer[:, :stop - start]
        np.multiply(a_col, mixed[None, start:stop], out=permuted)
        np.add(permuted, b_col, out=permuted)
        chunk_owner = owner[start:stop]
        runs = np.flatnonzero(np.r_[True, chunk_owner[1:] != chunk_owner[:-1]])
        owners = chunk_owner[runs]  # a document may span two chunks: fold into its column
        by_perm[:, owners] = np.minimum(by_perm[:, owners],
                                        np.minimum.reduceat(permuted, runs, axis=1))
    return np.ascontiguousarray(by_perm.T)


def band_hashes(sig: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """One 64-bit hash per (document, band) of `rows` signature values; the band number is
    mixed in, so equal values in different bands are different buckets. (datasketch keys a
    bucket by the raw bytes; a 64-bit digest is 2-8x smaller and collides with odds ~2^-64.)"""
    values = sig[:, :bands * rows].reshape(len(sig), bands, rows).astype(np.uint64)
    constants = _mix_constants(rows + 1)
    mixed = np.broadcast_to(np.arange(1, bands + 1, dtype=np.uint64) * np.uint64(constants[-1]),
                            (len(sig), bands)).copy()
    for k in range(rows):
        mixed += values[:, :, k] * np.uint64(constants[k])
    return fmix64(mixed)


# -- LSH parameters ----------------------------------------------------------------------------
def optimal_bands_rows(threshold: float, num_perm: int, false_positive_weight: float = 0.5,
                       false_negative_weight: float = 0.5) -> tuple[int, int]:
    """(bands, rows) minimising the weighted false positive + false negative areas under the
    LSH S-curve, as datasketch's `_optimal_param` does, but vectorised: every candidate
    (b, r) evaluated at once on a Simpson grid instead of ~1,200 calls to scipy's quad, and
    without relying on a private datasketch function."""
    pairs = np.array([(b, r) for b in range(1, num_perm + 1)
                      for r in range(1, num_perm // b + 1)], np.float64)
    b, r = pairs[:, :1], pairs[:, 1:]
    below = _simpson(lambda s: 1 - (1 - s ** r) ** b, 0.0, threshold)
    above = _simpson(lambda s: (1 - s ** r) ** b, threshold, 1.0)
    error = false_positive_weight * below + false_negative_weight * above
    best = int(np.argmin(error))  # first minimum, in datasketch's (b, then r) order
    return int(pairs[best, 0]), int(pairs[best, 1])


def _simpson(fn, low: float, high: float, intervals: int = 2048) -> np.ndarray:
    s = np.linspace(low, high, intervals + 1)[None, :]
    weights = np.ones(intervals + 1)
    weights[1:-1:2], weights[2:-1:2] = 4, 2
    return (fn(s) * weights).sum(axis=1) * (high - low) / (3 * intervals)


def candidate_probability(similarity: float, bands: int, rows: int) -> float:
    """Chance that two documents with this Jaccard similarity share at least one bucket."""
    return 1 - (1 - similarity ** rows) ** bands


# -- verification ------------------------------------------------------------------------------
def jaccard(a: np.ndarray, b: np.ndarray) -> float:
    """Jaccard similarity of two sorted arrays of distinct values."""
    if len(a) == 0 and len(b) == 0:
        return 1.0
    common = len(np.intersect1d(a, b, assume_unique=True))
    return common / (len(a) + len(b) - common)
