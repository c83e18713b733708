"""`length_filter`: keep documents whose length in words and characters is within bounds."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field, model_validator

from pipeline.registry import register
from pipeline.stage import Stage, StageConfig, StageOutput, with_column


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
        text = pc.fill_null(table["text"], "")
        words = pc.list_value_length(pc.utf8_split_whitespace(text)).cast(pa.int64())
        chars = pc.utf8_length(text).cast(pa.int64())
        reasons = pa.nulls(table.num_rows, pa.string())
        # Later checks only fill rows no earlier check rejected, so the first failing bound wins.
        cfg = self.config
        for measure, values, bound, too in (
            ("words", words, cfg.min_words, "too_short"),
            ("words", words, cfg.max_words, "too_long"),
            ("chars", chars, cfg.min_chars, "too_short"),
            ("chars", chars, cfg.max_chars, "too_long"),
        ):
            if bound is None:
                continue
            failed = pc.less(values, bound) if too == "too_short" else pc.greater(values, bound)
            reason = pc.binary_join_element_wise(
                f"{too}:{measure}=", values.cast(pa.string()), "")
            reasons = pc.if_else(pc.and_(failed, pc.is_null(reasons)), reason, reasons)
        return StageOutput(with_column(table, "n_words", words), reasons)
