"""`dedup_minhash`: keep one document per group of near-duplicates (MinHash LSH), job-wide.

Phases, each a `ctx.map` of committed units on Ray, handing rows to each other through the
partitioned files of stages/_shared/partitioned.py; the driver only sees counts:
0. `count` (per shard): rows, to size the partitions of the shuffles.
1. `signatures` (per shard): normalised word n-gram shingles -> MinHash signature
   (stages/_dedup_minhash/minhash.py, datasketch-compatible) -> one 64-bit bucket hash per
   band, written as (partition, bucket, node) rows grouped by partition. With `verify`, also
   each document's distinct shingle hashes. A node is `(shard index << 32) | row`.
2. `candidates` (per bucket partition): documents sharing a bucket are candidate pairs.
   Without `verify` a star to the bucket's smallest node suffices (only connectivity
   matters); with `verify` each member is also paired with the next few, so that one false
   positive in a bucket cannot hide a true pair behind it.
3. `verify` (per shard, optional): true Jaccard of the two shingle sets; pairs below
   `threshold` are dropped, before any component is formed.
4. `components-NN-large|small`, `labels` (per node partition): connected components, see
   stages/_shared/components.py.
5. `members` (per shard): the ids of the labelled rows. `keepers` (per component
   partition): the smallest id of each component is kept.
6. apply (per shard, next segment): `near_duplicate` + `duplicate_of` for the others,
   `dup_cluster` (the keeper's id) on every member of a component, null for singletons.

State per document between phases, spilled to Parquet: 16 bytes per band (bucket hash and
node), plus 4 bytes per distinct shingle with `verify`; signatures live only inside a batch.
"""

from __future__ import annotations

import hashlib
import json
import math
import posixpath
from dataclasses import dataclass
from typing import Literal, NamedTuple

import fsspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pydantic import Field, model_validator

from pipeline.registry import register
from pipeline.stage import GlobalContext, GlobalStage, StageConfig, StageOutput, with_column
from stages._dedup_minhash import minhash as mh
from stages._shared.components import LABELS, connected_components, write_edges
from stages._shared.partitioned import (MAX_AUTO_PARTITIONS, PartitionUnit, Written,
                                        batch_positions, holders, partition_of,
                                        read_partition, read_rows,
                                        read_shard_decisions, run_phase, unit_file,
                                        write_partitioned, write_shard_sources)

# Default partitions of the shuffles: one per DOCS_PER_PARTITION documents (a unit of the
# candidates phase then sorts ~1.4M band rows, ~30 MB), at most MAX_AUTO_PARTITIONS.
DOCS_PER_PARTITION = 100_000
SIGNATURE_BATCH = 2048  # rows read at a time (then cut into ~1 MB pieces, see minhash.py)
SHINGLE_ROW_GROUP = 1024  # rows per row group of the shingle files: `verify` reads few
VERIFY_WINDOW = 8  # with verify, a bucket member is paired with the next 7 as well
REASON = "near_duplicate"

BANDS = pa.schema([("part", pa.int32()), ("bucket", pa.uint64()), ("node", pa.uint64())])
CANDIDATES = pa.schema([("shard", pa.int32()), ("u", pa.uint64()), ("v", pa.uint64())])
MEMBERS = pa.schema([("part", pa.int32()), ("label", pa.uint64()), ("id", pa.string()),
                     ("node", pa.uint64())])
DECISIONS = pa.schema([("shard", pa.int32()), ("row", pa.int64()), ("keeper", pa.string()),
                       ("kept", pa.bool_())])


# -- what the phases hand each other (units are pickled to Ray; results committed as JSON) ----
class LshShape(NamedTuple):
    bands: int
    rows: int  # signature values per band


@dataclass(frozen=True)
class SignUnit:
    index: int  # the shard's number: the high half of its nodes
    shard_path: str
    bands_out: str
    shingles_out: str | None  # with verify: each document's distinct shingles
    partitions: int


@dataclass(frozen=True)
class Signed(Written):
    documents: int
    without_shingles: int


@dataclass(frozen=True)
class Candidates(Written):
    pairs: int  # distinct candidate pairs (without verify, the edges written)


@dataclass(frozen=True, kw_only=True)
class VerifyUnit(PartitionUnit):
    shingle_folder: str  # the signatures phase's shingle files


@dataclass(frozen=True)
class Verified(Written):
    pairs: int  # candidate pairs checked
    edges: int  # of them, pairs at or above the threshold


@dataclass(frozen=True, kw_only=True)
class MembersUnit(PartitionUnit):
    shard_path: str  # the shard's rows, for their ids


@dataclass(frozen=True)
class Decided(Written):
    rejected: int


class ShardDecisions(NamedTuple):
    """One shard's component members, as `apply` reads them."""

    rows: np.ndarray  # sorted
    keeper: pa.Array  # the id kept in each row's component
    kept: np.ndarray  # is the row that one?


class DedupMinhashConfig(StageConfig):
    threshold: float = Field(0.8, gt=0, le=1, description=(
        "Jaccard similarity of shingle sets from which two documents are near-duplicates: "
        "chooses bands x rows (unless given) and is the bar `verify` applies"))
    ngram: int = Field(5, ge=1, le=64, description="words per shingle")
    num_perm: int = Field(112, ge=2, le=1024, description="MinHash permutations")
    bands: int | None = Field(None, ge=1, description="LSH bands (with rows; default: chosen "
                              "from threshold)")
    rows: int | None = Field(None, ge=1, description="signature values per band")
    false_positive_weight: float | None = Field(None, ge=0, description=(
        "weight of false positives when choosing bands x rows (default 0.5, or 0.05 with "
        "verify, which removes them later)"))
    false_negative_weight: float | None = Field(None, ge=0, description=(
        "weight of false negatives when choosing bands x rows (default 0.5, or 0.95 with "
        "verify)"))
    verify: bool = Field(True, description="check candidate pairs by true Jaccard >= "
                         "threshold before forming components (costs shingle storage: "
                         "~4 bytes per distinct shingle per document, under _work/)")
    seed: int = Field(1, ge=0, lt=2**32, description="permutation seed (datasketch's `seed`)")
    lowercase: bool = Field(True, description="ignore case")
    strip_punctuation: bool = Field(True, description="punctuation and symbols separate words")
    strip_digits: bool = Field(False, description="treat every digit as 0")
    keep: Literal["smallest_id"] = Field("smallest_id", description="which member survives")
    partitions: int | None = Field(None, gt=0, description=(
        "partitions of the shuffles (default: one per 100,000 documents, at most 1024); "
        "results do not depend on it"))

    @model_validator(mode="after")
    def _lsh_shape(self):
        if (self.bands is None) != (self.rows is None):
            raise ValueError("give both bands and rows, or neither (then they are chosen "
                             "from threshold)")
        if self.bands is not None and self.bands * self.rows > self.num_perm:
            raise ValueError(f"bands x rows ({self.bands} x {self.rows} = "
                             f"{self.bands * self.rows}) exceeds num_perm ({self.num_perm}); "
                             "lower them or raise num_perm")
        # With verify a false positive costs one Jaccard check, a false negative is lost for
        # good: favour recall (at threshold 0.8 and 112 permutations: 14 x 8, FineWeb's).
        default_fp, default_fn = (0.05, 0.95) if self.verify else (0.5, 0.5)
        if self.false_positive_weight is None:
            self.false_positive_weight = default_fp
        if self.false_negative_weight is None:
            self.false_negative_weight = default_fn
        return self


@register
class DedupMinhash(GlobalStage):
    name = "dedup_minhash"
    config_model = DedupMinhashConfig
    description = "Keep one document per group of near-duplicates (MinHash LSH) across the job."

    def requires(self):
        return ("id", "text")

    def produces(self):
        return ("dup_cluster",)

    def lsh_shape(self) -> LshShape:
        cfg = self.config
        if cfg.bands is not None:
            return LshShape(cfg.bands, cfg.rows)
        return LshShape(*mh.optimal_bands_rows(cfg.threshold, cfg.num_perm,
                                               cfg.false_positive_weight,
                                               cfg.false_negative_weight))

    # -- the phases ----------------------------------------------------------------------------
    def plan(self, ctx: GlobalContext) -> dict:
        cfg, shards = self.config, list(ctx.shard_ids)
        counts = ctx.map("count", _count_rows, [ctx.shard_path(s) for s in shards],
                         keys=shards)
        partitions = cfg.partitions or min(MAX_AUTO_PARTITIONS,
                                           max(1, math.ceil(sum(counts) / DOCS_PER_PARTITION)))
        # Everything below depends on the set of shards and the partitioning; a resume that
        # sees other shards (one that failed before now passes) must not reuse old units.
        tag = hashlib.sha256(json.dumps([shards, partitions]).encode()).hexdigest()[:10]
        base = posixpath.join(ctx.work_dir, f"run-{tag}")
        folder = {name: posixpath.join(base, name) for name in (
            "bands", "shingles", "candidates", "verified", "members", "keepers")}
        by_shard, by_part = range(len(shards)), range(partitions)
        shard_keys = [f"{tag}-{s}" for s in shards]
        part_keys = [f"{tag}-{p:05d}" for p in by_part]

        signed = run_phase(ctx, "signatures", self._signatures, [
            SignUnit(i, ctx.shard_path(shards[i]), unit_file(folder["bands"], i),
                     unit_file(folder["shingles"], i) if cfg.verify else None, partitions)
            for i in by_shard], shard_keys, Signed)
        sources = holders(signed, folder["bands"], partitions)
        candidates = run_phase(ctx, "candidates", self._candidates, [
            PartitionUnit(p, sources[p], unit_file(folder["candidates"], p), partitions)
            for p in by_part], part_keys, Candidates)
        edges, edge_folder = candidates, folder["candidates"]
        edge_count = sum(c.pairs for c in candidates)
        if cfg.verify:
            sources = holders(candidates, folder["candidates"], len(shards))
            edge_folder = folder["verified"]
            edges = run_phase(ctx, "verify", self._verify, [
                VerifyUnit(i, sources[i], unit_file(edge_folder, i), partitions,
                           shingle_folder=folder["shingles"])
                for i in by_shard], shard_keys, Verified)
            edge_count = sum(v.edges for v in edges)
        labels, label_folder = connected_components(ctx, edges, edge_folder, partitions,
                                                     base, tag)
        sources = holders(labels, label_folder, len(shards))
        members = run_phase(ctx, "members", _members, [
            MembersUnit(i, sources[i], unit_file(folder["members"], i), partitions,
                        shard_path=ctx.shard_path(shards[i]))
            for i in by_shard], shard_keys, Written)
        sources = holders(members, folder["members"], partitions)
        keepers = run_phase(ctx, "keepers", _keepers, [
            PartitionUnit(p, sources[p], unit_file(folder["keepers"], p)) for p in by_part],
            part_keys, Decided)
        bands, rows = self.lsh_shape()
        stats = {"bands": bands, "rows": rows, "partitions": partitions,
                 "documents": sum(r.documents for r in signed),
                 "without_shingles": sum(r.without_shingles for r in signed),
                 "candidate_pairs": sum(c.pairs for c in candidates),
                 "edges": edge_count,
                 "in_components": sum(r.nodes for r in labels),
                 "rejected": sum(r.rejected for r in keepers)}
        write_shard_sources(posixpath.join(ctx.work_dir, "decisions.json"), shards,
                            holders(keepers, folder["keepers"], len(shards)), tag=tag,
                            stats=stats)
        return stats

    def _signatures(self, unit: SignUnit) -> Signed:
        cfg = self.config
        bands, rows = self.lsh_shape()
        a, b = mh.permutations(cfg.num_perm, cfg.seed)
        a, b = a[:bands * rows], b[:bands * rows]  # unused permutations are not computed
        buckets, nodes, shingle_tables = [], [], []
        first_row = without = 0
        with fsspec.open(unit.shard_path, "rb") as f:
            for batch in pq.ParquetFile(f).iter_batches(batch_size=SIGNATURE_BATCH,
                                                        columns=["text"]):
                normalised = mh.normalise(batch.column(0), lowercase=cfg.lowercase,
                                          strip_digits=cfg.strip_digits)
                for offset, piece in mh.pieces(normalised):
                    shingles = mh.shingle_hashes(piece, cfg.ngram, cfg.strip_punctuation)
                    has = np.diff(shingles.offsets) > 0
                    rows_signed = first_row + offset + np.flatnonzero(has)
                    sig = mh.signatures(shingles, a, b)[has]
                    buckets.append(mh.band_hashes(sig, bands, rows).ravel())
                    nodes.append(np.repeat((np.uint64(unit.index) << np.uint64(32))
                                           | rows_signed.astype(np.uint64), bands))
                    if unit.shingles_out is not None:
                        shingle_tables.append(_distinct_shingles(shingles, has, rows_signed))
                    without += int((~has).sum())
                first_row += batch.num_rows
        bucket = np.concatenate(buckets) if buckets else np.zeros(0, np.uint64)
        table = pa.table({
            "part": pa.array((bucket % np.uint64(unit.partitions)).astype(np.int32)),
            "bucket": pa.array(bucket, pa.uint64()),
            "node": pa.array(np.concatenate(nodes) if nodes else np.zeros(0, np.uint64),
                             pa.uint64())}, schema=BANDS)
        if unit.shingles_out is not None:
            _write_shingles(shingle_tables, unit.shingles_out)
        return Signed(parts=write_partitioned(table, "part", unit.bands_out),
                      documents=first_row, without_shingles=without)

    def _candidates(self, unit: PartitionUnit) -> Candidates:
        rows = read_partition(unit.source, "part", unit.part, ["bucket", "node"], BANDS)
        bucket, node = rows["bucket"].to_numpy(), rows["node"].to_numpy()
        order = np.lexsort((node, bucket))
        bucket, node = bucket[order], node[order]
        starts = np.flatnonzero(np.r_[True, bucket[1:] != bucket[:-1]]) if len(bucket) else \
            np.zeros(0, np.int64)
        smallest = np.repeat(node[starts], np.diff(np.r_[starts, len(node)]))
        u, v = [smallest], [node]
        if self.config.verify:
            for gap in range(1, VERIFY_WINDOW):
                same = bucket[gap:] == bucket[:-gap]
                u.append(node[:-gap][same])
                v.append(node[gap:][same])
        u, v = np.concatenate(u), np.concatenate(v)
        u, v = _distinct_edges(np.minimum(u, v), np.maximum(u, v))
        if not self.config.verify:  # the pairs are the edges of the components
            return Candidates(parts=write_edges(u, v, unit.partitions, unit.out).parts,
                              pairs=len(u))
        table = pa.table({"shard": pa.array((u >> np.uint64(32)).astype(np.int32)),
                          "u": pa.array(u, pa.uint64()), "v": pa.array(v, pa.uint64())},
                         schema=CANDIDATES)
        return Candidates(parts=write_partitioned(table, "shard", unit.out), pairs=len(u))

    def _verify(self, unit: VerifyUnit) -> Verified:
        pairs = read_partition(unit.source, "shard", unit.part, ["u", "v"], CANDIDATES)
        u, v = _distinct_edges(pairs["u"].to_numpy(), pairs["v"].to_numpy())
        sets = _shingle_sets(np.unique(np.concatenate([u, v])), unit.shingle_folder)
        similar = np.array([mh.jaccard(sets[a], sets[b]) >= self.config.threshold
                            for a, b in zip(u.tolist(), v.tolist())], bool)
        written = write_edges(u[similar], v[similar], unit.partitions, unit.out)
        return Verified(parts=written.parts, pairs=len(u), edges=written.edges)

    # -- applying the decisions ----------------------------------------------------------------
    def apply(self, table, shard_id, first_row, work_dir) -> StageOutput:
        rows, keeper, kept = self._decisions(shard_id, work_dir)
        n = table.num_rows
        position = batch_positions(rows, first_row, n)
        member = position >= 0
        cluster = keeper.take(pa.array(position, mask=~member))
        rejected = np.zeros(n, bool)
        rejected[member] = ~kept[position[member]]
        reasons = pa.array(np.where(rejected, REASON, None), pa.string())
        duplicate_of = pc.if_else(pa.array(rejected), cluster, pa.nulls(n, pa.string()))
        return StageOutput(with_column(table, "dup_cluster", cluster), reasons,
                           {"duplicate_of": duplicate_of})

    def _decisions(self, shard_id: str, work_dir: str) -> ShardDecisions:
        """This shard's component members, read once per shard."""
        cached = getattr(self, "_cached", None)
        if cached is not None and cached[0] == (work_dir, shard_id):
            return cached[1]
        found = read_shard_decisions(posixpath.join(work_dir, "decisions.json"), shard_id,
                                     ["row", "keeper", "kept"], DECISIONS).sort_by("row")
        decided = ShardDecisions(found["row"].to_numpy(), found["keeper"].combine_chunks(),
                                 found["kept"].to_numpy(zero_copy_only=False))
        self._cached = ((work_dir, shard_id), decided)
        return decided


# -- phases that need no config ------------------------------------------------------------------
def _count_rows(path: str) -> int:
    with fsspec.open(path, "rb") as f:
        return pq.ParquetFile(f).metadata.num_rows


def _members(unit: MembersUnit) -> Written:
    """Attach ids to this shard's labelled rows, regrouped by component."""
    labelled = read_partition(unit.source, "shard", unit.part, ["row", "label"], LABELS)
    row = labelled["row"].to_numpy()
    ids = pa.array([], pa.string())
    if len(row):
        with fsspec.open(unit.shard_path, "rb") as f:
            ids = pq.read_table(f, columns=["id"])["id"].cast(pa.string()).take(row)
    label = labelled["label"].to_numpy()
    table = pa.table({"part": pa.array(partition_of(label, unit.partitions)),
                      "label": pa.array(label, pa.uint64()), "id": ids,
                      "node": pa.array((np.uint64(unit.part) << np.uint64(32))
                                       | row.astype(np.uint64), pa.uint64())}, schema=MEMBERS)
    return Written(parts=write_partitioned(table, "part", unit.out))


def _keepers(unit: PartitionUnit) -> Decided:
    """Keep the smallest (id, node) of each component; decisions regrouped by shard."""
    rows = read_partition(unit.source, "part", unit.part, ["label", "id", "node"],
                          MEMBERS).sort_by(
        [("label", "ascending"), ("id", "ascending"), ("node", "ascending")])
    label, node = rows["label"].to_numpy(), rows["node"].to_numpy()
    first = np.r_[True, label[1:] != label[:-1]] if len(label) else np.zeros(0, bool)
    keeper_row = np.maximum.accumulate(np.where(first, np.arange(len(label)), 0))
    table = pa.table({"shard": pa.array((node >> np.uint64(32)).astype(np.int32)),
                      "row": pa.array((node & np.uint64(0xFFFFFFFF)).astype(np.int64)),
                      "keeper": rows["id"].combine_chunks().take(pa.array(keeper_row)),
                      "kept": pa.array(first)}, schema=DECISIONS)
    return Decided(parts=write_partitioned(table, "shard", unit.out),
                   rejected=int((~first).sum()))


# -- small helpers -------------------------------------------------------------------------------
def _distinct_edges(u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pairs without repeats and without self-pairs, sorted."""
    keep = u != v
    u, v = u[keep], v[keep]
    order = np.lexsort((v, u))
    u, v = u[order], v[order]
    distinct = np.r_[True, (u[1:] != u[:-1]) | (v[1:] != v[:-1])] if len(u) else \
        np.zeros(0, bool)
    return u[distinct], v[distinct]


def _distinct_shingles(shingles: mh.Shingles, has: np.ndarray, rows: np.ndarray) -> pa.Table:
    """Each document's sorted distinct shingle hashes, as a list column beside its row."""
    owner = np.repeat(np.arange(len(has), dtype=np.uint64), np.diff(shingles.offsets))
    keys = np.sort((owner << np.uint64(32)) | shingles.hashes)  # one sort: owner, then hash
    keys = keys[np.r_[True, keys[1:] != keys[:-1]]] if len(keys) else keys
    counts = np.bincount((keys >> np.uint64(32)).astype(np.int64), minlength=len(has))[has]
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int32)
    values = pa.array((keys & np.uint64(0xFFFFFFFF)).astype(np.uint32), pa.uint32())
    return pa.table({"row": pa.array(rows, pa.int64()),
                     "shingles": pa.ListArray.from_arrays(pa.array(offsets), values)})


def _write_shingles(tables: list[pa.Table], path: str) -> None:
    schema = pa.schema([("row", pa.int64()), ("shingles", pa.list_(pa.uint32()))])
    table = pa.concat_tables(tables) if tables else schema.empty_table()
    fs, local = fsspec.core.url_to_fs(path)
    fs.makedirs(posixpath.dirname(local), exist_ok=True)
    with fs.open(local, "wb") as f:
        # Hashes do not compress: zstd would cost time for ~1% of space.
        pq.write_table(table, f, row_group_size=SHINGLE_ROW_GROUP, compression="none",
                       use_dictionary=False)


def _shingle_sets(nodes: np.ndarray, shingle_folder: str) -> dict[int, np.ndarray]:
    """node -> its sorted distinct shingle hashes, reading only the row groups that hold
    the wanted rows of each shard."""
    sets: dict[int, np.ndarray] = {}
    shard_of = nodes >> np.uint64(32)
    for shard in np.unique(shard_of):
        wanted = (nodes[shard_of == shard] & np.uint64(0xFFFFFFFF)).astype(np.int64)
        table = read_rows(unit_file(shingle_folder, int(shard)), wanted, ["row", "shingles"])
        lists = table["shingles"].combine_chunks()
        values = lists.values.to_numpy()
        offsets = lists.offsets.to_numpy()
        base = int(shard) << 32
        for i, row in enumerate(table["row"].to_pylist()):
            sets[base | row] = values[offsets[i]:offsets[i + 1]]
    return sets
