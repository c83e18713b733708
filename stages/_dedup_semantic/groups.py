"""Duplicate groups inside one k-means cluster.

Every pair of the cluster's vectors is compared (a blocked matrix product, so memory stays
at BLOCK_VALUES similarities whatever the cluster's size); pairs above the threshold are
edges, and each connected group keeps its first member in the order the caller sorted the
cluster by (the keep rule), so a chain A~B~C keeps A even when A and C are further apart.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BLOCK_VALUES = 16 * 2**20  # similarities computed at a time (64 MiB of float32)
MAX_EDGES = 4 * 2**20  # pending edges before they are folded into stars


@dataclass
class ClusterGroups:
    keeper: np.ndarray  # for each member, the index of the member its group keeps
    similarity: np.ndarray  # float32: each member's cosine similarity to its keeper
    pairs: int  # pairs above the threshold

    @property
    def rejected(self) -> np.ndarray:
        return self.keeper != np.arange(len(self.keeper))


def cluster_groups(vectors: np.ndarray, threshold: float) -> ClusterGroups:
    """Groups of `vectors` (unit rows, in keep order) linked by similarity > `threshold`."""
    n = len(vectors)
    block = max(1, BLOCK_VALUES // max(n, 1))
    first, second, pairs = [], [], 0
    pending = 0
    keeper = np.arange(n)
    for start in range(0, n, block):
        scores = vectors[start:start + block] @ vectors[start:].T
        i, j = np.nonzero(scores > threshold)
        later = j > i  # each pair once, never a vector with itself
        i, j = i[later] + start, j[later] + start
        first.append(i)
        second.append(j)
        pairs += len(i)
        pending += len(i)
        if pending > MAX_EDGES:  # fold what is known into stars: at most n edges remain
            keeper = _keepers(n, first, second)
            moved = np.flatnonzero(keeper != np.arange(n))
            first, second, pending = [keeper[moved]], [moved], len(moved)
    keeper = _keepers(n, first, second)
    similarity = np.einsum("ij,ij->i", vectors, vectors[keeper]).astype(np.float32) \
        if n else np.zeros(0, np.float32)
    return ClusterGroups(keeper, similarity, pairs)


def _keepers(n: int, first: list[np.ndarray], second: list[np.ndarray]) -> np.ndarray:
    """For each of n nodes, the smallest node of its connected component: each edge hooks
    both ends to the smaller of their labels, then every label jumps to its label's label,
    until nothing changes. A label is always a node of the same component and never above
    the node, so at the end it is the component's smallest node."""
    i = np.concatenate(first) if first else np.zeros(0, np.int64)
    j = np.concatenate(second) if second else np.zeros(0, np.int64)
    label = np.arange(n)
    while len(i):
        low = np.minimum(label[i], label[j])
        hooked = label.copy()
        np.minimum.at(hooked, i, low)
        np.minimum.at(hooked, j, low)
        hooked = hooked[hooked]
        if np.array_equal(hooked, label):
            break
        label = hooked
    return label
