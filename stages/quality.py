"""`quality`: heuristic quality rules - Gopher quality, Gopher repetition, C4, FineWeb.

Each rule set lives in `stages/_quality/<rule>.py` with its published defaults; every
threshold can be changed under the rule's key:

    - quality:
        rules: [gopher, c4, fineweb]          # `gopher` = gopher_quality + gopher_repetition
        gopher_repetition: {max_dup_line_frac: 0.25}
        fineweb: {max_newline_ratio: null}    # null switches one check off

`mode: filter` (default) rejects a document at the first failed check, with a reason naming
the rule, the measure and its value (`gopher_repetition:dup_line_frac=0.41`); empty or
whitespace-only text is rejected as `empty_text`. `mode: annotate` keeps every document and
writes every measure of the chosen rules as a `quality_<measure>` column instead.

Language: rules that depend on words (stop words; word counts in scripts without spaces) use
the row's `lang` column when an earlier `langid` produced one, else `default_lang`.
"""

from __future__ import annotations

from typing import Literal

import pyarrow as pa
from pydantic import Field, field_validator

from pipeline.registry import register
from pipeline.stage import (DocumentFilter, Resources, StageConfig, StageOutput, column_or_nulls,
                            has_text, with_column)
from stages._shared.langcodes import normalize_code
from stages._quality import ALIASES, RULES, Document
from stages._quality.c4 import C4Config
from stages._quality.fineweb import FineWebConfig
from stages._quality.gopher_quality import GopherQualityConfig
from stages._quality.gopher_repetition import GopherRepetitionConfig

COLUMN_PREFIX = "quality_"


class QualityConfig(StageConfig):
    rules: list[str] = Field(default_factory=lambda: list(RULES),
                             description=f"rule sets to apply: {', '.join([*RULES, *ALIASES])}")
    mode: Literal["filter", "annotate"] = Field(
        "filter", description="filter: reject failing documents; annotate: write measures")
    default_lang: str | None = Field(
        "en", description="language of documents when there is no `lang` column")
    gopher_quality: GopherQualityConfig = Field(default_factory=GopherQualityConfig)
    gopher_repetition: GopherRepetitionConfig = Field(default_factory=GopherRepetitionConfig)
    c4: C4Config = Field(default_factory=C4Config)
    fineweb: FineWebConfig = Field(default_factory=FineWebConfig)

    @field_validator("rules")
    @classmethod
    def _known_rules(cls, value):
        names = []
        for name in value:
            if name not in RULES and name not in ALIASES:
                raise ValueError(f"unknown rule {name!r}; choose from "
                                 f"{', '.join([*RULES, *ALIASES])}")
            names += ALIASES.get(name, (name,))
        if not names:
            raise ValueError("rules is empty; name at least one rule, e.g. [gopher, c4]")
        return list(dict.fromkeys(names))

    @field_validator("default_lang")
    @classmethod
    def _code(cls, value):
        return normalize_code(value) if value else None


@register
class Quality(DocumentFilter):
    name = "quality"
    config_model = QualityConfig
    description = "Heuristic quality rules (Gopher, C4, FineWeb): filter or annotate."
    optional_columns = ("lang",)

    def __init__(self, config: QualityConfig | None = None):
        super().__init__(config)
        self.rules = [RULES[name](getattr(self.config, name)) for name in self.config.rules]

    def produces(self):
        if self.config.mode != "annotate":
            return ()
        return tuple(COLUMN_PREFIX + m for rule in self.rules for m in rule.measures)

    def resources(self) -> Resources:
        return Resources(cpus=1)

    def process(self, table: pa.Table) -> StageOutput:
        if self.config.mode == "filter":
            return super().process(table)
        return StageOutput(self._annotate(table), None)

    def judge(self, text: str, lang: str | None = None) -> str | None:
        """The reason to reject one document, or None to keep it."""
        doc = Document(text, lang or self.config.default_lang)
        for rule in self.rules:
            failed = rule.failure(rule.measure(doc))
            if failed is not None:
                return failed
        return None

    def measure(self, text: str, lang: str | None) -> dict:
        """Every measure of the chosen rules for one document."""
        doc = Document(text, lang or self.config.default_lang)
        values: dict = {}
        for rule in self.rules:
            values.update(rule.measure(doc))
        return values

    def _annotate(self, table: pa.Table) -> pa.Table:
        langs = column_or_nulls(table, "lang").to_pylist()
        rows = [self.measure(text, lang) if present else {} for present, text, lang in
                zip(has_text(table["text"]), table["text"].to_pylist(), langs)]
        for rule in self.rules:
            for measure, kind in rule.measures.items():
                column = pa.array([row.get(measure) for row in rows], kind)
                table = with_column(table, COLUMN_PREFIX + measure, column)
        return table
