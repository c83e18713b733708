"""Counting a list's entries in a text: whole words where words are separated by spaces,
substrings where they are not.

An entry is matched as a substring when it holds a character of a script written without
spaces (Chinese, Japanese, Thai, ... : `_NO_SPACE_SCRIPTS`), or when it has no letters at all
(the emoji in the English list); every other entry is matched as whole words. The choice is
made per entry, not per language, so the Latin entries of the Chinese and Japanese lists
(`sm`, `3p`) match whole words there too instead of the inside of `smart` or `3pm`.

Whole words are the letter words of stages/_shared/words.py (`LETTER_WORD` in lower-cased
text: letters, digits and combining marks), so `Scunthorpe` and `assassin` are one word each
and hit nothing. A multi-word entry matches the same words in a row with only whitespace
between them (`2 girls 1 cup` matches across a line break); punctuation inside an entry must
be there in the text too (`g-spot` matches `g-spot`, not `g spot`), and an entry's leading
or trailing punctuation must stand next to its words. Matches do not overlap; where two
entries start at the same word, the longer wins.

Substring entries are found by one regular expression built as a trie of the entries (one
pass over the text, the longest entry at each position).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable

from stages._shared.words import LETTER_WORD

_NO_SPACE_SCRIPTS = re.compile(
    "[\u0E00-\u0EFF\u1000-\u109F\u1780-\u17FF\u3040-\u30FF\u3400-\u4DBF\u4E00-\u9FFF"
    "\uF900-\uFAFF\uFF66-\uFF9F]")
_WHITESPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class _WordEntry:
    words: tuple[str, ...]
    lead: str  # punctuation before the first word (`-` of a hypothetical `-ass`)
    trail: str  # punctuation after the last word (`13.`)
    inner: str  # the entry from its first to its last word, without whitespace

    @property
    def plain(self) -> bool:
        """One word and nothing else: matching its word is matching the entry."""
        return len(self.words) == 1 and not self.lead and not self.trail


class Matcher:
    """Counts the entries of one list in texts (see the module docstring)."""

    def __init__(self, entries: Iterable[str]):
        self.by_first_word: dict[str, list[_WordEntry]] = {}
        substrings = []
        for entry in entries:
            entry = _WHITESPACE.sub(" ", entry.strip().lower())
            words = LETTER_WORD.findall(entry)
            if not entry:
                continue
            if not words or _NO_SPACE_SCRIPTS.search(entry):
                substrings.append(entry)
                continue
            spans = [m.span() for m in LETTER_WORD.finditer(entry)]
            word_entry = _WordEntry(tuple(words), entry[:spans[0][0]], entry[spans[-1][1]:],
                                    _WHITESPACE.sub("", entry[spans[0][0]:spans[-1][1]]))
            self.by_first_word.setdefault(words[0], []).append(word_entry)
        for candidates in self.by_first_word.values():
            candidates.sort(key=lambda e: -len(e.words))  # the longest entry first
        every = [e for candidates in self.by_first_word.values() for e in candidates]
        self.plain_words = frozenset(e.words[0] for e in every if e.plain)
        # The other entries, by the set of words a text needs to hold one of them.
        self.other_word_sets = [frozenset(e.words) for e in every if not e.plain]
        self.substring_regex = re.compile(trie_pattern(substrings)) if substrings else None

    def count(self, text: str) -> int:
        """Entries found in `text` (matches do not overlap)."""
        lowered = text.lower()
        hits = len(self.substring_regex.findall(lowered)) if self.substring_regex else 0
        words = LETTER_WORD.findall(lowered)
        present = set(words)
        plain_found = self.plain_words & present
        if not any(needed <= present for needed in self.other_word_sets):
            # the usual case: no multi-word or punctuated entry can match, so each word of
            # the text that is a one-word entry is one hit
            return hits + (sum(word in plain_found for word in words) if plain_found else 0)
        return hits + self._count_words(lowered, words)

    def _count_words(self, lowered: str, words: list[str]) -> int:
        """Hits of whole-word entries, walking the words once; word positions in the text
        (needed to check what lies between the words of an entry) only when some entry's
        words stand in a row."""
        spans: list[tuple[int, int]] | None = None
        hits, i = 0, 0
        while i < len(words):
            matched = 0
            for entry in self.by_first_word.get(words[i], ()):
                if entry.plain:
                    matched = 1
                    break
                last = i + len(entry.words)
                if tuple(words[i:last]) != entry.words:
                    continue
                if spans is None:
                    spans = [m.span() for m in LETTER_WORD.finditer(lowered)]
                if _literal_matches(entry, lowered, spans[i][0], spans[last - 1][1]):
                    matched = len(entry.words)
                    break
            hits += bool(matched)
            i += matched or 1
        return hits


def _literal_matches(entry: _WordEntry, text: str, start: int, end: int) -> bool:
    """Do the text's characters from `start` to `end` (its first and last word) spell the
    entry, whitespace aside, with the entry's leading and trailing punctuation around?"""
    if _WHITESPACE.sub("", text[start:end]) != entry.inner:
        return False
    return text[start - len(entry.lead):start] == entry.lead and \
        text[end:end + len(entry.trail)] == entry.trail


def trie_pattern(words: Iterable[str]) -> str:
    """A regex matching any of `words`, built as a trie so that alternatives share their
    prefixes (one step per character instead of one try per word), longest match first."""
    trie: dict = {}
    for word in words:
        node = trie
        for char in word:
            node = node.setdefault(char, {})
        node[""] = {}  # end of a word
    return _node_pattern(trie)


def _node_pattern(node: dict) -> str:
    ends_here = "" in node
    branches = [re.escape(char) + _node_pattern(child)
                for char, child in sorted(node.items()) if char]
    if not branches:
        return ""
    body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
    if ends_here:
        return f"(?:{body})?"
    return body
