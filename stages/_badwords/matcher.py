"""Counting a list's entries in a text: whole words where words are separated by spaces,
substrings where they are not.

An entry is matched as a substring when it holds a character of a script written without
spaces (Chinese, Japanese, Thai, ... : `_NO_SPACE_SCRIPTS`), or when it has no letters at all
(the emoji in the English list); every other entry is matched as whole words. The choice is
made per entry, not per language, so the Latin entries of the Chinese and Japanese lists
(`3p`) match whole words there too instead of the inside of `3pm`.

A whole-word match has no letter word character (stages/_shared/words.py's `LETTER_WORD`:
letters, digits, combining marks, `_`) on either side, so `Scunthorpe` and `assassin` hit
nothing. A multi-word entry matches its words with any whitespace between them (`2 girls 1
cup` across a line break); any other character of an entry must be there as it is, as in
C4's regex (`g-spot` matches `g-spot`, not `g spot`; `s&m` not `s & m`). Matches do not
overlap: at each place the longest entry that starts there counts once.

Cost: one Aho-Corasick pass (`pyahocorasick`) over the lower-cased text finds every one-word
entry and every substring entry, and, for each other entry, its longest part; only an entry
whose part was seen is then searched for with its own regular expression. There is no pass
per word of the text, which is what a text without any entry (most of them) would pay.
"""

from __future__ import annotations

import re
from typing import Iterable

import ahocorasick

from stages._shared.words import LETTER_WORD

_NO_SPACE_SCRIPTS = re.compile(
    "[\u0E00-\u0EFF\u1000-\u109F\u1780-\u17FF\u3040-\u30FF\u3400-\u4DBF\u4E00-\u9FFF"
    "\uF900-\uFAFF\uFF66-\uFF9F]")
# One character of a letter word (LETTER_WORD is one character class, repeated).
_LETTER = re.compile(LETTER_WORD.pattern.removesuffix("+"))
_WHITESPACE = re.compile(r"\s+")
SUBSTRING, WORD = -1, -2  # roles of an automaton key besides "part of entry i"


class Matcher:
    """Counts the entries of one list in texts (see the module docstring)."""

    def __init__(self, entries: Iterable[str]):
        roles: dict[str, set[int]] = {}
        self.patterns: list[re.Pattern] = []  # entries of several parts or with punctuation
        for entry in entries:
            entry = _WHITESPACE.sub(" ", entry.strip().lower())
            if not entry:
                continue
            if _NO_SPACE_SCRIPTS.search(entry) or not _LETTER.search(entry):
                roles.setdefault(entry, set()).add(SUBSTRING)
            elif LETTER_WORD.fullmatch(entry):
                roles.setdefault(entry, set()).add(WORD)
            else:
                parts = entry.split(" ")
                self.patterns.append(re.compile(r"\s+".join(map(re.escape, parts))))
                roles.setdefault(max(parts, key=len), set()).add(len(self.patterns) - 1)
        self.automaton = ahocorasick.Automaton()
        for key, key_roles in roles.items():
            self.automaton.add_word(key, (len(key), tuple(key_roles)))
        self.empty = not roles
        if not self.empty:
            self.automaton.make_automaton()

    def count(self, text: str) -> int:
        """Entries found in `text` (matches do not overlap)."""
        if self.empty:
            return 0
        lowered = text.lower()
        spans: list[tuple[int, int]] = []
        to_search: set[int] = set()
        for last, (length, key_roles) in self.automaton.iter(lowered):
            start, end = last + 1 - length, last + 1
            for role in key_roles:
                if role == SUBSTRING:
                    spans.append((start, end))
                elif role == WORD:
                    if _whole(lowered, start, end):
                        spans.append((start, end))
                else:
                    to_search.add(role)
        for at in to_search:
            spans += [m.span() for m in self.patterns[at].finditer(lowered)
                      if _whole(lowered, m.start(), m.end())]
        return _apart(spans)


def _whole(text: str, start: int, end: int) -> bool:
    """Is text[start:end] free of letter word characters on both sides?"""
    return not ((start and _LETTER.match(text, start - 1)) or _LETTER.match(text, end))


def _apart(spans: list[tuple[int, int]]) -> int:
    """How many of `spans` stay when, left to right, the longest span starting at each
    place is taken and those it overlaps are dropped."""
    taken, reach = 0, -1
    for start, end in sorted(spans, key=lambda span: (span[0], -span[1])):
        if start >= reach:
            taken += 1
            reach = end
    return taken
