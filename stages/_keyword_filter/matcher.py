"""Counting the phrases of several lists in a text with one Aho-Corasick automaton
(`pyahocorasick`): one pass over the text whatever the number of phrases, so a list of
thousands costs about what a list of ten does.

The text is scanned as " " + its spaced words + " " (stages/_keyword_filter/phrases.py) and a
phrase is stored with a space on each side, so every match starts and ends on a word
boundary: "Scunthorpe" never yields "cunt". Matches may overlap ("x x" holds "x" twice).
Phrases in scripts without spaces are stored bare and found inside words.

Rewriting a text as spaced words costs ~6 times more than case-folding it, and most texts
hold none of a topic list's phrases; so a second automaton first looks for the longest word
of every phrase in the case-folded text as it is. A phrase can only match where its words
occur, so a text in which none occurs has no hits and is never rewritten.
"""

from __future__ import annotations

from dataclasses import dataclass

import ahocorasick

from stages._keyword_filter.phrases import KeywordList, spaced_folded, unspaced_script


@dataclass(frozen=True)
class ListHits:
    distinct: int  # different phrases of the list found
    total: int     # occurrences of them


@dataclass(frozen=True)
class TextHits:
    words: int                  # letter words (the density's denominator); 0 without hits
    per_list: tuple[ListHits, ...]
    distinct: int               # different phrases found, over all lists

    def density(self, at: int) -> float:
        """Occurrences of list `at`'s phrases per 1,000 words."""
        return 1000.0 * self.per_list[at].total / self.words if self.words else 0.0


class KeywordMatcher:
    def __init__(self, lists: list[KeywordList]):
        self.size = len(lists)
        owners: dict[str, list[int]] = {}
        for at, keyword_list in enumerate(lists):
            for phrase in keyword_list.phrases:
                key = phrase if unspaced_script(phrase) else f" {phrase} "
                owners.setdefault(key, []).append(at)
        self.automaton = ahocorasick.Automaton()
        self.screen = ahocorasick.Automaton()
        for key, lists_of_key in owners.items():
            self.automaton.add_word(key, (key, tuple(lists_of_key)))
            longest = max(key.split(), key=len)
            self.screen.add_word(longest, longest)
        self.empty = not owners
        if not self.empty:
            self.automaton.make_automaton()
            self.screen.make_automaton()
        self.nothing = tuple(ListHits(0, 0) for _ in lists)

    def hits(self, text: str | None) -> TextHits:
        folded = text.casefold() if text else ""
        if self.empty or next(self.screen.iter(folded), None) is None:
            return TextHits(0, self.nothing, 0)
        spaced = spaced_folded(folded)
        words = spaced.count(" ") + 1 if spaced else 0
        found: dict[str, tuple[int, ...]] = {}
        totals = [0] * self.size
        for _, (key, lists_of_key) in self.automaton.iter(f" {spaced} "):
            found[key] = lists_of_key
            for at in lists_of_key:
                totals[at] += 1
        if not found:
            return TextHits(words, self.nothing, 0)
        distinct = [0] * self.size
        for lists_of_key in found.values():
            for at in lists_of_key:
                distinct[at] += 1
        return TextHits(words, tuple(map(ListHits, distinct, totals)), len(found))
