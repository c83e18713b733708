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
from pipeline.stage import Resources, Stage, StageConfig, StageOutput, with_column
from stages._shared.langcodes import normalize_code
from stages._quality import ALIASES, RULES, Document
from stages._quality.c4 import C4Config
from stages._quality.fineweb import FineWebConfig
from stages._quality.gopher_quality import GopherQualityConfig
from stages._quality.gopher_repetition import GopherRepetitionConfig

EMPTY_TEXT = "empty_text"
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
class Quality(Stage):
    name = "quality"
    config_model = QualityConfig
    description = "Heuristic quality rules (Gopher, C4, FineWeb): filter or annotate."

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
        texts = table["text"].to_pylist()
        default = self.config.default_lang
        langs = (table["lang"].to_pylist() if "lang" in table.column_names
                 else [default] * len(texts))
        if self.config.mode == "annotate":
            return StageOutput(self._annotate(table, texts, langs), None)
        reasons = [self.judge(text, lang or default) for text, lang in zip(texts, langs)]
        return StageOutput(table, pa.array(reasons, pa.string()))

    def judge(self, text: str | None, lang: str | None) -> str | None:
        """The reason to reject one document, or None to keep it."""
        if not text or text.isspace():
            return EMPTY_TEXT
        doc = Document(text, lang)
        for rule in self.rules:
            reason = rule.failure(rule.measure(doc))
            if reason is not None:
                return reason
        return None

    def measure(self, text: str | None, lang: str | None) -> dict:
        """Every measure of the chosen rules for one document (None where not measured)."""
        if not text or text.isspace():
            return {}
        doc = Document(text, lang)
        values: dict = {}
        for rule in self.rules:
            values.update(rule.measure(doc))
        return values

    def _annotate(self, table: pa.Table, texts: list, langs: list) -> pa.Table:
        default = self.config.default_lang
        rows = [self.measure(text, lang or default) for text, lang in zip(texts, langs)]
        for rule in self.rules:
            for measure, kind in rule.measures.items():
                column = pa.array([row.get(measure) for row in rows], kind)
                table = with_column(table, COLUMN_PREFIX + measure, column)
        return table
