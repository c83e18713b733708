"""Word n-gram hashes for a batch of documents, vectorised over the batch's UTF-8 bytes.

Normalisation (benchmarks and documents go through the same code, so they agree exactly):
1. lowercase (Arrow's per-code-point `utf8_lower`: every script, one code point per code
   point, so character positions survive);
2. apostrophes (' ’ ‘) removed, so "don't" and "dont" are one token;
3. tokens are maximal runs of letters and digits; everything else separates them: ASCII
   punctuation and whitespace, and the common non-ASCII punctuation and symbol blocks
   (Latin-1 symbols and NBSP, U+2000-U+2BFF quotes/dashes/bullets/arrows/math, CJK and
   full-width punctuation, emoji). Other non-ASCII characters count as letters.

Why bytes and not `split_pattern_regex`: splitting 10 MB of text into 1.5 M Python-visible
tokens costs ~250 ms in Arrow; classifying the bytes with `bytes.translate` and hashing the
runs with numpy prefix sums costs ~40 ms, and never materialises a token string.

Token hash: polynomial over the token's bytes, computed from prefix sums in chunks of at most
`CHUNK` bytes (modulo 2**64, odd base, so a token's hash is independent of where it sits),
then a SplitMix64 finaliser. N-gram hash: polynomial over the n token hashes, finalised the
same way. Both are fixed functions: the same text hashes the same in every process.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

CHUNK = 1 << 20  # bytes hashed per prefix-sum pass (bounds temporary memory to ~32 MB)
_CUT_SEARCH = 4096  # look this far back for a separator to end a chunk on
_BYTE_BASE = 0x100000001B3
_GRAM_BASE = 0x9E3779B97F4A7C15
_MASK = (1 << 64) - 1
_APOSTROPHES = ("'", "\u2019", "\u2018")


def _class_table() -> bytes:
    table = bytearray(256)
    for b in range(256):
        ch = chr(b)
        table[b] = 1 if b >= 0x80 or ch.isascii() and ch.isalnum() else 0
    return bytes(table)


_CLASS = _class_table()
_LEADS = bytes(1 if b in (0xC2, 0xC3, 0xE2, 0xE3, 0xEF, 0xF0) else 0 for b in range(256))


def _powers(base: int, count: int) -> np.ndarray:
    out = np.empty(count, np.uint64)
    out[0] = 1
    filled = 1
    with np.errstate(over="ignore"):
        while filled < count:
            step = min(filled, count - filled)
            out[filled:filled + step] = out[:step] * np.uint64(pow(base, filled, 1 << 64))
            filled += step
    return out


_POW = _powers(_BYTE_BASE, CHUNK)
_INV = _powers(pow(_BYTE_BASE, -1, 1 << 64), CHUNK)


def mix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser: spreads every input bit over the output (uint64 array)."""
    with np.errstate(over="ignore"):
        x = x ^ (x >> np.uint64(30))
        x = x * np.uint64(0xBF58476D1CE4E5B9)
        x = x ^ (x >> np.uint64(27))
        x = x * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


def normalise(texts: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Lowercased, apostrophe-free copy of a string array (nulls become empty strings)."""
    if isinstance(texts, pa.ChunkedArray):
        texts = texts.combine_chunks() if texts.num_chunks != 1 else texts.chunk(0)
    texts = pc.utf8_lower(pc.fill_null(texts, ""))
    for mark in _APOSTROPHES:
        texts = pc.replace_substring(texts, mark, "")
    return texts


@dataclass
class Tokens:
    """The tokens of a batch: hash, byte span in the normalised text, and owning document."""

    hashes: np.ndarray   # uint64
    starts: np.ndarray   # int64, byte offsets into the batch buffer
    ends: np.ndarray     # int64, exclusive
    doc: np.ndarray      # int64, index of the document in the batch
    doc_offsets: np.ndarray  # int64, byte offset of each document (len = docs + 1)


def tokenize(normalised: pa.Array) -> Tokens:
    """Tokens of every document of a normalised string array (see `normalise`)."""
    data, offsets = _buffers(normalised)
    classes = np.frombuffer(data.tobytes().translate(_CLASS), np.uint8).copy()
    _separate_symbols(data, classes)
    inside = classes.astype(bool)
    before = np.zeros_like(inside)
    before[1:] = inside[:-1]
    after = np.zeros_like(inside)
    after[:-1] = inside[1:]
    bounds = offsets[(offsets > 0) & (offsets < len(inside))]
    before[bounds] = False          # a token never runs from one document into the next
    after[bounds - 1] = False
    starts = np.flatnonzero(inside & ~before)
    ends = np.flatnonzero(inside & ~after) + 1
    hashes = _token_hashes(data, starts, ends)
    first_token = np.searchsorted(starts, offsets)  # per document: its first token
    doc = np.repeat(np.arange(len(offsets) - 1), np.diff(first_token))
    return Tokens(hashes, starts, ends, doc, offsets)


def _buffers(array: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(bytes as uint8, document offsets rebased to 0) of a string or large_string array."""
    width = np.int64 if pa.types.is_large_string(array.type) else np.int32
    _, offset_buf, data_buf = array.buffers()
    offsets = np.frombuffer(offset_buf, width)[array.offset:array.offset + len(array) + 1]
    offsets = offsets.astype(np.int64)
    data = np.frombuffer(data_buf, np.uint8)[offsets[0]:offsets[-1]] if data_buf is not None \
        else np.zeros(0, np.uint8)
    return data, offsets - offsets[0]


def _separate_symbols(data: np.ndarray, classes: np.ndarray) -> None:
    """Mark the bytes of non-ASCII punctuation and symbols as separators (see docstring)."""
    leads = np.flatnonzero(np.frombuffer(data.tobytes().translate(_LEADS), np.uint8))
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


def _token_hashes(data: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    out = np.empty(len(starts), np.uint64)
    token = 0
    begin = 0
    total = len(data)
    while token < len(starts):
        # a chunk ends on a separator when one is near, so that no token is cut in two;
        # a run longer than CHUNK is cut anyway (such a run matches nothing)
        limit = min(begin + CHUNK, total)
        last = np.searchsorted(ends, limit, side="right")  # tokens ending inside the chunk
        if last == token:
            last = token + 1  # one run longer than the chunk: hash its first CHUNK bytes
        chunk_end = min(int(ends[last - 1]), begin + CHUNK)
        chunk = data[begin:chunk_end].astype(np.uint64)
        with np.errstate(over="ignore"):
            prefix = np.concatenate(([np.uint64(0)], np.cumsum(chunk * _POW[:len(chunk)])))
            lo = starts[token:last] - begin
            hi = np.minimum(ends[token:last], chunk_end) - begin
            out[token:last] = (prefix[hi] - prefix[lo]) * _INV[lo]
        token = last
        begin = int(starts[token]) if token < len(starts) else total
    return mix64(out)


def ngram_hashes(token_hashes: np.ndarray, n: int) -> np.ndarray:
    """Hash of every window of `n` consecutive tokens (len = tokens - n + 1, or 0)."""
    windows = len(token_hashes) - n + 1
    if windows <= 0:
        return np.zeros(0, np.uint64)
    out = np.zeros(windows, np.uint64)
    with np.errstate(over="ignore"):
        for k in range(n):
            out = out * np.uint64(_GRAM_BASE) + token_hashes[k:k + windows]
    return mix64(out)


def document_ngrams(tokens: Tokens, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(n-gram hashes, index of each window's first token), windows inside one document."""
    grams = ngram_hashes(tokens.hashes, n)
    if not len(grams):
        return grams, np.zeros(0, np.int64)
    first = np.arange(len(grams))
    same_doc = tokens.doc[:len(grams)] == tokens.doc[n - 1:]
    return grams[same_doc], first[same_doc]
