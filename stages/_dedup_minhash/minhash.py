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

Words are dedup words (stages/_shared/words.py: runs of characters that are not whitespace,
control characters or, with `strip_punctuation`, punctuation and symbols), found on the UTF-8
bytes; words and windows are hashed by stages/_shared/text_hash.py. Batches are cut into
~1 MB pieces (`pieces`) so the per-byte and per-word arrays stay in cache: this alone is
worth ~15%.

Why not numba or a C extension: not a dependency of this project, and the hot loop
(multiply, add, minimum over shingles x permutations) is already SIMD in numpy when laid out
permutation-major in cache-sized chunks; see benchmarks/minhash_bench.py for the figures.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from stages._shared.text_hash import (MASK64, fmix64, mix_constants, utf8_buffer, window_mix,
                                      word_hash, word_hashes, word_runs)
from stages._shared.words import dedup_word_bytes, dedup_words

MASK32 = (1 << 32) - 1
EMPTY = np.uint32(MASK32)  # datasketch's initial value: a signature of no shingles
# Text per piece of a batch (see `pieces`).
PIECE_BYTES = 1 << 20
# Shingles per chunk in `signatures`: num_perm x chunk uint32 (7 MB at 112) stays in cache.
CHUNK_SHINGLES = 16384


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


def pieces(strings: pa.Array, target_bytes: int = PIECE_BYTES) -> Iterator[tuple[int, pa.Array]]:
    """(first index, slice) of consecutive strings holding about `target_bytes` of text
    each, at least one string per slice."""
    if isinstance(strings, pa.ChunkedArray):
        strings = strings.combine_chunks()
    _, bounds = utf8_buffer(strings)
    start = 0
    while start < len(strings):
        stop = int(np.searchsorted(bounds, bounds[start] + target_bytes, side="right")) - 1
        stop = min(max(stop, start + 1), len(strings))
        yield start, strings.slice(start, stop - start)
        start = stop


# -- shingles ----------------------------------------------------------------------------------
def fmix32(x: np.ndarray) -> np.ndarray:
    """MurmurHash3's 32-bit finaliser, as datasketch applies it to every input hash."""
    x = x ^ (x >> np.uint32(16))
    x *= np.uint32(0x85EBCA6B)
    x ^= x >> np.uint32(13)
    x *= np.uint32(0xC2B2AE35)
    return x ^ (x >> np.uint32(16))


@dataclass(frozen=True)
class Shingles:
    """The shingle hashes of a batch: document i owns hashes[offsets[i]:offsets[i+1]]
    (unsorted, may repeat; empty for a document without words)."""

    hashes: np.ndarray  # uint32
    offsets: np.ndarray  # int64, len = documents + 1


def shingle_hashes(normalised: pa.Array, ngram: int, strip_punctuation: bool = True
                   ) -> Shingles:
    """Word `ngram`-gram hashes of each document. A document shorter than `ngram` words has
    one shingle, all its words, so short near-identical texts can still match; a document
    without words has none."""
    data, bounds = utf8_buffer(normalised)
    starts, lengths, counts = word_runs(dedup_word_bytes(data, strip_punctuation), bounds)
    hashes = word_hashes(data, starts, lengths)
    word_starts = np.concatenate([[0], np.cumsum(counts)])[:-1]
    per_doc = np.where(counts >= ngram, counts - ngram + 1, np.minimum(counts, 1))
    offsets = np.concatenate([[0], np.cumsum(per_doc)]).astype(np.int64)

    # Every window of `ngram` words in the flat word stream, then only the windows that
    # start inside a document and end before its last word: the last k words of a document
    # with more than k words start no window.
    windows = window_mix(hashes, ngram)
    starts_window = np.ones(len(hashes), bool)
    doc_ends = word_starts + counts
    for k in range(1, ngram):
        starts_window[(doc_ends - k)[counts > k]] = False
    values = windows[starts_window]

    short = np.flatnonzero((counts > 0) & (counts < ngram))
    if len(short):  # their single shingle mixes only the words they have
        partial = np.zeros(len(short), np.uint64)
        for k, c in enumerate(mix_constants(ngram - 1)):
            has = counts[short] > k
            partial[has] += hashes[word_starts[short[has]] + k] * np.uint64(c)
        values[offsets[short]] = partial
    # The high half of the mix depends on every bit of every word hash; datasketch's
    # fmix32 (applied in `signatures`) spreads it further.
    return Shingles((values >> np.uint64(32)).astype(np.uint32), offsets)


# -- the datasketch-compatible reference (scalar, slow; for checks and benchmarks) -------------
def datasketch_shingles(normalised: str, ngram: int, strip_punctuation: bool = True
                        ) -> list[bytes]:
    """The shingles of one normalised text as datasketch is fed them: words joined by a
    space, encoded as UTF-8."""
    found = dedup_words(normalised, strip_punctuation)
    if not found:
        return []
    if len(found) < ngram:
        return [" ".join(found).encode()]
    return [" ".join(found[i:i + ngram]).encode() for i in range(len(found) - ngram + 1)]


def datasketch_hashfunc(shingle: bytes) -> int:
    """The 32-bit shingle hash `shingle_hashes` computes, one shingle at a time; pass it as
    `hashfunc` to datasketch.MinHash to reproduce our signatures."""
    parts = shingle.split(b" ")
    mixed = sum(word_hash(w) * c for w, c in zip(parts, mix_constants(len(parts)))) & MASK64
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
    constants = mix_constants(rows + 1)
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


# -- verification ------------------------------------------------------------------------------
def jaccard(a: np.ndarray, b: np.ndarray) -> float:
    """Jaccard similarity of two sorted arrays of distinct values."""
    if len(a) == 0 and len(b) == 0:
        return 1.0
    common = len(np.intersect1d(a, b, assume_unique=True))
    return common / (len(a) + len(b) - common)
