"""Texts and phrases in the one form `keyword_filter` compares them in: case-folded letter
words (stages/_shared/words.py, Unicode-aware) joined by single spaces, so "Nerve-Agent",
"nerve\\nagent" and "NERVE  agent" all read `nerve agent`, and whole words are whatever lies
between two spaces.

Scripts written without spaces between words (Chinese, Japanese, Thai, Lao, Khmer, Burmese,
Tibetan) have no whole words to match: a phrase in them is found anywhere, as a substring.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from stages._shared.list_files import list_entries
from stages._shared.words import LETTER_SEPARATOR

_UNSPACED = re.compile("[\u0e00-\u0eff\u0f00-\u0fff\u1000-\u109f\u1780-\u17ff\u3040-\u30ff"
                       "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f]")


def spaced_words(text: str) -> str:
    """The text's case-folded letter words, joined by single spaces."""
    return spaced_folded(text.casefold())


def spaced_folded(folded: str) -> str:
    """`spaced_words` of a text that is already case-folded."""
    return LETTER_SEPARATOR.sub(" ", folded).strip(" ")


def unspaced_script(phrase: str) -> bool:
    return _UNSPACED.search(phrase) is not None


@dataclass(frozen=True)
class KeywordList:
    """One topic list: its name (reasons, columns, counters) and its phrases, normalised."""

    name: str
    phrases: tuple[str, ...]


def read_keyword_list(name: str, path: str) -> KeywordList:
    phrases = dict.fromkeys(p for p in map(spaced_words, list_entries(path)) if p)
    return KeywordList(name, tuple(phrases))
