"""`extract`: HTML -> main text, title and date.

Engines (benchmarks/extract_eval.py measures them against ground truth):
- `hybrid` (default): resiliparse where its text reads like an article, trafilatura's fast
  mode elsewhere, resiliparse's text where that lost the article (stages/_extract/hybrid.py);
  as accurate as `trafilatura` on the evaluation sets and faster. With `format: markdown`
  the default is `trafilatura`.
- `trafilatura`: options favour precision or recall, keep comments or tables, skip its
  fallback extractors (`fallbacks: false`), and `format: markdown` keeps headings, lists,
  tables and code blocks.
- `resiliparse`: about ten times faster, plain text, no date; less accurate.
- `auto`: resiliparse, and trafilatura for the pages where resiliparse found fewer than
  `fallback_min_words` words (usually a page whose article it missed).

HTML arrives as bytes (WARC input) or text (Parquet/JSONL). Bytes are decoded with the
`charset` column as the declared charset, then validation and detection
(pipeline/io/charset.py); invalid bytes become U+FFFD and never fail a page.

Rejected: `too_large:bytes=N` (over `max_bytes`, not parsed at all), `extract_timeout` (over
`timeout_s` CPU seconds), `extract_error:<Exception>`, `no_content` (no main text).
"""

from __future__ import annotations

from typing import Literal

import pyarrow as pa
from pydantic import Field, model_validator

from pipeline.io.charset import decode_html
from pipeline.registry import register
from pipeline.stage import (Resources, Stage, StageConfig, StageOutput, column_or_nulls, reason,
                            reasons_or_none, with_column)
from pipeline.time_limit import TimeLimitExceeded, cpu_time_limit
from stages._extract.engines import (AUTO_FALLBACK_MIN_WORDS, AutoEngine, Extracted,
                                     ResiliparseEngine, TrafilaturaEngine)
from stages._extract.hybrid import HybridEngine


class ExtractConfig(StageConfig):
    engine: Literal["hybrid", "trafilatura", "resiliparse", "auto"] = Field(
        "hybrid", description="hybrid (resiliparse where sure, else trafilatura's fast mode; "
        "trafilatura when format is markdown), trafilatura, resiliparse (fastest) or auto")
    format: Literal["text", "markdown"] = Field(
        "text", description="markdown keeps headings, lists, tables, code (trafilatura)")
    favor: Literal["balanced", "precision", "recall"] = Field(
        "balanced", description="trafilatura: prefer less but surer text, or more text")
    include_comments: bool = Field(False, description="keep the comment section of a page")
    include_tables: bool = Field(True, description="trafilatura: keep the text of tables")
    metadata: bool = Field(True, description="extract title and date (trafilatura)")
    fallbacks: bool = Field(
        True, description="trafilatura: also run its fallback extractors (readability, "
        "justext) and keep the better text; false is trafilatura's fast mode")
    timeout_s: float | None = Field(
        5.0, gt=0, description="CPU seconds per page before it is rejected (None: no limit)")
    max_bytes: int = Field(10_000_000, gt=0, description="reject bigger pages unparsed")
    keep_html: bool = Field(False, description="keep the html column after extraction")
    fallback_min_words: int = Field(
        AUTO_FALLBACK_MIN_WORDS, ge=0, description="auto: use trafilatura below this many words")

    @model_validator(mode="before")
    @classmethod
    def _markdown_defaults_to_trafilatura(cls, data):
        # only trafilatura writes markdown: it is the default engine for that format
        if isinstance(data, dict) and data.get("format") == "markdown" and "engine" not in data:
            data = {**data, "engine": "trafilatura"}
        return data

    @model_validator(mode="after")
    def _markdown_needs_trafilatura(self):
        if self.format == "markdown" and self.engine != "trafilatura":
            raise ValueError(f"format 'markdown' needs engine 'trafilatura' (engine "
                             f"{self.engine!r} gives plain text only)")
        return self


@register
class Extract(Stage):
    name = "extract"
    config_model = ExtractConfig
    description = "HTML -> main text, title, date (hybrid, trafilatura, resiliparse or auto)."

    def requires(self):
        return ("html",)

    def produces(self):
        return ("text", "title", "date")

    def consumes(self):
        return () if self.config.keep_html else ("html",)

    def resources(self):
        return Resources(cpus=1.0)

    def setup(self) -> None:
        cfg = self.config
        if cfg.engine != "resiliparse":  # hybrid's careful path is trafilatura's fast mode
            careful = TrafilaturaEngine(markdown=cfg.format == "markdown", favor=cfg.favor,
                                        comments=cfg.include_comments,
                                        tables=cfg.include_tables, metadata=cfg.metadata,
                                        fast=not cfg.fallbacks or cfg.engine == "hybrid")
        if cfg.engine != "trafilatura":
            fast = ResiliparseEngine(comments=cfg.include_comments, metadata=cfg.metadata)
        if cfg.engine == "auto":
            self._engine = AutoEngine(fast, careful, cfg.fallback_min_words)
        elif cfg.engine == "hybrid":
            self._engine = HybridEngine(fast, careful, cfg.metadata)
        else:
            self._engine = careful if cfg.engine == "trafilatura" else fast

    def process(self, table: pa.Table) -> StageOutput:
        texts, titles, dates, reasons = [], [], [], []
        for page, charset, url in zip(table["html"].to_pylist(),
                                      column_or_nulls(table, "charset").to_pylist(),
                                      column_or_nulls(table, "url").to_pylist()):
            found, why = self._one(page, charset, url)
            texts.append(found.text if why is None else None)
            titles.append(found.title)
            dates.append(found.date)
            reasons.append(why)
        out = table
        if not self.config.keep_html:
            out = out.drop_columns(["html"])
        for name, values in (("text", texts), ("title", titles), ("date", dates)):
            out = with_column(out, name, pa.array(values, pa.string()))
        return StageOutput(out, reasons_or_none(reasons))

    def _one(self, page, charset: str | None, url: str | None) -> tuple[Extracted, str | None]:
        nothing = Extracted(None)
        if page is None:
            return nothing, "no_content"
        if len(page) > self.config.max_bytes:
            return nothing, reason("too_large", "bytes", len(page))
        try:
            with cpu_time_limit(self.config.timeout_s):
                text, _ = decode_html(page, charset)
                found = self._engine(text, url)
        except TimeLimitExceeded:
            return nothing, "extract_timeout"
        except Exception as exc:  # one bad page must not fail its shard
            return nothing, reason("extract_error", value=type(exc).__name__)
        if not found.text or found.text.isspace():
            return found, "no_content"
        return found, None
