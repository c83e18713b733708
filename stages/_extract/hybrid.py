"""`engine: hybrid`: resiliparse where its text is trustworthy, trafilatura's fast mode
elsewhere, and resiliparse again where trafilatura's fast mode lost the article.

Why this shape (benchmarks/extract_eval.py --direct, 2,493 pages with ground truth; the
constants were chosen on the even pages of each set, the odd pages held out):
- trafilatura's fallback extractors (readability, justext) cost a quarter to a third of its
  time, and without them it keeps most of its accuracy; where its fast mode goes wrong it
  usually returns next to nothing, while resiliparse still finds the article. Keeping
  resiliparse's text there (`RESCUE_SHARE`) makes the pair more accurate than trafilatura
  with its fallbacks on Readability's and DragNet's pages, and within 0.003 on
  trafilatura's own evaluation set.
- A page goes the fast path alone when resiliparse's text reads like an article: nearly all
  of its words sit in paragraph-long lines (`PARAGRAPH_SHARE`), and the page ended in a run
  of short lines (share buttons, tags, footer) that `trim_short_tail` cut
  (`FURNITURE_CUT`), so the article's end was found. Looser gates cost F1 on trafilatura's
  evaluation set, where resiliparse keeps clearly more boilerplate (precision 0.84 vs 0.91),
  so with this gate 10-24% of pages keep resiliparse's text (rescues included); the engine
  runs at 1.3-1.4x trafilatura's docs per CPU-second (docs/stages_warc_extract.md).
Title and date come from trafilatura's rules on either path, so they do not depend on which
path a page took. Pages nested too deep for resiliparse (engines.NestingTooDeep) go to
trafilatura, whose parser reads them in linear time.
"""

from __future__ import annotations

from stages._extract.engines import (AUTO_FALLBACK_MIN_WORDS, TAIL_LINE_MIN_WORDS, Extracted,
                                     NestingTooDeep, ResiliparseEngine, TrafilaturaEngine,
                                     trim_short_tail)

# fast path: share of resiliparse's words in lines of at least TAIL_LINE_MIN_WORDS words
PARAGRAPH_SHARE = 0.85
# fast path: share of resiliparse's words that the short-tail trim removed, at least
FURNITURE_CUT = 0.03
# careful path: trafilatura's text is kept unless it has fewer words than this share of
# resiliparse's (then trafilatura's fast mode has usually missed the article), and
# resiliparse's has at least RESCUE_MIN_WORDS (fewer: a fragment, not a missed article)
RESCUE_SHARE = 0.3
RESCUE_MIN_WORDS = AUTO_FALLBACK_MIN_WORDS


class HybridEngine:
    """resiliparse, gated; trafilatura (fast mode) for the doubtful pages."""

    def __init__(self, fast: ResiliparseEngine, careful: TrafilaturaEngine, metadata: bool):
        self._fast, self._careful, self._metadata = fast, careful, metadata

    def __call__(self, html: str, url: str | None) -> Extracted:
        try:
            untrimmed, _ = self._fast.untrimmed(html)
        except NestingTooDeep:  # lxml reads such pages in linear time
            return self._careful(html, url)
        text = trim_short_tail(untrimmed, TAIL_LINE_MIN_WORDS)
        if reads_like_article(text, untrimmed):
            title, date = self._careful.title_and_date(html) if self._metadata else (None, None)
            return Extracted(one_line_per_block(text), title, date)
        careful = self._careful(html, url)
        words = len(text.split())
        if words < RESCUE_MIN_WORDS or (
                careful.text and len(careful.text.split()) >= RESCUE_SHARE * words):
            return careful
        title, date = (careful.title, careful.date) if careful.text else \
            self._careful.title_and_date(html) if self._metadata else (None, None)
        return Extracted(one_line_per_block(text), title, date)


def one_line_per_block(text: str) -> str:
    """resiliparse's blocks as trafilatura writes them: one line each, no blank lines
    between, so that line-based filters downstream see the same shape from either path."""
    return "\n".join(line for line in text.split("\n") if line.strip())


def reads_like_article(text: str, untrimmed: str) -> bool:
    """Nearly all words in paragraph-long lines, and a tail of short lines cut off."""
    lengths = [len(line.split()) for line in text.split("\n")]
    words = sum(lengths)
    if not words:
        return False
    in_paragraphs = sum(n for n in lengths if n >= TAIL_LINE_MIN_WORDS)
    cut = 1 - words / max(1, len(untrimmed.split()))
    return in_paragraphs >= PARAGRAPH_SHARE * words and cut >= FURNITURE_CUT
