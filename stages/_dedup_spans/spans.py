"""What a span is, how it is hashed, and how duplicate spans are cut out of a text.

A span is either a paragraph (a line: Dolma and DCLM split on newlines) or `sentences`
consecutive sentences (C4's three-sentence spans; sentences from `sentences.py`). Spans
overlap in sentence mode: a window starts at every sentence. A span counts only if its
normalised text has at least `min_span_chars` characters: short lines and sentences that
every site has ("Read more.", "Share", "Home") are left alone by that rule, whichever page
happens to come first.

Normalised = case-folded (`str.casefold`) with every run of whitespace made one space and
the ends trimmed; a sentence window is its sentences' normalised texts joined by one space.
The hash is xxh3-64 of the normalised UTF-8 bytes: one call per span on a string already
built, so the word-level hashing of stages/_shared/text_hash.py (made for windows of words)
would only add work here; what this stage takes from it is `fmix64`, for the Bloom filter's
bit positions. No seed: a span hashes the same in every process and run, which resume and
the shuffle rely on.

Cutting works on character ranges of the original text: a span's range covers its
sentences (or its line) with the whitespace (or newline) after them, and everything outside
the cut ranges is kept byte for byte.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Literal, NamedTuple

import numpy as np
import xxhash

from stages._dedup_spans.sentences import sentence_ranges

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


def span_hash(normalised: str) -> int:
    return xxhash.xxh3_64_intdigest(normalised.encode("utf-8"))


def paragraph_ranges(text: str) -> list[tuple[int, int]]:
    """[start, end) of every line, each with its newline."""
    ranges, start = [], 0
    for line in text.split("\n"):
        end = min(start + len(line) + 1, len(text))
        ranges.append((start, end))
        start = end
    return ranges


def document_spans(text: str, rule: SpanRule) -> Spans:
    """The spans of `text` that count (long enough), in order."""
    spans = Spans([], [], [])
    if rule.unit == "paragraph":
        for start, end in paragraph_ranges(text):
            _add(spans, start, end, normalise(text[start:end]), rule.min_span_chars)
        return spans
    ranges = sentence_ranges(text)
    n = rule.sentences
    texts = [normalise(text[start:end]) for start, end in ranges]
    for i in range(len(ranges) - n + 1):
        _add(spans, ranges[i][0], ranges[i + n - 1][1], " ".join(texts[i:i + n]),
             rule.min_span_chars)
    return spans


def _add(spans: Spans, start: int, end: int, normalised: str, min_chars: int) -> None:
    if len(normalised) >= min_chars:
        spans.starts.append(start)
        spans.ends.append(end)
        spans.hashes.append(span_hash(normalised))


def batch_hashes(texts: Iterable[str | None], rule: SpanRule
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Row (position in `texts`) and hash of every distinct span of each document: a span
    repeated inside one document counts once for it."""
    rows: list[int] = []
    hashes: list[int] = []
    for row, text in enumerate(texts):
        if text:
            distinct = set(document_spans(text, rule).hashes)
            rows.extend([row] * len(distinct))
            hashes.extend(distinct)
    return np.array(rows, np.int64), np.array(hashes, np.uint64)


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
