"""A set of strings kept as their sorted 64-bit hashes (the word hash of
stages/_shared/text_hash.py): about 8 bytes an entry instead of ~90 for a Python set of
str, and a numpy array that the Ray object store shares between the workers of a node
without a copy. A blocklist of 4.5M domains is 36 MB here and ~400 MB per worker as a set.

Two different strings share a hash with probability ~2^-64 per pair; with millions of entries
a false match stays below one in 10^12 lookups.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np
import pyarrow as pa

from stages._shared.text_hash import utf8_buffer, word_hash, word_hashes

CHUNK = 1 << 20  # strings hashed at a time while building: bounds the memory of a big list


class HashedSet:
    """Membership of strings by hash; built once, read-only."""

    def __init__(self, strings: Iterable[str] = ()):
        builder = HashedSetBuilder()
        for value in strings:
            builder.add(value)
        self.hashes = builder.sorted_hashes()

    @classmethod
    def of_hashes(cls, hashes: np.ndarray) -> HashedSet:
        made = cls()
        made.hashes = hashes
        return made

    def __len__(self) -> int:
        return len(self.hashes)

    def contains(self, values: list[str]) -> np.ndarray:
        """Membership of each value, as one vectorised hash and search."""
        if not len(self.hashes) or not values:
            return np.zeros(len(values), bool)
        keys = _hashes(values)
        at = np.minimum(np.searchsorted(self.hashes, keys), len(self.hashes) - 1)
        return self.hashes[at] == keys

    def __contains__(self, value: str) -> bool:
        if not len(self.hashes):
            return False
        key = np.uint64(word_hash(value.encode("utf-8", "surrogatepass")))
        at = int(np.searchsorted(self.hashes, key))
        return at < len(self.hashes) and self.hashes[at] == key


class HashedSetBuilder:
    """Collects strings a chunk at a time, so a list of millions never lives as str objects
    all at once (4.5M domains: ~700 MB as a Python list, 36 MB as hashes)."""

    def __init__(self):
        self.chunks: list[np.ndarray] = []
        self.pending: list[str] = []

    def add(self, value: str) -> None:
        self.pending.append(value)
        if len(self.pending) >= CHUNK:
            self.chunks.append(_hashes(self.pending))
            self.pending = []

    def build(self) -> HashedSet:
        return HashedSet.of_hashes(self.sorted_hashes())

    def sorted_hashes(self) -> np.ndarray:
        hashes = np.concatenate(self.chunks + [_hashes(self.pending)])
        self.chunks, self.pending = [], []
        # Sorted for searchsorted; np.sort, as np.unique (hash-based in numpy 2.4) takes 50x
        # longer. Duplicates removed.
        hashes.sort()
        return hashes[np.concatenate([[True], hashes[1:] != hashes[:-1]])] \
            if len(hashes) else hashes


def _hashes(strings: list[str]) -> np.ndarray:
    if not strings:
        return np.zeros(0, np.uint64)
    data, bounds = utf8_buffer(pa.array(strings, pa.large_string()))
    return word_hashes(data, bounds[:-1], np.diff(bounds))
