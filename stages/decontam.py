"""`decontam`: find benchmark text (test questions, answers, solutions) inside documents.

The benchmark files named in the spec are read once, on the driver (`prepare`), into an index
of word n-grams (default 13 tokens, as GPT-3; normalisation in stages/_decontam/ngrams.py:
lowercase, apostrophes removed, the n-gram tokens of stages/_shared/words.py); workers
receive it through the Ray object store.
Each field of each item (e.g. `question`, `answer`) is indexed on its own, after removing
per-benchmark `strip` patterns (GSM8K's `<<48/2=24>>` calculator notes) and prompt
`templates` ("Question:", "Answer:", "### Response:"). A text shorter than n tokens cannot be
found at this n; the index reports how many there are.

Per document the stage lists every benchmark item whose n-grams occur in it (`contamination`:
sorted "benchmark:item" strings, empty when clean; `contamination_ngrams`: matching windows).
- `mode: drop` rejects a document that hits any item: reason `contaminated:<benchmarks>`.
- `mode: redact` removes each matching span plus `margin_chars` on both sides, discards the
  pieces left shorter than `min_piece_chars`, and keeps the rest joined by blank lines
  (GPT-3's procedure). A document cut more than `max_splits` times, or with nothing left, is
  rejected as in drop mode.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Literal

import numpy as np
import pyarrow as pa
from pydantic import (BaseModel, ConfigDict, Field, ValidationInfo, field_validator,
                      model_validator)

from pipeline.registry import register
from pipeline.stage import (SpecPath, Stage, StageConfig, StageOutput, named_files, reason,
                            reasons_or_none, with_column)
from stages._decontam.index import BenchmarkSource, NgramIndex, build_index, check_readable
from stages._decontam.ngrams import document_ngrams, normalise, tokenize
from stages._shared.words import NGRAM_APOSTROPHES

log = logging.getLogger(__name__)

DEFAULT_TEMPLATES = [
    r"^[ \t]*(?:question|answer|q|a|problem|solution|context|passage|input|output|"
    r"instruction|response|prompt|completion)[ \t]*:",
    r"^[ \t]*#{1,4}[ \t]*(?:instruction|response|input|output)\b[ \t]*:?",
]


class BenchmarkConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: SpecPath = Field(description="JSONL/JSON, Parquet or CSV/TSV file (optionally .gz); "
                                       "relative paths start at the spec's folder")
    name: str | None = Field(None, description="benchmark name in reasons and columns; "
                                               "default: the file name without extensions")
    fields: list[str] | None = Field(None, description="fields holding benchmark text; "
                                                       "default: every string field")
    id_field: str | None = Field(None, description="item id field; default: id/task_id/... "
                                                   "if present, else the row number")
    strip: list[str] = Field(default_factory=list,
                             description="regexes removed from the text before indexing")

    @field_validator("path")
    @classmethod
    def _readable(cls, value):
        path = os.path.abspath(os.path.expanduser(value))
        check_readable(path)
        return path

    @field_validator("strip")
    @classmethod
    def _regexes(cls, value):
        return _check_regexes(value)

    @model_validator(mode="after")
    def _default_name(self):
        if self.name is None:
            base = Path(self.path).name
            self.name = re.sub(r"(\.(jsonl|json|ndjson|parquet|csv|tsv))?(\.gz)?$", "", base)
        if not re.match(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", self.name):
            raise ValueError(f"benchmark name {self.name!r}: use letters, digits, _ . -")
        return self


class DecontamConfig(StageConfig):
    benchmarks: list[str | BenchmarkConfig] = Field(
        min_length=1, description="benchmark files, as paths or {path, name, fields, "
                                  "id_field, strip}")
    ngram: int = Field(13, ge=3, le=64, description="tokens per n-gram")
    mode: Literal["drop", "redact"] = Field("drop", description="drop documents, or cut the "
                                                                "matching spans out")
    margin_chars: int = Field(200, ge=0, description="redact: characters removed around a "
                                                     "match on each side")
    min_piece_chars: int = Field(200, ge=0, description="redact: discard pieces shorter "
                                                        "than this")
    max_splits: int = Field(10, ge=0, description="redact: drop a document cut more often")
    min_ngrams: int = Field(1, ge=1, description="distinct n-grams of an item a document "
                                                 "must contain to count as a hit")
    templates: list[str] = Field(default_factory=lambda: list(DEFAULT_TEMPLATES),
                                 description="prompt-template regexes removed from benchmark "
                                             "text (multiline, case-insensitive)")

    @field_validator("benchmarks")
    @classmethod
    def _as_configs(cls, value, info: ValidationInfo):
        return named_files(value, BenchmarkConfig, info, "benchmark")

    @field_validator("templates")
    @classmethod
    def _regexes(cls, value):
        return _check_regexes(value)


def _check_regexes(patterns: list[str]) -> list[str]:
    for pattern in patterns:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"invalid regex {pattern!r}: {exc}") from None
    return patterns


@register
class Decontam(Stage):
    name = "decontam"
    config_model = DecontamConfig
    description = ("Find benchmark n-grams (GSM8K, HumanEval, ...) in documents; drop them "
                   "or redact the matching spans.")

    def produces(self):
        return ("contamination", "contamination_ngrams")

    def prepare(self) -> NgramIndex:
        sources = [BenchmarkSource(b.name, b.path, b.fields, b.id_field, b.strip)
                   for b in self.config.benchmarks]
        index = build_index(sources, self.config.ngram, self.config.templates)
        log.info(index.describe())
        return index

    def setup(self) -> None:
        self.index: NgramIndex = self.prepared if self.prepared is not None else self.prepare()

    def process(self, table: pa.Table) -> StageOutput:
        n = self.config.ngram
        normalised = normalise(table["text"])
        tokens = tokenize(normalised)
        grams, first = document_ngrams(tokens, n)
        positions, keys = self.index.lookup(grams)
        windows = first[positions]
        docs = tokens.doc[windows]
        hits: list[list[str]] = [[] for _ in range(table.num_rows)]
        counts = np.zeros(table.num_rows, np.int32)
        reasons: list[str | None] = [None] * table.num_rows
        texts: list[str | None] | None = None
        for doc, members in _groups(docs):
            items = self._items_hit(keys[members])
            if not items:
                continue
            hits[doc] = [self.index.item_names[i] for i in items]
            counts[doc] = len(members)
            benchmarks = {self.index.benchmarks[self.index.item_benchmark[i]].name for i in items}
            why = reason("contaminated", value=",".join(sorted(benchmarks)))
            if self.config.mode == "drop":
                reasons[doc] = why
                continue
            if texts is None:
                texts = table["text"].to_pylist()
            redacted = self._redact(texts[doc], normalised, tokens, doc, windows[members])
            if redacted is None:
                reasons[doc] = why
            else:
                texts[doc] = redacted
        if texts is not None:
            table = with_column(table, "text", pa.array(texts, table["text"].type))
        table = with_column(table, "contamination", pa.array(hits, pa.list_(pa.string())))
        table = with_column(table, "contamination_ngrams", pa.array(counts, pa.int32()))
        return StageOutput(table, reasons_or_none(reasons))

    def _items_hit(self, keys: np.ndarray) -> list[int]:
        per_item: dict[int, int] = {}
        for key in np.unique(keys):
            for item in self.index.items_of(int(key)):
                per_item[int(item)] = per_item.get(int(item), 0) + 1
        return sorted(i for i, c in per_item.items() if c >= self.config.min_ngrams)

    def _redact(self, text: str, normalised: pa.Array, tokens, doc: int,
                windows: np.ndarray) -> str | None:
        """`text` without the matching spans and their margins, or None to drop it."""
        spans = _char_spans(text, normalised, tokens, doc, windows, self.config.ngram)
        if spans is None:
            return None  # positions could not be mapped back: dropping is the safe side
        margin = self.config.margin_chars
        cuts: list[list[int]] = []
        for start, end in sorted(spans):
            start, end = max(0, start - margin), min(len(text), end + margin)
            if cuts and start <= cuts[-1][1]:
                cuts[-1][1] = max(cuts[-1][1], end)
            else:
                cuts.append([start, end])
        if len(cuts) > self.config.max_splits:
            return None
        pieces, at = [], 0
        for start, end in cuts:
            pieces.append(text[at:start])
            at = end
        pieces.append(text[at:])
        kept = [p.strip() for p in pieces if len(p.strip()) >= max(1, self.config.min_piece_chars)]
        return "\n\n".join(kept) if kept else None


def _groups(docs: np.ndarray):
    """(document, indices of its matches) for every document with matches."""
    if not len(docs):
        return
    order = np.argsort(docs, kind="stable")
    bounds = np.flatnonzero(np.diff(docs[order])) + 1
    for members in np.split(order, bounds):
        yield int(docs[members[0]]), members


def _char_spans(text: str, normalised: pa.Array, tokens, doc: int, windows: np.ndarray,
                n: int) -> list[tuple[int, int]] | None:
    """Character spans in the original text of the matched windows of one document."""
    base = int(tokens.doc_offsets[doc])
    doc_bytes = np.frombuffer(normalised[doc].as_buffer(), np.uint8)
    char_of_byte = np.cumsum((doc_bytes & 0xC0) != 0x80) - 1
    kept = np.fromiter((i for i, ch in enumerate(text) if ch not in NGRAM_APOSTROPHES), np.int64)
    if len(doc_bytes) and char_of_byte[-1] + 1 != len(kept):
        return None
    starts = tokens.starts[windows] - base
    ends = tokens.ends[windows + n - 1] - base
    return [(int(kept[char_of_byte[s]]), int(kept[char_of_byte[e - 1]]) + 1)
            for s, e in zip(starts, ends)]
