"""Word n-gram hashes for a batch of documents, vectorised over the batch's UTF-8 bytes.

Normalisation (benchmarks and documents go through the same code, so they agree exactly):
1. lowercase (Arrow's per-code-point `utf8_lower`: every script, one code point per code
   point, so character positions survive);
2. apostrophes (' ’ ‘) removed, so "don't" and "dont" are one token;
3. tokens are n-gram tokens (stages/_shared/words.py): maximal runs of letters and digits;
   ASCII punctuation and whitespace and the common non-ASCII punctuation and symbol blocks
   separate them; other non-ASCII characters count as letters.

Why bytes and not `split_pattern_regex`: splitting 10 MB of text into 1.5 M Python-visible
tokens costs ~250 ms in Arrow; classifying the bytes with `bytes.translate` and hashing the
runs with numpy never materialises a token string.

Token and n-gram hashes are stages/_shared/text_hash.py's word hash and window mix, the
n-gram finalised by `fmix64` (the index keys on its top bits). Both are fixed functions:
the same text hashes the same in every process.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from stages._shared.text_hash import fmix64, utf8_buffer, window_mix, word_hashes, word_runs
from stages._shared.words import NGRAM_APOSTROPHES, ngram_token_bytes


def normalise(texts: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Lowercased, apostrophe-free copy of a string array (nulls become empty strings)."""
    if isinstance(texts, pa.ChunkedArray):
        texts = texts.combine_chunks() if texts.num_chunks != 1 else texts.chunk(0)
    texts = pc.utf8_lower(pc.fill_null(texts, ""))
    for mark in NGRAM_APOSTROPHES:
        texts = pc.replace_substring(texts, mark, "")
    return texts


@dataclass(frozen=True)
class Tokens:
    """The tokens of a batch: hash, byte span in the normalised text, and owning document."""

    hashes: np.ndarray   # uint64
    starts: np.ndarray   # int64, byte offsets into the batch buffer
    ends: np.ndarray     # int64, exclusive
    doc: np.ndarray      # int64, index of the document in the batch
    doc_offsets: np.ndarray  # int64, byte offset of each document (len = docs + 1)


def tokenize(normalised: pa.Array) -> Tokens:
    """Tokens of every document of a normalised string array (see `normalise`)."""
    data, offsets = utf8_buffer(normalised)
    starts, lengths, counts = word_runs(ngram_token_bytes(data), offsets)
    hashes = word_hashes(data, starts, lengths)
    doc = np.repeat(np.arange(len(offsets) - 1), counts)
    return Tokens(hashes, starts, starts + lengths, doc, offsets)


def ngram_hashes(token_hashes: np.ndarray, n: int) -> np.ndarray:
    """Hash of every window of `n` consecutive tokens (len = tokens - n + 1, or 0)."""
    windows = len(token_hashes) - n + 1
    if windows <= 0:
        return np.zeros(0, np.uint64)
    return fmix64(window_mix(token_hashes, n)[:windows])


def document_ngrams(tokens: Tokens, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(n-gram hashes, index of each window's first token), windows inside one document."""
    grams = ngram_hashes(tokens.hashes, n)
    if not len(grams):
        return grams, np.zeros(0, np.int64)
    first = np.arange(len(grams))
    same_doc = tokens.doc[:len(grams)] == tokens.doc[n - 1:]
    return grams[same_doc], first[same_doc]
