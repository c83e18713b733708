"""Which documents `annotate` sends to the model, and how much of each.

- The sample: a document is in it when the hash of its id (with `sample_seed`) falls below
  the fraction, so the same ids are chosen on every run, worker and partitioning, and a
  larger fraction chooses a superset of a smaller one.
- The token budget: a document longer than `max_input_tokens` tokens is cut after that many
  (model tokens, or words for an `openai` engine without a local tokenizer). Only the head
  is encoded: text past `max_input_tokens * CHARS_PER_TOKEN` characters is never read, so a
  50 MB page costs no more than a short one.
"""

from __future__ import annotations

import re
from typing import Sequence

import numpy as np
import xxhash

CHARS_PER_TOKEN = 32  # a generous bound: tokens (and words) are rarely longer
_WORD = re.compile(r"\S+")


def in_sample(ids: Sequence[object], fraction: float, seed: int) -> np.ndarray:
    """Per id: is it in the deterministic sample of `fraction`?"""
    if fraction >= 1:
        return np.ones(len(ids), dtype=bool)
    return np.array([xxhash.xxh3_64_intdigest(f"{seed}\0{i}".encode()) / 2.0**64 < fraction
                     for i in ids], dtype=bool)


class Truncator:
    def __init__(self, max_tokens: int | None, tokenizer=None):
        self.max_tokens = max_tokens
        self.tokenizer = tokenizer  # a `tokenizers.Tokenizer`, or None to count words

    def cut(self, texts: list[str]) -> tuple[list[str], int]:
        """The texts cut to the budget, and how many were cut."""
        if not self.max_tokens:
            return texts, 0
        limit = self.max_tokens * CHARS_PER_TOKEN
        heads = [t[:limit] for t in texts]
        ends = [self._end(offsets) for offsets in self._offsets(heads)]
        cut = [h[:end] if end is not None else h for h, end in zip(heads, ends)]
        return cut, sum(c != t for c, t in zip(cut, texts))

    def _end(self, offsets: list[tuple[int, int]]) -> int | None:
        """Where the last token within the budget ends, or None if all fit."""
        return offsets[self.max_tokens - 1][1] if len(offsets) > self.max_tokens else None

    def _offsets(self, texts: list[str]) -> list[list[tuple[int, int]]]:
        if self.tokenizer is None:
            return [[m.span() for m in _WORD.finditer(t)] for t in texts]
        encodings = self.tokenizer.encode_batch(texts, add_special_tokens=False)
        return [[span for span in e.offsets if span[1] > span[0]] for e in encodings]
