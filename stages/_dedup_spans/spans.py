"""What a span is, how it is hashed, and how duplicate spans are cut out of a text.

A span is either a paragraph (a line: Dolma and DCLM split on newlines) or `sentences`
consecutive sentences (C4's three-sentence spans; sentences from `sentences.py`). Spans
overlap in sentence mode: a window starts at every sentence. A span counts only if its
normalised text has at least `min_span_chars` characters: short lines and sentences that
every site has ("Read more.", "Share", "Home") are left alone by that rule, whichever page
happens to come first.

Normalised = case-folded (`str.casefold`) with every run of whitespace made one space and
the ends trimmed. Each sentence (or line) is hashed once, xxh3-64 of its normalised UTF-8
bytes; a span of n sentences is the mix of its n sentence hashes (`window_mix` of
stages/_shared/text_hash.py, finalised by `fmix64`), computed for a whole batch at once, so
no window's text is ever built. Its length (for `min_span_chars`) is that of its sentences'
normalised texts joined by single spaces. No seed: a span hashes the same in every process
and run, which resume and the shuffle rely on.

Cutting works on character ranges of the original text: a span's range covers its
sentences (or its line) with the whitespace (or newline) after them, and everything outside
the cut ranges is kept byte for byte.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, NamedTuple, Sequence

import numpy as np
import xxhash

from stages._dedup_spans.sentences import sentence_ranges
from stages._shared.text_hash import fmix64, window_mix

Unit = Literal["sentence_span", "paragraph"]


@dataclass(frozen=True)
class SpanRule:
    """How a document is cut into spans (the part of the stage's config that says it)."""

    unit: Unit
    sentences: int  # per span, in sentence_span mode
    min_span_chars: int  # of the normalised span


class Spans(NamedTuple):
    """A document's counted spans: [start, end) character ranges and their hashes."""

    starts: list[int]
    ends: list[int]
    hashes: list[int]


def normalise(piece: str) -> str:
    return " ".join(piece.casefold().split())


def paragraph_ranges(text: str) -> list[tuple[int, int]]:
    """[start, end) of every line, each with its newline."""
    ranges, start = [], 0
    for line in text.split("\n"):
        end = min(start + len(line) + 1, len(text))
        ranges.append((start, end))
        start = end
    return ranges


def batch_spans(texts: Sequence[str | None], rule: SpanRule
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Every counted span of every text: (document index, start, end, hash) arrays."""
    split = paragraph_ranges if rule.unit == "paragraph" else sentence_ranges
    width = 1 if rule.unit == "paragraph" else rule.sentences
    starts, ends, hashes, lengths, counts = [], [], [], [], []
    for text in texts:
        ranges = split(text) if text else []
        counts.append(len(ranges))
        for start, end in ranges:
            normalised = normalise(text[start:end])
            starts.append(start)
            ends.append(end)
            lengths.append(len(normalised))
            hashes.append(xxhash.xxh3_64_intdigest(normalised.encode("utf-8")))
    bounds = np.r_[0, np.cumsum(counts)].astype(np.int64)
    owner = np.repeat(np.arange(len(counts)), counts)
    first = np.arange(len(owner))  # a span starts at every unit ...
    last = first + width - 1
    inside = last < bounds[owner + 1]  # ... whose document has width - 1 more after it
    joined = np.r_[0, np.cumsum(np.array(lengths, np.int64) + 1)]
    span_length = joined[np.minimum(last + 1, len(owner))] - joined[first] - 1
    counted = np.flatnonzero(inside & (span_length >= rule.min_span_chars))
    mixed = fmix64(window_mix(np.array(hashes, np.uint64), width))
    return (owner[counted], np.array(starts, np.int64)[counted],
            np.array(ends, np.int64)[last[counted]] if len(counted) else np.zeros(0, np.int64),
            mixed[counted])


def document_spans(text: str, rule: SpanRule) -> Spans:
    """The counted spans of one text, in order."""
    _, starts, ends, hashes = batch_spans([text], rule)
    return Spans(starts.tolist(), ends.tolist(), hashes.tolist())


def batch_hashes(texts: Sequence[str | None], rule: SpanRule
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Row (position in `texts`) and hash of every distinct span of each document: a span
    repeated inside one document counts once for it. Sorted by (row, hash)."""
    rows, _, _, hashes = batch_spans(texts, rule)
    order = np.lexsort((hashes, rows))
    rows, hashes = rows[order], hashes[order]
    new = np.r_[True, (rows[1:] != rows[:-1]) | (hashes[1:] != hashes[:-1])] \
        if len(rows) else np.zeros(0, bool)
    return rows[new].astype(np.int64), hashes[new]


def cut_batch(texts: Sequence[str], rule: SpanRule, duplicates: Sequence[set[int]]
              ) -> list[tuple[str, int]]:
    """`cut` for each text, its spans found for the whole batch at once."""
    owner, starts, ends, hashes = batch_spans(texts, rule)
    bounds = np.searchsorted(owner, np.arange(len(texts) + 1))
    starts, ends, hashes = starts.tolist(), ends.tolist(), hashes.tolist()
    return [cut(text, Spans(starts[a:b], ends[a:b], hashes[a:b]), duplicate)
            for text, duplicate, a, b in zip(texts, duplicates, bounds[:-1], bounds[1:])]


def cut(text: str, spans: Spans, duplicate: set[int]) -> tuple[str, int]:
    """`text` without the spans whose hash is in `duplicate`, and the characters removed.
    Overlapping spans (sentence windows) are cut once."""
    pieces, removed, kept_from = [], 0, 0
    for start, end, value in zip(*spans):
        if value not in duplicate or end <= kept_from:
            continue
        start = max(start, kept_from)
        pieces.append(text[kept_from:start])
        removed += end - start
        kept_from = end
    if not removed:
        return text, 0
    pieces.append(text[kept_from:])
    return "".join(pieces), removed
