"""The Bloom filter of `dedup_spans`' `mode: bloom`: approximate span counting in a fixed
number of bits, for corpora whose distinct span hashes do not fit in memory (Dolma's
approach).

Sizing: for `expected_spans` n and a false-positive rate p, m = -n ln p / (ln 2)^2 bits and
k = round(m / n * ln 2) bit positions per span (the textbook optimum); at p = 0.001 that is
14.4 bits (1.8 bytes) and k = 10 per distinct span. A false positive makes a span that no
earlier document had look seen, so it is cut from the document where it first appears; the
rate holds while at most n distinct spans have been added and grows past that
(`false_positive_rate` gives it for the count reached, which the stage reports).

Determinism: a Bloom filter answers "seen before?", so its result depends on the order
spans are added and on which other spans share its bits. The bits are cut into
`SUBFILTERS` independent sub-filters, a span's chosen by its hash, whatever the number of
partitions; a partition owns whole sub-filters and adds its spans in one fixed order (by
shard number, then row, then hash). So every sub-filter sees the same spans in the same
order for any partitioning, and the result is the same on every run.

Bit positions are double hashing (Kirsch and Mitzenmacher): h1 + j * h2 for j < k, with h1
the hash's bits above those that chose the sub-filter and h2 = fmix64(hash) made odd.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from stages._shared.text_hash import fmix64

SUBFILTERS = 1024  # fixed, so that results do not depend on the partitions
_SUB_BITS = np.uint64(10)  # log2(SUBFILTERS)


@dataclass(frozen=True)
class BloomShape:
    bits: int  # per sub-filter, a multiple of 8
    hashes: int  # bit positions per span (k)

    @property
    def total_bits(self) -> int:
        return self.bits * SUBFILTERS


def bloom_shape(expected_spans: int, fp_rate: float) -> BloomShape:
    total = math.ceil(-expected_spans * math.log(fp_rate) / math.log(2) ** 2)
    per_subfilter = max(64, -(-total // SUBFILTERS))
    per_subfilter += -per_subfilter % 8
    k = max(1, round(per_subfilter * SUBFILTERS / expected_spans * math.log(2)))
    return BloomShape(per_subfilter, k)


def false_positive_rate(shape: BloomShape, added: int) -> float:
    """Chance that a span never added looks seen, once `added` distinct spans are in."""
    return (1.0 - math.exp(-shape.hashes * added / shape.total_bits)) ** shape.hashes


def subfilter_of(hashes: np.ndarray) -> np.ndarray:
    return (hashes % np.uint64(SUBFILTERS)).astype(np.int64)


def owned_subfilters(partition: int, partitions: int) -> range:
    """The sub-filters partition `partition` holds (those equal to it modulo `partitions`)."""
    return range(partition, SUBFILTERS, partitions)


class BloomFilter:
    """The sub-filters of one partition, as one bit array (`len(owned)` x `shape.bits`)."""

    def __init__(self, shape: BloomShape, partition: int, partitions: int):
        self.shape, self.partitions = shape, partitions
        self.partition = partition
        self.bytes = np.zeros(len(owned_subfilters(partition, partitions)) * shape.bits // 8,
                              np.uint8)

    def seen_then_add(self, hashes: np.ndarray) -> np.ndarray:
        """For each hash in order: was it (probably) added before, by an earlier call or an
        earlier hash of this one? Then adds them all. Same answers as one hash at a time."""
        if not len(hashes):
            return np.zeros(0, bool)
        k, bits = self.shape.hashes, np.uint64(self.shape.bits)
        local = subfilter_of(hashes) // self.partitions
        if np.any(subfilter_of(hashes) % self.partitions != self.partition):
            raise ValueError("a hash of another partition reached this Bloom filter")
        h1 = hashes >> _SUB_BITS
        h2 = fmix64(hashes) | np.uint64(1)
        steps = np.arange(k, dtype=np.uint64)
        offsets = (h1[:, None] + steps[None, :] * h2[:, None]) % bits
        positions = (local[:, None].astype(np.uint64) * bits + offsets).ravel().astype(np.int64)
        owner = np.repeat(np.arange(len(hashes)), k)
        was_set = (self.bytes[positions >> 3] >> (positions & 7).astype(np.uint8)) & 1 == 1
        # a bit set earlier in this call: the first hash that sets it comes before this one
        order = np.lexsort((owner, positions))
        sorted_positions = positions[order]
        run_start = np.r_[True, sorted_positions[1:] != sorted_positions[:-1]]
        first_owner = owner[order][np.maximum.accumulate(
            np.where(run_start, np.arange(len(order)), 0))]
        earlier = np.empty(len(order), bool)
        earlier[order] = first_owner < owner[order]
        seen = (was_set | earlier).reshape(len(hashes), k).all(axis=1)
        np.bitwise_or.at(self.bytes, positions >> 3,
                         (np.uint8(1) << (positions & 7).astype(np.uint8)))
        return seen
