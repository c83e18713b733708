"""`url_filter`: reject documents by their URL: blocklisted domains (with every sub-domain)
and pages, banned words in the URL, or too many "soft" words; allowlists win.

Lists are local files of domains and URLs (one a line, `#` comments; plain, `*.domain`,
adblock `||domain^` and hosts-file lines) or UT1-style folders of category lists, read once
on the driver (`prepare`) and shared with the workers as sorted hashes
(stages/_url_filter/lists.py). Matching rules and URL normalisation:
stages/_url_filter/matcher.py and urls.py; guide: docs/stages_filters.md.

Reasons: `url_blocklist:domain=<listed domain>`, `url_blocklist:url=<listed URL>`,
`url_word:word=<word>`, `url_soft_words:count=<n>`, `url_subword:word=<word>`. A row whose
URL is null or blank is kept and counted (`no_url`); so are rows an allowlist kept
(`allowlisted`) and URLs without a readable host (`unparsed_url`, judged by the word rules).
"""

from __future__ import annotations

import logging
import os

import pyarrow as pa
from pydantic import Field, field_validator, model_validator

from pipeline.registry import register
from pipeline.stage import SpecPath, Stage, StageConfig, StageOutput, reasons_or_none
from stages._shared.list_files import existing_file, list_entries
from stages._url_filter.lists import folder_categories, read_entry_set
from stages._url_filter.matcher import UrlLists, UrlMatcher, word_form

log = logging.getLogger(__name__)


class UrlFilterConfig(StageConfig):
    blocklist: list[SpecPath] = Field(
        default_factory=list, description="files of domains and URLs, or UT1-style folders "
                                          "(<folder>/<category>/domains and urls)")
    allowlist: list[SpecPath] = Field(
        default_factory=list, description="the same forms; a URL they match is always kept")
    categories: list[str] | None = Field(
        None, description="categories to read from blocklist folders (UT1: adult, "
                          "gambling, ...); null reads all")
    banned_words: list[str] = Field(default_factory=list,
                                    description="a URL with one of these words is rejected")
    banned_words_files: list[SpecPath] = Field(default_factory=list,
                                               description="more banned words, one a line")
    soft_words: list[str] = Field(default_factory=list, description="words that reject a URL "
                                  "when soft_word_threshold of them are in it")
    soft_words_files: list[SpecPath] = Field(default_factory=list,
                                             description="more soft words, one a line")
    soft_word_threshold: int = Field(2, ge=1, description="distinct soft words that reject")
    banned_subwords: list[str] = Field(default_factory=list, description="rejected anywhere "
                                       "in the URL, even inside a word (letters, digits only)")
    banned_subwords_files: list[SpecPath] = Field(default_factory=list,
                                                  description="more banned sub-words")

    @field_validator("blocklist", "allowlist")
    @classmethod
    def _lists_exist(cls, paths):
        for path in paths:
            if os.path.isdir(path):
                if not folder_categories(path):
                    raise ValueError(f"no category lists under folder {path} (expected "
                                     "<category>/domains or <category>/urls, as UT1's)")
            else:
                existing_file(path)
        return [os.path.abspath(path) for path in paths]

    @field_validator("banned_words_files", "soft_words_files", "banned_subwords_files")
    @classmethod
    def _files_exist(cls, paths):
        return [existing_file(path, "word list") for path in paths]

    @model_validator(mode="after")
    def _something_to_filter_with(self):
        rules = (self.blocklist, self.banned_words, self.banned_words_files, self.soft_words,
                 self.soft_words_files, self.banned_subwords, self.banned_subwords_files)
        if not any(rules):
            raise ValueError("url_filter has nothing to reject with: give a blocklist or "
                             "banned / soft words")
        if self.categories is not None:
            folders = [p for p in self.blocklist if os.path.isdir(p)]
            found = {c for folder in folders for c in folder_categories(folder)}
            missing = [c for c in self.categories if c not in found]
            if missing:
                raise ValueError(f"categories {missing} are in no blocklist folder; "
                                 f"found: {sorted(found) or 'no folders given'}")
        return self


@register
class UrlFilter(Stage):
    name = "url_filter"
    config_model = UrlFilterConfig
    description = ("Reject documents whose URL is on a blocklist (domains with their "
                   "sub-domains, pages) or holds banned words; allowlists win.")

    def requires(self):
        return ("url",)

    def prepare(self) -> UrlLists:
        cfg = self.config
        lists = UrlLists(
            block=read_entry_set(cfg.blocklist, cfg.categories),
            allow=read_entry_set(cfg.allowlist, None),
            banned_words=_words(cfg.banned_words, cfg.banned_words_files),
            soft_words=_words(cfg.soft_words, cfg.soft_words_files),
            banned_subwords=tuple(sorted(_words(cfg.banned_subwords,
                                                cfg.banned_subwords_files))))
        log.info("url_filter: %d blocked domains, %d blocked URLs, %d allowed domains, "
                 "%d allowed URLs", len(lists.block.domains), len(lists.block.urls),
                 len(lists.allow.domains), len(lists.allow.urls))
        return lists

    def setup(self) -> None:
        lists = self.prepared if self.prepared is not None else self.prepare()
        self.matcher = UrlMatcher(lists, self.config.soft_word_threshold)

    def process(self, table) -> StageOutput:
        if getattr(self, "matcher", None) is None:  # used outside the runner
            self.setup()
        urls = table["url"].cast(pa.string()).to_pylist()
        present = [i for i, url in enumerate(urls) if url and not url.isspace()]
        reasons: list[str | None] = [None] * len(urls)
        counters = {"no_url": len(urls) - len(present), "allowlisted": 0, "unparsed_url": 0}
        for row, verdict in zip(present, self.matcher.check([urls[i] for i in present])):
            counters["allowlisted"] += verdict.allowlisted
            counters["unparsed_url"] += verdict.unparsed
            reasons[row] = verdict.reason
        return StageOutput(table, reasons_or_none(reasons), counters=counters)

    def __getstate__(self):  # workers build their own matcher from the shared lists
        return dict(self.__dict__, matcher=None)


def _words(words: list[str], files: list[str]) -> frozenset[str]:
    every = list(words) + [entry for path in files for entry in list_entries(path)]
    return frozenset(form for form in map(word_form, every) if form)
