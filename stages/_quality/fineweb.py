"""`fineweb`: the FineWeb heuristics (Penedo et al. 2024; thresholds of FineWeb's release).

Defaults: more than 12 % of lines end in terminal punctuation, less than 67 % of lines are
short (30 characters or fewer), less than 1 % of the characters sit in repeated lines, at
most 0.3 newlines per word (lists).

Lines are non-empty lines, so blank lines between paragraphs count neither as short lines
nor as lines without punctuation. In languages written without spaces the newline ratio is
not measured (whitespace tokens are not words there).
"""

from __future__ import annotations

import pyarrow as pa
from pydantic import Field

from stages._quality.base import Rule, RuleConfig, ratio
from stages._quality.document import TERMINAL_PUNCTUATION, Document


class FineWebConfig(RuleConfig):
    min_line_punct_frac: float | None = Field(0.12, ge=0, le=1)
    max_short_line_frac: float | None = Field(0.67, ge=0, le=1)
    short_line_chars: int = Field(30, ge=0, description="a line this long or shorter is short")
    max_char_dup_frac: float | None = Field(0.01, ge=0, le=1)
    max_newline_ratio: float | None = Field(0.3, ge=0, description="newlines per word")


class FineWeb(Rule):
    name = "fineweb"
    config_model = FineWebConfig
    measures = {"line_punct_frac": pa.float64(), "short_line_frac": pa.float64(),
                "char_dup_frac": pa.float64(), "newline_ratio": pa.float64()}

    def measure(self, doc: Document) -> dict:
        lines, short = doc.lines, self.config.short_line_chars
        newlines = doc.text.count("\n")
        values = {
            "line_punct_frac": ratio(sum(line.endswith(TERMINAL_PUNCTUATION) for line in lines),
                                     len(lines)),
            "short_line_frac": ratio(sum(len(line) <= short for line in lines), len(lines)),
            "char_dup_frac": ratio(doc.duplicate_lines[1], len(doc.text) - newlines),
        }
        if doc.spaced:
            values["newline_ratio"] = ratio(newlines, len(doc.tokens))
        return values
