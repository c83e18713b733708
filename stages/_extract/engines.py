"""The extraction engines behind `extract`: one callable per engine, (HTML text, url) ->
Extracted.

The two constants below come from the evaluation pages (benchmarks/extract_eval.py):
- resiliparse with `comments=False, alt_texts=False` is ~10x faster than trafilatura and
  as accurate on Mozilla Readability's article pages, but keeps more boilerplate at the end
  of pages ("related articles", tag lists, copyright lines) on trafilatura's evaluation set;
  cutting the short lines after the last long one removes much of it (F1 0.845 -> 0.880
  there, 0.928 -> 0.949 on Readability's pages);
- where its main-content text is short, resiliparse has usually missed the article, and
  trafilatura recovers it (`auto`: a few percent of pages take the slow path).
"""

from __future__ import annotations

import logging
import re
import unicodedata
from dataclasses import dataclass

from stages._extract.markdown import finish_markdown, prepare_for_markdown

# auto: fall back to trafilatura below this many words of resiliparse main content
AUTO_FALLBACK_MIN_WORDS = 50
# auto/resiliparse: trailing lines shorter than this (after the last line at least this long)
# are page furniture far more often than article text ("Share", "Tags: ...", copyright).
TAIL_LINE_MIN_WORDS = 15
# resiliparse's main-content pass takes time quadratic in the nesting depth (100,000 nested
# <div>s: minutes inside one C call, which the extract stage's CPU-time limit cannot
# interrupt; 4,096: 0.15 s). Real pages stay far below (41 levels at most on trafilatura's
# evaluation pages). Only a page with more tags than that can be that deep, so the check
# (a CSS selector, ~1 ms on a big page) runs on the few big pages only.
MAX_DEPTH = 4096
_TOO_DEEP = "* > " * MAX_DEPTH + "*"  # an element with MAX_DEPTH element ancestors
# Formatting elements (<b>, <a>, <font>...) left open, each with its own attributes, make
# the HTML5 parse itself quadratic (the list of active formatting elements is rebuilt at
# every text node: 20,000 unclosed `<b id=N>` take 1.2 s, a 10 MB page of them ~35 minutes).
# Real pages leave at most 170 open (trafilatura's and Readability's evaluation pages), so
# more than MAX_DEPTH are refused before parsing, like a page nested that deep. The count
# (~1 ms on a big page) runs only where the parse could take more than ~0.2 s: pages with
# more than 2 x MAX_DEPTH tags (3 of the 522 evaluation pages).
_FORMATTING = "a|b|big|code|em|font|i|nobr|s|small|strike|strong|tt|u"
_FORMATTING_START = re.compile(rf"<(?:{_FORMATTING})[\s/>]", re.IGNORECASE)
_FORMATTING_END = re.compile(rf"</(?:{_FORMATTING})[\s>]", re.IGNORECASE)


class NestingTooDeep(ValueError):
    """The page nests elements deeper than MAX_DEPTH; rejected as extract_error."""


@dataclass
class Extracted:
    text: str | None
    title: str | None = None
    date: str | None = None


class TrafilaturaEngine:
    """trafilatura's `bare_extraction` with options fixed once per worker.

    Title and date: trafilatura's `with_metadata` also extracts author, site name, tags and
    more, which cost about 40% on top of the text; here the page is parsed once, the text
    extracted from it, then only its title (trafilatura's title rules) and date (htmldate,
    quick search) are looked up on the same tree.
    """

    def __init__(self, *, markdown: bool, favor: str, comments: bool, tables: bool,
                 metadata: bool, fast: bool = False):
        import trafilatura
        from htmldate import find_date
        from trafilatura.metadata import extract_title
        from trafilatura.settings import Extractor
        from trafilatura.utils import load_html

        # trafilatura logs every page it discards; the rejected rows already say so
        for logger in ("trafilatura", "htmldate", "courlan", "justext"):
            logging.getLogger(logger).setLevel(logging.CRITICAL)
        self._bare_extraction, self._load_html = trafilatura.bare_extraction, load_html
        self._title, self._date = extract_title, find_date
        self._extractor = Extractor
        self._comments, self._metadata, self._markdown = comments, metadata, markdown
        self._options = dict(output_format="python", formatting=markdown,
                             precision=favor == "precision", recall=favor == "recall",
                             comments=comments, tables=tables, fast=fast)

    def __call__(self, html: str, url: str | None) -> Extracted:
        options = self._extractor(url=url, **self._options)
        if not self._metadata and not self._markdown:  # parsed inside: no copy of the tree
            return self._text_of(self._bare_extraction(html, options=options))
        tree = self._load_html(html)
        if tree is None:
            return Extracted(None)
        if self._markdown:  # math, code languages, tables (stages/_extract/markdown.py)
            prepare_for_markdown(tree, tables=self._options["tables"], html=html)
        # bare_extraction works on its own copy of the tree, so it stays intact for metadata
        found = self._text_of(self._bare_extraction(tree, options=options))
        if found.text is not None and self._metadata:
            found.title = self._title(tree)
            found.date = self._date(tree, extensive_search=False, original_date=True)
        return found

    def title_and_date(self, html: str) -> tuple[str | None, str | None]:
        """The title and date this engine would give the page, without extracting its text."""
        tree = self._load_html(html)
        if tree is None:
            return None, None
        return self._title(tree), self._date(tree, extensive_search=False, original_date=True)

    def _text_of(self, document) -> Extracted:
        if document is None:
            return Extracted(None)
        text = document.text or ""
        if self._comments and document.comments:
            text = f"{text}\n{document.comments}".strip()
        if self._markdown:
            text = finish_markdown(text)
        # what trafilatura.extract() does to its output, so both give the same text
        return Extracted(unicodedata.normalize("NFC", text))


class ResiliparseEngine:
    """resiliparse's main-content heuristics on its lexbor DOM; no date."""

    def __init__(self, *, comments: bool, metadata: bool):
        from resiliparse.extract.html2text import extract_plain_text
        from resiliparse.parse.html import HTMLTree

        self._parse, self._extract = HTMLTree.parse, extract_plain_text
        self._comments, self._metadata = comments, metadata

    def __call__(self, html: str, url: str | None) -> Extracted:
        text, title = self.untrimmed(html)
        return Extracted(trim_short_tail(text, TAIL_LINE_MIN_WORDS), title)

    def untrimmed(self, html: str) -> tuple[str, str | None]:
        """(main-content text before `trim_short_tail`, <title>)."""
        tags = html.count("<")
        if tags > 2 * MAX_DEPTH and open_formatting_elements(html) > MAX_DEPTH:
            raise NestingTooDeep(f"more than {MAX_DEPTH} formatting elements left open")
        tree = self._parse(html)
        if tags > MAX_DEPTH and tree.document is not None \
                and tree.document.query_selector(_TOO_DEEP) is not None:
            raise NestingTooDeep(f"elements nested deeper than {MAX_DEPTH}")
        text = self._extract(tree, main_content=True, preserve_formatting=True,
                             comments=self._comments, alt_texts=False, list_bullets=True)
        return text, ((tree.title or "").strip() or None) if self._metadata else None


class AutoEngine:
    """resiliparse first; trafilatura for the pages where that found little text."""

    def __init__(self, fast: ResiliparseEngine, careful: TrafilaturaEngine, min_words: int):
        self._fast, self._careful, self._min_words = fast, careful, min_words

    def __call__(self, html: str, url: str | None) -> Extracted:
        quick = self._fast(html, url)
        if quick.text and len(quick.text.split()) >= self._min_words:
            return quick
        careful = self._careful(html, url)
        return careful if careful.text and careful.text.strip() else quick


def open_formatting_elements(html: str) -> int:
    """Start tags of formatting elements minus their end tags."""
    return sum(1 for _ in _FORMATTING_START.finditer(html)) \
        - sum(1 for _ in _FORMATTING_END.finditer(html))


def trim_short_tail(text: str, min_words: int) -> str:
    """Drop the lines after the last line of at least `min_words` words."""
    lines = text.split("\n")
    for last in range(len(lines) - 1, -1, -1):
        if len(lines[last].split()) >= min_words:
            return "\n".join(lines[:last + 1])
    return text
