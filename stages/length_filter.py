"""`length_filter`: keep documents whose length in words and characters is within bounds."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field, model_validator

from pipeline.registry import register
from pipeline.stage import Stage, StageConfig, StageOutput, reasons_where, with_column
from stages._shared.words import count_words


class LengthFilterConfig(StageConfig):
    min_words: int | None = Field(50, ge=0, description="reject below this many words")
    max_words: int | None = Field(100_000, ge=0, description="reject above this many words")
    min_chars: int | None = Field(None, ge=0, description="reject below this many characters")
    max_chars: int | None = Field(None, ge=0, description="reject above this many characters")

    @model_validator(mode="after")
    def _bounds_in_order(self):
        for low, high in (("min_words", "max_words"), ("min_chars", "max_chars")):
            lo, hi = getattr(self, low), getattr(self, high)
            if lo is not None and hi is not None and lo > hi:
                raise ValueError(f"{low} ({lo}) is greater than {high} ({hi})")
        return self


@register
class LengthFilter(Stage):
    name = "length_filter"
    config_model = LengthFilterConfig
    description = "Reject documents that are too short or too long (words, characters)."

    def produces(self):
        return ("n_words",)

    def process(self, table: pa.Table) -> StageOutput:
        cfg = self.config
        text = pc.fill_null(table["text"].combine_chunks(), "")
        words = count_words(text)
        chars = pc.utf8_length(text).cast(pa.int64()) \
            if cfg.min_chars is not None or cfg.max_chars is not None else None
        reasons = pa.nulls(table.num_rows, pa.string())
        # The first failing bound names the reason.
        for measure, values, bound, code, fails in (
                ("words", words, cfg.min_words, "too_short", pc.less),
                ("words", words, cfg.max_words, "too_long", pc.greater),
                ("chars", chars, cfg.min_chars, "too_short", pc.less),
                ("chars", chars, cfg.max_chars, "too_long", pc.greater)):
            if bound is not None:
                failed = pc.and_(fails(values, bound), pc.is_null(reasons))
                reasons = reasons_where(failed, code, measure, values, otherwise=reasons)
        return StageOutput(with_column(table, "n_words", words), reasons)
