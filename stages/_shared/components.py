"""Connected components of a graph whose edges sit in partitioned Parquet files.

Algorithm: alternating large-star and small-star rounds (Kiveris et al., "Connected
Components in MapReduce and Beyond", SoCC 2014). Each operation maps one set of edge files,
partitioned by node, to the next; each is one `ctx.map` phase whose units commit their
output, so a killed job resumes inside the loop, and the driver only adds up counts. The
loop ends when the edges form stars around the smallest node of each component, typically in
a few rounds (O(log^2 n) at worst). Why not union-find actors: their state lives in memory
and dies with the job; rebuilding it on resume means replaying every edge.

Nodes are uint64 ids; `(shard index << 32) | row` in `dedup_minhash`.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from typing import NamedTuple, Sequence

import numpy as np
import pyarrow as pa

from pipeline.stage import GlobalContext
from stages._shared.partitioned import (PartitionUnit, Written, holders, partition_of,
                                        read_partition, run_phase, unit_file, write_partitioned)

ADJACENCY = pa.schema([("part", pa.int32()), ("node", pa.uint64()), ("other", pa.uint64())])
LABELS = pa.schema([("shard", pa.int32()), ("row", pa.int64()), ("label", pa.uint64())])
MAX_ROUNDS = 64


@dataclass(frozen=True)
class EdgesWritten(Written):
    edges: int  # undirected edges written (each as two adjacency rows)


@dataclass(frozen=True)
class LargeStarWritten(EdgesWritten):
    not_star: int  # nodes neither a star centre nor a leaf: 0 means the rounds are done


@dataclass(frozen=True)
class Labelled(Written):
    nodes: int  # nodes given a component label


class Neighbourhoods(NamedTuple):
    """The adjacency rows of one partition, sorted by node then neighbour."""

    node: np.ndarray
    other: np.ndarray
    starts: np.ndarray  # the first row of each node's run
    lengths: np.ndarray  # its length


def write_edges(a: np.ndarray, b: np.ndarray, partitions: int, path: str) -> EdgesWritten:
    """Write undirected edges {a_i, b_i} (a_i != b_i) as adjacency rows, once per endpoint,
    each under its node's partition, without repeats."""
    node = np.concatenate([a, b]).astype(np.uint64)
    other = np.concatenate([b, a]).astype(np.uint64)
    node, other = _distinct_pairs(node, other)
    table = pa.table({"part": pa.array(partition_of(node, partitions), pa.int32()),
                      "node": pa.array(node, pa.uint64()), "other": pa.array(other, pa.uint64())},
                     schema=ADJACENCY)
    return EdgesWritten(parts=write_partitioned(table, "part", path), edges=len(node) // 2)


def _distinct_pairs(node: np.ndarray, other: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    order = np.lexsort((other, node))
    node, other = node[order], other[order]
    keep = np.r_[True, (node[1:] != node[:-1]) | (other[1:] != other[:-1])] if len(node) else \
        np.zeros(0, bool)
    return node[keep], other[keep]


def _neighbourhoods(unit: PartitionUnit) -> Neighbourhoods:
    rows = read_partition(unit.source, "part", unit.part, ["node", "other"], ADJACENCY)
    node, other = _distinct_pairs(rows["node"].to_numpy(), rows["other"].to_numpy())
    starts = np.flatnonzero(np.r_[True, node[1:] != node[:-1]]) if len(node) else \
        np.zeros(0, np.int64)
    lengths = np.diff(np.r_[starts, len(node)])
    return Neighbourhoods(node, other, starts, lengths)


def large_star(unit: PartitionUnit) -> LargeStarWritten:
    """Link every neighbour larger than a node to the smallest of the node's neighbourhood.
    Also counts the nodes that are neither a star centre nor a leaf: 0 means done."""
    node, other, starts, lengths = _neighbourhoods(unit)
    smaller = other < node
    n_smaller = np.add.reduceat(smaller.astype(np.int64), starts) if len(starts) else \
        np.zeros(0, np.int64)
    not_star = ((n_smaller > 0) & (n_smaller < lengths)) | (n_smaller > 1)
    smallest = np.repeat(np.minimum(node[starts], other[starts]), lengths)
    larger = ~smaller
    written = write_edges(other[larger], smallest[larger], unit.partitions, unit.out)
    return LargeStarWritten(parts=written.parts, edges=written.edges,
                            not_star=int(not_star.sum()))


def small_star(unit: PartitionUnit) -> EdgesWritten:
    """Link a node and its smaller neighbours to the smallest of them."""
    node, other, starts, lengths = _neighbourhoods(unit)
    has_smaller = other[starts] < node[starts] if len(starts) else np.zeros(0, bool)
    smallest = np.repeat(other[starts], lengths)  # rows sorted: the first is the smallest
    rows = (other < node) & (other != smallest)
    a = np.concatenate([other[rows], node[starts][has_smaller]])
    b = np.concatenate([smallest[rows], other[starts][has_smaller]])
    return write_edges(a, b, unit.partitions, unit.out)


def star_labels(unit: PartitionUnit) -> Labelled:
    """From converged stars: each node's component label (its centre, the smallest node),
    written by shard index so the next phase reads one shard's rows."""
    node, other, starts, lengths = _neighbourhoods(unit)
    keys, first = node[starts], other[starts]
    label = np.where(first < keys, first, keys)  # a leaf's only neighbour is its centre
    table = pa.table({"shard": pa.array((keys >> np.uint64(32)).astype(np.int32)),
                      "row": pa.array((keys & np.uint64(0xFFFFFFFF)).astype(np.int64)),
                      "label": pa.array(label, pa.uint64())}, schema=LABELS)
    return Labelled(parts=write_partitioned(table, "shard", unit.out), nodes=len(keys))


def connected_components(ctx: GlobalContext, edge_results: Sequence[Written], edge_folder: str,
                         partitions: int, folder: str, tag: str) -> tuple[list[Labelled], str]:
    """Run rounds until the edges are stars, then label nodes; returns the label phase's
    results and folder (its files are partitioned by shard index)."""
    keys = [f"{tag}-{p:05d}" for p in range(partitions)]
    results, source_folder = list(edge_results), edge_folder

    def step(phase: str, fn, result: type[Written], out_partitions: int | None):
        out = posixpath.join(folder, phase)
        sources = holders(results, source_folder, partitions)
        units = [PartitionUnit(p, sources[p], unit_file(out, p), out_partitions)
                 for p in range(partitions)]
        return run_phase(ctx, phase, fn, units, keys, result), out

    for round_ in range(MAX_ROUNDS):
        large = step(f"components-{round_:02d}-large", large_star, LargeStarWritten, partitions)
        if sum(r.not_star for r in large[0]) == 0:
            break  # its input was stars already (and its output is the same edges)
        results, source_folder = large
        results, source_folder = step(f"components-{round_:02d}-small", small_star,
                                      EdgesWritten, partitions)
    else:
        raise RuntimeError(f"connected components did not converge in {MAX_ROUNDS} rounds")
    return step("labels", star_labels, Labelled, None)
