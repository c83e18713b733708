"""The benchmark n-gram index of the `decontam` stage: built once on the driver, shared
read-only with every worker through the Ray object store.

Layout (numpy, no Python objects per n-gram):
- `keys`: the distinct n-gram hashes, sorted (uint64, 8 bytes each);
- `item_ptr` / `item_ids`: CSR lists of the benchmark items each key occurs in (int32; an
  n-gram shared by several items lists all of them);
- `bitmap`: one bit per slot of a table ~16x the key count, set for every key's top bits. A
  document's n-grams are first tested against it (one gather per n-gram); only the ~6% that
  pass are binary-searched in `keys`.
About 16 bytes per n-gram in all (`bytes_per_ngram` reports the exact figure).
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from stages._decontam.ngrams import document_ngrams, normalise, tokenize

_ID_FIELDS = ("id", "task_id", "question_id", "uid", "idx", "qid")
_BITMAP_BITS_PER_KEY = 16


@dataclass
class BenchmarkSource:
    """One benchmark file and how to read it (the resolved form of the stage config)."""

    name: str
    path: str
    fields: list[str] | None = None
    id_field: str | None = None
    strip: list[str] = field(default_factory=list)


@dataclass
class BenchmarkStats:
    name: str
    items: int = 0
    texts: int = 0
    too_short: int = 0   # texts with fewer tokens than n: cannot be detected at this n
    ngrams: int = 0


@dataclass
class NgramIndex:
    n: int
    keys: np.ndarray
    item_ptr: np.ndarray
    item_ids: np.ndarray
    item_names: list[str]          # "benchmark:item"
    item_benchmark: np.ndarray     # index into `benchmarks`, per item
    benchmarks: list[BenchmarkStats]
    bitmap: np.ndarray
    shift: int

    @property
    def nbytes(self) -> int:
        arrays = (self.keys, self.item_ptr, self.item_ids, self.item_benchmark, self.bitmap)
        return sum(a.nbytes for a in arrays) + sum(len(s) + 49 for s in self.item_names)

    @property
    def bytes_per_ngram(self) -> float:
        return self.nbytes / max(1, len(self.keys))

    def lookup(self, grams: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(positions in `grams` that are benchmark n-grams, their index in `keys`)."""
        if not len(grams) or not len(self.keys):
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        slot = (grams >> np.uint64(self.shift)).astype(np.int64)
        maybe = (self.bitmap[slot >> 3] >> (slot & 7).astype(np.uint8)) & 1
        candidates = np.flatnonzero(maybe)
        where = np.searchsorted(self.keys, grams[candidates])
        where[where == len(self.keys)] = 0
        found = self.keys[where] == grams[candidates]
        return candidates[found], where[found]

    def items_of(self, key: int) -> np.ndarray:
        return self.item_ids[self.item_ptr[key]:self.item_ptr[key + 1]]

    def describe(self) -> str:
        parts = [f"{b.name}: {b.items} items, {b.ngrams} n-grams"
                 + (f", {b.too_short} texts shorter than {self.n} tokens" if b.too_short else "")
                 for b in self.benchmarks]
        return (f"decontam index: {len(self.keys):,} distinct {self.n}-grams, "
                f"{self.nbytes / 2**20:.1f} MiB ({self.bytes_per_ngram:.1f} bytes/n-gram); "
                + "; ".join(parts))


def build_index(sources: list[BenchmarkSource], n: int, templates: list[str]) -> NgramIndex:
    """Read every benchmark, strip templates, and index the n-grams of each text field.
    Fields are indexed separately: an n-gram never spans the question and the answer, so
    "only the question" leaks are found as surely as whole items."""
    template_res = [re.compile(t, re.IGNORECASE | re.MULTILINE) for t in templates]
    texts: list[str] = []
    owners: list[int] = []
    item_names: list[str] = []
    item_benchmark: list[int] = []
    stats: list[BenchmarkStats] = []
    for b, source in enumerate(sources):
        stat = BenchmarkStats(source.name)
        strip_res = [re.compile(s, re.MULTILINE) for s in source.strip] + template_res
        for item_id, values in read_items(source):
            stat.items += 1
            item = len(item_names)
            item_names.append(f"{source.name}:{item_id}")
            item_benchmark.append(b)
            for value in values:
                for pattern in strip_res:
                    value = pattern.sub(" ", value)
                texts.append(value)
                owners.append(item)
                stat.texts += 1
        stats.append(stat)
    gram_chunks, owner_chunks = [], []
    for lo in range(0, len(texts), 4096):
        tokens = tokenize(normalise(pa.array(texts[lo:lo + 4096], pa.large_string())))
        grams, first = document_ngrams(tokens, n)
        counts = np.bincount(tokens.doc, minlength=min(4096, len(texts) - lo))
        for i in np.flatnonzero(counts < n):
            stats[item_benchmark[owners[lo + i]]].too_short += 1
        gram_chunks.append(grams)
        owner_chunks.append(np.asarray(owners[lo:lo + 4096], np.int32)[tokens.doc[first]])
    grams = np.concatenate(gram_chunks) if gram_chunks else np.zeros(0, np.uint64)
    owner = np.concatenate(owner_chunks) if owner_chunks else np.zeros(0, np.int32)
    pairs = np.unique(np.stack([grams, owner.astype(np.uint64)], axis=1), axis=0)
    keys, starts = np.unique(pairs[:, 0], return_index=True)
    item_ids = pairs[:, 1].astype(np.int32)
    item_ptr = np.append(starts, len(pairs)).astype(np.int64)
    bench_of = np.asarray(item_benchmark, np.int32)
    for b, stat in enumerate(stats):
        stat.ngrams = int(np.count_nonzero(bench_of[item_ids] == b)) if len(item_ids) else 0
    bits = max(10, int(np.ceil(np.log2(max(1, len(keys)) * _BITMAP_BITS_PER_KEY))))
    shift = 64 - bits
    bitmap = np.zeros(1 << (bits - 3), np.uint8)
    slots = keys >> np.uint64(shift)
    np.bitwise_or.at(bitmap, (slots >> np.uint64(3)).astype(np.int64),
                     (np.uint8(1) << (slots & np.uint64(7)).astype(np.uint8)))
    return NgramIndex(n, keys, item_ptr, item_ids, item_names, bench_of, stats, bitmap, shift)


# -- reading benchmark files -------------------------------------------------------------------
def read_items(source: BenchmarkSource) -> Iterator[tuple[str, list[str]]]:
    """(item id, its texts) for every row of a JSONL/JSON, Parquet or CSV/TSV file."""
    rows = _rows(source.path)
    for number, row in enumerate(rows):
        if not isinstance(row, dict):
            raise ValueError(f"{source.path}: row {number + 1} is not an object")
        id_field = source.id_field or next((f for f in _ID_FIELDS if f in row), None)
        if source.id_field and source.id_field not in row:
            raise ValueError(f"{source.path}: row {number + 1} has no id field "
                             f"{source.id_field!r}; fields: {', '.join(row)}")
        item_id = str(row[id_field]) if id_field else str(number)
        fields = source.fields or [k for k, v in row.items()
                                   if k != id_field and isinstance(v, str)]
        values: list[str] = []
        for name in fields:
            values += _texts(row.get(name))
        yield item_id, values


def _texts(value) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)):  # e.g. multiple-choice options: one text each
        return [t for v in value for t in _texts(v)]
    return [str(value)]


def _rows(path: str) -> Iterator[dict]:
    name = path.lower().removesuffix(".gz")
    if name.endswith(".parquet"):
        yield from pq.read_table(path).to_pylist()
        return
    opener = gzip.open if path.lower().endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8", newline="") as f:
        if name.endswith((".csv", ".tsv")):
            yield from csv.DictReader(f, delimiter="\t" if name.endswith(".tsv") else ",")
        elif name.endswith(".json"):
            data = json.load(f)
            yield from (data if isinstance(data, list) else [data])
        else:
            for number, line in enumerate(f, 1):
                if line.strip():
                    try:
                        yield json.loads(line)
                    except json.JSONDecodeError as exc:
                        raise ValueError(f"{path}: line {number} is not JSON ({exc.msg})") \
                            from None


def check_readable(path: str) -> None:
    """Fail early (at spec validation) if a benchmark file cannot be read at all."""
    if not Path(path).is_file():
        raise ValueError(f"benchmark file not found: {path} (relative paths start at the "
                         "spec's folder)")
    name = path.lower().removesuffix(".gz")
    if not name.endswith((".jsonl", ".json", ".parquet", ".csv", ".tsv", ".ndjson")):
        raise ValueError(f"benchmark file {path}: use .jsonl, .json, .parquet, .csv or .tsv "
                         "(optionally .gz)")
    if name.endswith(".parquet"):
        pq.ParquetFile(path)
        return
    opener = gzip.open if path.lower().endswith(".gz") else io.open
    with opener(path, "rt", encoding="utf-8") as f:
        f.read(1024)
