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


class HashedSet:
    """Membership of strings by hash; built once, read-only."""

    def __init__(self, strings: Iterable[str] = ()):
        data, bounds = utf8_buffer(pa.array(list(strings), pa.large_string()))
        hashes = word_hashes(data, bounds[:-1], np.diff(bounds)) if len(bounds) > 1 \
            else np.zeros(0, np.uint64)
        # Sorted for searchsorted; np.sort, as np.unique (hash-based in numpy 2.4) takes 50x longer.
        hashes = np.sort(hashes)
        self.hashes = hashes[np.concatenate([[True], hashes[1:] != hashes[:-1]])] \
            if len(hashes) else hashes

    def __len__(self) -> int:
        return len(self.hashes)

    def __contains__(self, value: str) -> bool:
        if not len(self.hashes):
            return False
        key = np.uint64(word_hash(value.encode("utf-8", "surrogatepass")))
        at = int(np.searchsorted(self.hashes, key))
        return at < len(self.hashes) and self.hashes[at] == key
