"""`dedup_spans`: cut spans (paragraphs, or runs of sentences) repeated across documents
from every document but the first that has them, as C4, Dolma and DCLM do.

Three phases on Ray, handing rows to each other through stages/_shared/partitioned.py;
the driver only adds up counts (helpers in stages/_dedup_spans/):
1. `spans` (per shard): each document's distinct spans (spans.py, sentences.py) as 64-bit
   hashes, written as (part, hash, id, shard, row) rows partitioned by hash.
2. `group` (per partition): which documents lose which span (phases.py): exactly, the
   copy in the smallest (id, shard, row) keeps it; or with a Bloom filter (bloom.py), the
   first in reading order keeps it. Decisions (shard, row, hash) are written by shard.
3. apply (per shard, next segment): the spans decided are cut from the text; a document
   left with fewer than `min_words` words is rejected (`span_dedup:left_words=N`).
Every unit is committed, so a killed job resumes inside the phase it was in.
"""

from __future__ import annotations

import posixpath
from typing import Literal

import fsspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pydantic import Field, model_validator

from pipeline.registry import register
from pipeline.stage import GlobalContext, GlobalStage, StageConfig, StageOutput, reason, \
    with_column
from stages._dedup_spans.bloom import SUBFILTERS, bloom_shape, false_positive_rate
from stages._dedup_spans.phases import DECISIONS, SPANS, BloomUnit, Grouped, Hashed, \
    group_bloom, group_exact, partition_of_spans
from stages._dedup_spans.spans import SpanRule, batch_hashes, cut_batch
from stages._shared.partitioned import PartitionUnit, ShardUnit, holders, \
    read_shard_decisions, run_phase, shard_partitions, unit_file, write_partitioned, \
    write_shard_sources
from stages._shared.words import whitespace_words

READ_BATCH = 2048


class DedupSpansConfig(StageConfig):
    unit: Literal["sentence_span", "paragraph"] = Field(
        "sentence_span", description="a span: `sentences` consecutive sentences, or a line")
    sentences: int = Field(3, ge=1, le=64, description="sentences per span (sentence_span)")
    min_span_chars: int = Field(30, ge=1, description="shorter spans (normalised) are never "
                                "cut: short common lines such as 'Read more.' stay")
    min_words: int = Field(50, ge=0, description="reject a document that had spans cut and "
                           "is left with fewer whitespace words")
    mode: Literal["exact", "bloom"] = Field("exact", description="exact counting, or a Bloom "
                                            "filter of fixed size (approximate)")
    expected_spans: int | None = Field(None, gt=0, description="distinct spans the Bloom "
                                       "filter is sized for (mode: bloom)")
    bloom_fp_rate: float = Field(0.001, gt=0, lt=0.5, description="Bloom false-positive "
                                 "rate at expected_spans")
    partitions: int | None = Field(None, gt=0, description="hash partitions (default: one per "
                                   "shard, at most 1024); results do not depend on it")

    @model_validator(mode="after")
    def _consistent(self):
        if self.mode == "bloom" and self.expected_spans is None:
            raise ValueError("mode: bloom needs expected_spans (distinct spans to size the "
                             "filter for: about 100 per web page in sentence windows)")
        if self.unit == "paragraph" and "sentences" in self.model_fields_set:
            raise ValueError("sentences applies to unit: sentence_span only")
        return self


@register
class DedupSpans(GlobalStage):
    name = "dedup_spans"
    config_model = DedupSpansConfig
    description = "Cut paragraphs or sentence spans repeated across documents from all but one."

    def requires(self):
        return ("id", "text")

    def produces(self):
        return ("span_dup_chars",)

    @property
    def rule(self) -> SpanRule:
        cfg = self.config
        return SpanRule(cfg.unit, cfg.sentences, cfg.min_span_chars)

    # -- phases --------------------------------------------------------------------------------
    def plan(self, ctx: GlobalContext) -> dict:
        cfg, shards = self.config, sorted(ctx.shard_ids)
        bloom = cfg.mode == "bloom"
        partitions = shard_partitions(cfg.partitions, len(shards))
        partitions = min(partitions, SUBFILTERS) if bloom else partitions
        span_folder = posixpath.join(ctx.work_dir, "spans")
        group_folder = posixpath.join(ctx.work_dir, "group")
        hashed = run_phase(ctx, "spans", self._spans, [
            ShardUnit(i, ctx.shard_path(s), unit_file(span_folder, i), partitions)
            for i, s in enumerate(shards)], shards, Hashed)
        sources = holders(hashed, span_folder, partitions)
        shape = bloom_shape(cfg.expected_spans, cfg.bloom_fp_rate) if bloom else None
        units = [BloomUnit(p, sources[p], unit_file(group_folder, p), shape=shape,
                           hash_partitions=partitions) if bloom else
                 PartitionUnit(p, sources[p], unit_file(group_folder, p))
                 for p in range(partitions)]
        grouped = run_phase(ctx, "group", group_bloom if bloom else group_exact, units,
                            [f"{p:05d}" for p in range(partitions)], Grouped)
        write_shard_sources(posixpath.join(ctx.work_dir, "decisions.json"), shards,
                            holders(grouped, group_folder, len(shards)))
        spans, removals = sum(h.spans for h in hashed), sum(g.removals for g in grouped)
        stats = {"mode": cfg.mode, "unit": cfg.unit, "partitions": partitions,
                 "documents": sum(h.documents for h in hashed), "spans": spans,
                 "span_removals": removals}
        if bloom:
            stats |= {"bloom_bits": shape.total_bits, "bloom_hashes": shape.hashes,
                      "expected_spans": cfg.expected_spans,
                      "false_positive_rate_reached": false_positive_rate(shape,
                                                                         spans - removals)}
        else:
            stats["repeated_spans"] = sum(g.repeated for g in grouped)
        return stats

    def _spans(self, unit: ShardUnit) -> Hashed:
        rule, tables, first_row = self.rule, [], 0
        with fsspec.open(unit.shard_path, "rb") as f:
            for batch in pq.ParquetFile(f).iter_batches(batch_size=READ_BATCH,
                                                        columns=["id", "text"]):
                rows, hashes = batch_hashes(batch.column(1).to_pylist(), rule)
                tables.append(pa.table({
                    "part": partition_of_spans(hashes, unit.partitions,
                                               self.config.mode == "bloom"),
                    "hash": hashes, "id": batch.column(0).take(pa.array(rows)),
                    "shard": np.full(len(rows), unit.index, np.int32),
                    "row": rows + first_row}, schema=SPANS))
                first_row += batch.num_rows
        table = pa.concat_tables(tables) if tables else SPANS.empty_table()
        return Hashed(parts=write_partitioned(table, "part", unit.out), documents=first_row,
                      spans=table.num_rows)

    # -- apply ---------------------------------------------------------------------------------
    def apply(self, table, shard_id, first_row, work_dir) -> StageOutput:
        decided = self._decisions(shard_id, work_dir)
        rows = [r for r in range(first_row, first_row + table.num_rows) if r in decided]
        removed = np.zeros(table.num_rows, np.int64)
        if not rows:
            return StageOutput(with_column(table, "span_dup_chars", pa.array(removed)))
        at = np.array(rows) - first_row
        texts, reasons = [], [None] * table.num_rows
        cuts = cut_batch(table["text"].take(pa.array(at)).to_pylist(), self.rule,
                         [decided[r] for r in rows])
        for i, (left, chars) in zip(at, cuts):
            texts.append(left)
            removed[i] = chars
            words = len(whitespace_words(left))
            if words < self.config.min_words:
                reasons[i] = reason("span_dedup", "left_words", words)
        mask = np.zeros(table.num_rows, bool)
        mask[at] = True
        mask &= np.array([r is None for r in reasons])  # rejected rows keep their text
        new_text = pc.replace_with_mask(table["text"].combine_chunks(), pa.array(mask),
                                        pa.array([t for t, i in zip(texts, at) if mask[i]],
                                                 table["text"].type))
        out = with_column(with_column(table, "text", new_text), "span_dup_chars",
                          pa.array(removed))
        return StageOutput(out, pa.array(reasons, pa.string()) if any(reasons) else None,
                           counters={"span_dup_docs": len(rows),
                                     "span_dup_chars": int(removed.sum())})

    def _decisions(self, shard_id: str, work_dir: str) -> dict[int, set[int]]:
        """row -> hashes of the spans it loses, for this shard, read once per shard."""
        cached = getattr(self, "_cached", None)
        if cached is None or cached[0] != (work_dir, shard_id):
            found = read_shard_decisions(posixpath.join(work_dir, "decisions.json"), shard_id,
                                         ["row", "hash"], DECISIONS)
            decided: dict[int, set[int]] = {}
            for row, value in zip(found["row"].to_pylist(), found["hash"].to_pylist()):
                decided.setdefault(row, set()).add(value)
            self._cached = cached = ((work_dir, shard_id), decided)
        return cached[1]
