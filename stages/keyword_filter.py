"""`keyword_filter`: find the words and phrases of topic blocklists in documents; reject,
annotate, or mark candidates for a classifier.

Each list is a file of words and phrases (one a line, `#` comments), compared case-folded
and whole-word (stages/_keyword_filter/phrases.py), all lists at once with one Aho-Corasick
automaton (stages/_keyword_filter/matcher.py). A list flags a document when at least
`min_distinct` of its different phrases occur in it and, when `min_density` is set, its
phrases occur at least that often per 1,000 words; both can be set per list.

- `mode: filter` rejects a flagged document: `keyword_filter:<list>=<distinct hits>` (the
  first flagged list in the config's order).
- `mode: annotate` keeps every document and writes the counts.
- `mode: escalate` keeps every document and marks the flagged ones in `keyword_candidate`,
  for a later step to decide on them (Deep Ignorance's two-stage filter: a cheap blocklist
  first, a classifier on what it flags).

Columns: `keyword_hits` (different phrases found, over all lists), `keyword_lists` (the lists
that flagged the document), and in escalate mode `keyword_candidate`. Counters: per list,
the documents it flagged. A document with no text has no hits and is kept.
Guide: docs/stages_filters.md.
"""

from __future__ import annotations

import os
import re
from typing import Literal

import pyarrow as pa
from pydantic import (BaseModel, ConfigDict, Field, ValidationInfo, field_validator,
                      model_validator)

from pipeline.registry import register
from pipeline.stage import (SpecPath, Stage, StageConfig, StageOutput, named_files, reason,
                            reasons_or_none, with_column)
from stages._keyword_filter.matcher import KeywordMatcher, TextHits
from stages._keyword_filter.phrases import KeywordList, read_keyword_list
from stages._shared.list_files import existing_file

CANDIDATE = "keyword_candidate"


class KeywordListConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: SpecPath = Field(description="file of words and phrases, one a line")
    name: str | None = Field(None, description="name in reasons, columns and counters; "
                                               "default: the file name without extensions")
    min_distinct: int | None = Field(None, ge=1, description="this list's own min_distinct")
    min_density: float | None = Field(None, ge=0, description="this list's own min_density")

    @field_validator("path")
    @classmethod
    def _exists(cls, value):
        return existing_file(value, "keyword list")

    @model_validator(mode="after")
    def _default_name(self):
        if self.name is None:
            self.name = re.sub(r"(\.(txt|lst|list|csv))?(\.gz)?$", "",
                               os.path.basename(self.path))
        if not re.match(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", self.name):
            raise ValueError(f"list name {self.name!r}: use letters, digits, _ . - "
                             "(set `name`)")
        return self


class KeywordFilterConfig(StageConfig):
    lists: list[SpecPath | KeywordListConfig] = Field(
        min_length=1, description="keyword files, as paths or {path, name, min_distinct, "
                                  "min_density}")
    min_distinct: int = Field(1, ge=1, description="different phrases of one list that flag "
                                                   "a document")
    min_density: float | None = Field(None, ge=0, description="and (if set) occurrences per "
                                                              "1,000 words that flag it")
    mode: Literal["filter", "annotate", "escalate"] = Field(
        "filter", description="filter rejects flagged documents; annotate writes counts; "
                              "escalate marks them in keyword_candidate")

    @field_validator("lists")
    @classmethod
    def _as_configs(cls, value, info: ValidationInfo):
        return named_files(value, KeywordListConfig, info, "list")


@register
class KeywordFilter(Stage):
    name = "keyword_filter"
    config_model = KeywordFilterConfig
    description = ("Find topic keywords and phrases (whole words, case-folded, Aho-Corasick); "
                   "reject, annotate or mark candidates for a classifier.")

    def produces(self):
        columns = ("keyword_hits", "keyword_lists")
        return columns + (CANDIDATE,) if self.config.mode == "escalate" else columns

    def prepare(self) -> list[KeywordList]:
        return [read_keyword_list(c.name, c.path) for c in self.config.lists]

    def setup(self) -> None:
        lists = self.prepared if self.prepared is not None else self.prepare()
        self.matcher = KeywordMatcher(lists)
        cfg = self.config
        self.rules = [(c.name, c.min_distinct or cfg.min_distinct,
                       c.min_density if c.min_density is not None else cfg.min_density)
                      for c in cfg.lists]

    def process(self, table: pa.Table) -> StageOutput:
        if getattr(self, "matcher", None) is None:  # used outside the runner
            self.setup()
        filtering = self.config.mode == "filter"
        distinct, flagged_lists, reasons = [], [], []
        counters = {name: 0 for name, _, _ in self.rules}
        for text in table["text"].to_pylist():
            hits = self.matcher.hits(text)
            flagged = self.flagged(hits)
            names = [self.rules[at][0] for at in flagged]
            distinct.append(hits.distinct)
            flagged_lists.append(names)
            for name in names:
                counters[name] += 1
            if filtering:  # the first flagged list names the reason
                reasons.append(reason("keyword_filter", names[0],
                                      hits.per_list[flagged[0]].distinct) if flagged else None)
        table = with_column(table, "keyword_hits", pa.array(distinct, pa.int32()))
        table = with_column(table, "keyword_lists",
                            pa.array(flagged_lists, pa.list_(pa.string())))
        if self.config.mode == "escalate":
            table = with_column(table, CANDIDATE, pa.array([bool(f) for f in flagged_lists]))
        return StageOutput(table, reasons_or_none(reasons) if filtering else None,
                           counters=counters)

    def flagged(self, hits: TextHits) -> list[int]:
        """The lists whose thresholds the document reaches, in config order."""
        if not hits.distinct:
            return []
        return [at for at, (_, min_distinct, min_density) in enumerate(self.rules)
                if hits.per_list[at].distinct >= min_distinct
                and (min_density is None or hits.density(at) >= min_density)]

    def __getstate__(self):  # workers build their own automaton from the shared lists
        return dict(self.__dict__, matcher=None)
