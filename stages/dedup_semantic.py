"""`dedup_semantic`: SemDeDup (Abbas et al. 2023): documents whose embeddings are nearly
parallel are duplicates, even when their words differ (paraphrases, heavy edits, templates
filled in differently).

The vectors come from an `embed` step's column (`column: embedding`) or are computed here
from a local encoder folder (`model: DIR`, the `embed` stage's own code). Phases, each a
`ctx.map` of committed units on Ray (helpers in stages/_dedup_semantic/); the driver only
adds up counts and never holds a vector:
0. `count` (per shard: rows, from the file footer), or with `model`, `embed` (per shard:
   vectors written beside the job's work, on a GPU when `gpus` > 0).
1. `sample` (per shard): rows whose seeded id hash is below a fraction, ~`kmeans_sample`
   vectors in all.
2. `train` (one unit): spherical k-means on the sample (faiss; on a GPU when the stage has
   one and faiss has GPU support); centroids written to a file.
3. `assign` (per shard): each vector's nearest centroid; rows partitioned by cluster.
4. `pairs` (per partition of clusters): within each cluster, every pair compared; pairs
   above `1 - eps` link documents; each connected group keeps one member: the highest
   `keep_highest` value if named, else the smallest id. Groups never span clusters.
5. apply (per shard, next segment): `semantic_duplicate`, with `duplicate_of` (the kept id)
   and `similarity` (cosine to it) on the rejected rows.
"""

from __future__ import annotations

import math
import posixpath
from dataclasses import dataclass
from typing import Any, Callable

import fsspec
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import Field, field_validator, model_validator

from pipeline.registry import register
from pipeline.stage import GlobalContext, GlobalStage, Resources, SpecPath, StageOutput
from stages._dedup_semantic import kmeans
from stages._dedup_semantic.phases import (DECISIONS, AssignUnit, Assigned, PairsUnit, Paired,
                                           Sampled, SampleUnit, Trained, TrainUnit,
                                           VectorSource, assign, count_rows, pairs, sample,
                                           sample_file, train)
from stages._shared.inference.folder import inspect_folder
from stages._shared.inference.options import MODEL_PACKAGES, ModelOptions
from stages._shared.partitioned import (MAX_AUTO_PARTITIONS, Source, batch_positions, holders,
                                        read_shard_decisions, run_phase, unit_file,
                                        write_shard_sources)

REASON = "semantic_duplicate"
# Default partitions of the clusters: one per DOCS_PER_PARTITION documents, so that a
# `pairs` unit holds ~30 MiB of 384-dimensional vectors.
DOCS_PER_PARTITION = 20_000
EMBED_BATCH = 1024  # rows read and embedded at a time in the `embed` phase
EMBEDDING = "embedding"
MODEL_ONLY = ("max_length", "batch_tokens", "dtype")


class DedupSemanticConfig(ModelOptions):
    model: SpecPath | None = Field(None, description="local encoder folder: embed the "
                                   "documents here (otherwise read `column`)")
    column: str | None = Field(None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", description=(
        "embedding column an earlier `embed` step wrote (default: embedding, when no model)"))
    eps: float = Field(0.15, gt=0, lt=1, description="documents with cosine similarity above "
                       "1 - eps are duplicates")
    clusters: int | None = Field(None, ge=1, description="k-means clusters (default: the "
                                 "square root of the number of documents)")
    kmeans_sample: int | None = Field(None, ge=1, description="vectors k-means trains on "
                                      "(default: 100 per cluster, at most 1,000,000)")
    seed: int = Field(1, ge=0, lt=2**32, description="seed of the sample and of k-means")
    keep_highest: str | None = Field(None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", description=(
        "numeric column: each group keeps its member with the highest value (nulls last, "
        "ties by smallest id); default: the smallest id"))
    partitions: int | None = Field(None, gt=0, description=(
        "partitions of the clusters (default: one per 20,000 documents, at most the clusters "
        "and 1024); results do not depend on it"))

    @field_validator("model")
    @classmethod
    def _complete_folder(cls, value):
        if value is not None:
            inspect_folder(value, "encoder")
        return value

    @model_validator(mode="after")
    def _one_source(self):
        if self.model is not None and self.column is not None:
            raise ValueError("give model (embed here) or column (an embed step's vectors), "
                             "not both")
        given = sorted(set(MODEL_ONLY) & self.model_fields_set)
        if self.model is None and given:
            raise ValueError(f"{', '.join(given)} apply to model: only (the vectors of "
                             "column are read, not computed)")
        return self

    def model_folder(self):
        return inspect_folder(self.model, "encoder") if self.model is not None else None

    @property
    def vector_column(self) -> str:
        return self.column or EMBEDDING


@dataclass(frozen=True)
class EmbedUnit:
    shard_path: str
    out: str


@register
class DedupSemantic(GlobalStage):
    name = "dedup_semantic"
    config_model = DedupSemanticConfig
    description = "SemDeDup: keep one document per group of nearly parallel embeddings."

    def requires(self):
        cfg = self.config
        model = getattr(cfg, "model", None) is not None
        source = ("text",) if model else (getattr(cfg, "column", None) or EMBEDDING,)
        keep = getattr(cfg, "keep_highest", None)
        return ("id",) + source + ((keep,) if keep else ())

    def packages(self):
        model = getattr(self.config, "model", None) is not None
        return {"faiss": "semantic"} | (MODEL_PACKAGES if model else {})

    def resources(self):
        return Resources()  # what `apply` needs; the phases place their own units

    # -- the phases ----------------------------------------------------------------------------
    def plan(self, ctx: GlobalContext) -> dict:
        cfg, shards = self.config, sorted(ctx.shard_ids)
        folder = {name: posixpath.join(ctx.work_dir, name) for name in (
            "vectors", "sample", "assign", "pairs")}
        if cfg.model is not None:
            documents = ctx.map("embed", _Placed(self._embed, cfg.gpus, cfg.cpus), [
                EmbedUnit(ctx.shard_path(s), unit_file(folder["vectors"], i))
                for i, s in enumerate(shards)], keys=shards)
            sources = [VectorSource(unit_file(folder["vectors"], i), "vector")
                       for i in range(len(shards))]
        else:
            documents = ctx.map("count", count_rows, [ctx.shard_path(s) for s in shards],
                                keys=shards)
            sources = [VectorSource(ctx.shard_path(s), cfg.vector_column) for s in shards]
        total = sum(documents)
        clusters = cfg.clusters or kmeans.default_clusters(total)
        wanted = cfg.kmeans_sample or kmeans.default_sample(clusters)
        fraction = min(1.0, wanted / total) if total else 1.0
        sampled = run_phase(ctx, "sample", sample, [
            SampleUnit(source, sample_file(folder["sample"], i), fraction, cfg.seed)
            for i, source in enumerate(sources)], shards, Sampled)
        dim = max((s.dim for s in sampled), default=0)
        stats = {"documents": total, "eps": cfg.eps}
        decisions = posixpath.join(ctx.work_dir, "decisions.json")
        if dim == 0:  # no document has a vector: nothing to compare
            write_shard_sources(decisions, shards, [Source(folder["pairs"], [])] * len(shards))
            return stats | {"vectors": 0, "duplicates": 0}
        centroids = posixpath.join(ctx.work_dir, "centroids.npy")
        trained, = run_phase(ctx, "train", _Placed(train, cfg.gpus, cfg.cpus), [TrainUnit(
            [sample_file(folder["sample"], i) for i, s in enumerate(sampled) if s.rows],
            dim, clusters, cfg.seed, centroids, gpu=cfg.gpus > 0,
            threads=max(1, int(cfg.cpus)))], ["centroids"], Trained)
        # (no centroid at all, when the sample caught no vector: one cluster of everything)
        partitions = cfg.partitions or max(1, min(MAX_AUTO_PARTITIONS, trained.clusters,
                                                  math.ceil(total / DOCS_PER_PARTITION)))
        assigned = run_phase(ctx, "assign", assign, [
            AssignUnit(i, source, cfg.keep_highest, centroids, dim,
                       unit_file(folder["assign"], i), partitions)
            for i, source in enumerate(sources)], shards, Assigned)
        by_cluster = holders(assigned, folder["assign"], partitions)
        paired = run_phase(ctx, "pairs", pairs, [
            PairsUnit(p, by_cluster[p], unit_file(folder["pairs"], p), dim=dim,
                      threshold=1 - cfg.eps)
            for p in range(partitions)], [f"{p:05d}" for p in range(partitions)], Paired)
        write_shard_sources(decisions, shards, holders(paired, folder["pairs"], len(shards)))
        return stats | {
            "vectors": sum(a.vectors for a in assigned), "dim": dim,
            "clusters": trained.clusters, "kmeans_sample": trained.sample,
            "partitions": partitions,
            "largest_cluster": max(p.largest_cluster for p in paired),
            "comparisons": sum(p.comparisons for p in paired),
            "pairs": sum(p.pairs for p in paired),
            "duplicates": sum(p.duplicates for p in paired)}

    def _embed(self, unit: EmbedUnit) -> int:
        """Embed one shard with the `embed` stage's code; write (id, keep, vector) rows in
        the shard's order (null vectors where there is no text). Returns the rows."""
        from stages.embed import Embed, EmbedConfig

        cfg = self.config
        embedder = Embed(EmbedConfig(model=cfg.model, column="vector", max_length=cfg.max_length,
                                     batch_tokens=cfg.batch_tokens, dtype=cfg.dtype,
                                     gpus=cfg.gpus, cpus=cfg.cpus))
        keep = [cfg.keep_highest] if cfg.keep_highest else []
        fs, local = fsspec.core.url_to_fs(unit.out)
        fs.makedirs(posixpath.dirname(local), exist_ok=True)
        documents, writer = 0, None
        with fsspec.open(unit.shard_path, "rb") as f, fs.open(local, "wb") as out:
            for batch in pq.ParquetFile(f).iter_batches(batch_size=EMBED_BATCH,
                                                        columns=["id", "text"] + keep):
                table = embedder.process(pa.Table.from_batches([batch])).table
                table = table.select(["id"] + keep + ["vector"])
                writer = writer or pq.ParquetWriter(out, table.schema, compression="zstd")
                writer.write_table(table)
                documents += table.num_rows
            if writer is None:  # an empty shard still gets a file the later phases can read
                schema = pa.schema([("id", pa.string())] + [(k, pa.float64()) for k in keep]
                                   + [("vector", pa.list_(pa.float32()))])
                pq.write_table(schema.empty_table(), out)
            else:
                writer.close()
        return documents

    # -- applying the decisions ----------------------------------------------------------------
    def apply(self, table, shard_id, first_row, work_dir) -> StageOutput:
        rows, duplicate_of, similarity = self._decisions(shard_id, work_dir)
        position = batch_positions(rows, first_row, table.num_rows)
        if not (position >= 0).any():
            return StageOutput(table, None)
        at = pa.array(position, mask=position < 0)
        reasons = pa.array(np.where(position >= 0, REASON, None), pa.string())
        return StageOutput(table, reasons, {"duplicate_of": duplicate_of.take(at),
                                            "similarity": similarity.take(at)})

    def _decisions(self, shard_id: str, work_dir: str):
        """This shard's rejected rows (sorted), their kept ids and similarities; read once."""
        cached = getattr(self, "_cached", None)
        if cached is None or cached[0] != (work_dir, shard_id):
            found = read_shard_decisions(posixpath.join(work_dir, "decisions.json"), shard_id,
                                         ["row", "duplicate_of", "similarity"],
                                         DECISIONS).sort_by("row")
            self._cached = cached = ((work_dir, shard_id), (
                found["row"].to_numpy(), found["duplicate_of"].combine_chunks(),
                found["similarity"].combine_chunks()))
        return cached[1]


@dataclass(frozen=True)
class _Placed:
    """A phase function run in the unit's own task (one CPU, no GPU), or, when the stage
    asks for more CPUs or any GPU, in a task of its own that holds them."""

    fn: Callable[[Any], Any]
    gpus: float
    cpus: float

    def __call__(self, unit: Any) -> Any:
        if not self.gpus and self.cpus <= 1:
            return self.fn(unit)
        import ray

        available = ray.cluster_resources().get("GPU", 0)
        if available < self.gpus:
            raise RuntimeError(f"dedup_semantic asks for {self.gpus} GPUs per unit (gpus) but "
                               f"the Ray cluster has {available}; set gpus: 0 to run on the "
                               "CPU")
        # the unit's task waits in ray.get, which lends its CPU back to Ray meanwhile
        placed = ray.remote(num_gpus=self.gpus, num_cpus=self.cpus)(_call)
        return ray.get(placed.remote(self.fn, unit))


def _call(fn, unit):
    return fn(unit)
