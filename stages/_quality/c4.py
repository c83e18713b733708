"""`c4`: the C4 page heuristics (Raffel et al. 2020, section 2.2, and the C4 code).

C4 keeps a line only if it ends in terminal punctuation (not an ellipsis), has at least 3
words, no word over 1,000 characters, and mentions neither "javascript" nor a cookie/terms
policy; a page needs at least 5 sentences in its kept lines, and may contain neither
"lorem ipsum" nor a curly bracket.

This rule measures and decides; it does not rewrite the text: `sentences` counts the
sentences in the lines C4 would keep, and a page is rejected when that is below
`min_sentences`. (C4 also deleted the other lines; a filter that silently edits text would
hide what it removed, so that is left to an extraction or cleaning stage.)

Sentences are counted as runs of terminal punctuation followed by the end of the line or by
whitespace and a character that is not a lowercase letter ("e.g. this" is one sentence); a
kept line counts at least one.
"""

from __future__ import annotations

import re

import pyarrow as pa
from pydantic import Field

from stages._quality.base import Rule, RuleConfig
from stages._quality.document import ELLIPSES, TERMINAL_PUNCTUATION, Document

POLICY_PHRASES = ("terms of use", "privacy policy", "cookie policy", "uses cookies",
                  "use of cookies", "use cookies")
_POLICY = re.compile("|".join(map(re.escape, POLICY_PHRASES)))
_CITATION = re.compile(r"\[\d*\]|\[edit\]|\[citation needed\]")
# Starts with a character class so that `re` can skip ahead to candidates quickly.
_SENTENCE_END = re.compile(
    r"[.!?\u2026\u061f\u06d4\u0964\u0965\u3002\uff01\uff1f]"
    r"[.!?\u2026\u061f\u06d4\u0964\u0965]*[\"'\u201d\u2019\u00bb)\]]*"
    r"(?:(?<=[\u3002\uff01\uff1f])|(?=\s*$|\s+(?![a-z\u00df-\u00ff\u0430-\u045f\u03b1-\u03c9])))",
    re.M)


class C4Config(RuleConfig):
    lorem_ipsum: bool = Field(True, description="reject pages containing 'lorem ipsum'")
    curly_bracket: bool = Field(True, description="reject pages containing '{'")
    min_sentences: int | None = Field(5, ge=0, description="in the lines C4 would keep")
    line_min_words: int = Field(3, ge=0, description="a kept line has at least this many words")
    line_max_word_len: int = Field(1000, ge=1, description="a kept line has no longer word")
    line_needs_terminal_punct: bool = True
    drop_javascript_lines: bool = True
    drop_policy_lines: bool = True
    remove_citations: bool = Field(True, description="ignore [1], [edit] at line ends")


class C4(Rule):
    name = "c4"
    config_model = C4Config
    measures = {"lorem_ipsum": pa.bool_(), "curly_bracket": pa.bool_(),
                "sentences": pa.int64()}

    def measure(self, doc: Document) -> dict:
        return {"lorem_ipsum": "lorem ipsum" in doc.lower,
                "curly_bracket": "{" in doc.text,
                "sentences": self._sentences(doc)}

    def _sentences(self, doc: Document) -> int:
        cfg = self.config
        # Most pages have neither; checking the whole page first skips the per-line search.
        javascript = cfg.drop_javascript_lines and "javascript" in doc.lower
        policy = cfg.drop_policy_lines and _POLICY.search(doc.lower) is not None
        long_words = max(map(len, doc.tokens), default=0) > cfg.line_max_word_len
        citations = cfg.remove_citations and "[" in doc.text
        min_words = cfg.line_min_words if doc.spaced else 0
        sentences = 0
        for line in doc.lines:
            if citations:
                line = _CITATION.sub("", line).rstrip()
            if cfg.line_needs_terminal_punct and (
                    not line.endswith(TERMINAL_PUNCTUATION) or line.endswith(ELLIPSES)):
                continue
            if min_words or long_words:
                words = line.split()
                if len(words) < min_words:
                    continue
                if long_words and max(map(len, words)) > cfg.line_max_word_len:
                    continue
            if javascript or policy:
                lowered = line.lower()
                if javascript and "javascript" in lowered:
                    continue
                if policy and _POLICY.search(lowered):
                    continue
            sentences += len(_SENTENCE_END.findall(line)) or 1
        return sentences
