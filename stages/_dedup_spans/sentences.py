"""A small, fast sentence splitter that returns character ranges, so that `dedup_spans` can
cut sentences out of a text and leave every other character as it was.

Why a regex and not a library: the splitter runs twice over every document of a job (once to
hash, once to cut), so it has to cost about what reading the text costs. One compiled regex
finds the candidate ends in C; Python looks only at candidates that end in a single `.` or
`…`, to rule out abbreviations. pysbd (pure-Python rules, ~100x slower on web pages) and
spaCy's sentencizer (DataTrove's choice, a tokenizer pass first) cost far more per page;
blingfire is fast but English-centred, trained rather than stated, and its offsets come from
a second pass. What a sentence end is here:

- `.`, `!`, `?`, `…` (any run of them, then closing quotes or brackets) followed by whitespace
  or the end of the text: Latin, Cyrillic, Greek and Arabic-script texts written with `.`.
  A single `.` is not an end after a known abbreviation ("Dr.", "e.g.", "Fig."), after
  single-letter initials ("J. R. R.", "U.S."), or after a word of at most three letters when
  a lowercase letter follows ("etc. and"); an ellipsis is not an end before a lowercase
  letter; a decimal point ("3.14") has no space after it. Text written all in lowercase
  still splits after longer words;
- the CJK full stops and marks `。！？｡．` (no space follows them in Chinese or Japanese);
- the Devanagari danda `।` and double danda `॥`, the Arabic question mark `؟` and the Urdu
  full stop `۔`;
- a line break, always: extracted web text puts headings, menu items and paragraphs on lines
  of their own, and a sentence never runs from one into the next.

A sentence's range takes the whitespace after it, so cutting a sentence out leaves its
neighbours spaced as they were. Not handled: scripts without sentence punctuation (Thai
separates sentences by spaces; a Thai paragraph is one sentence).
"""

from __future__ import annotations

import re

# A candidate end, with the whitespace that follows it. Group `latin` marks the kind whose
# single `.`/`…` may be an abbreviation rather than an end.
_END = re.compile(
    r"(?=[.!?…。！？｡．।॥؟۔\n])"  # a cheap first test: the scan skips other characters fast
    r"(?:(?P<latin>[.!?…]+)[\"'”’»)\]]*(?=\s|\Z)"
    r"|[。！？｡．][」』”’）)]*"
    r"|[।॥؟۔][\"'”’)\]]*"
    r"|(?=\n))\s*")
_LAST_TOKEN = re.compile(r"\S+\Z")
_INITIALS = re.compile(r"(?:[^\W\d_]\.)*[^\W\d_]")  # "J", "U.S", "e.g" (before the last dot)
_OPENERS = "([{\"'“‘«"
# Abbreviations that are usually followed by more of the same sentence (lowercase, without
# their last dot). "etc." and "usw." are left out: they end sentences as often as not.
ABBREVIATIONS = frozenset("""
mr mrs ms mx dr prof sr jr st mt ft rev hon gov sen rep pres gen col lt sgt capt cmdr
no nos nr vol vols fig figs pp ed eds est approx dept univ assn inc ltd co corp bros
jan feb mar apr jun jul aug sep sept oct nov dec
vs cf ca al ibid op ch sec art para
z.b bzw ggf vgl hr fr mme mlle sra sr sta p.ex
""".split())


def sentence_ranges(text: str) -> list[tuple[int, int]]:
    """[start, end) of each sentence of `text`, in order, covering the text without gaps
    (each range holds the whitespace after its sentence; leading whitespace joins the
    first). Blank text gives no sentence."""
    first = len(text) - len(text.lstrip())
    if first == len(text):
        return []
    ranges, start = [], 0
    # Every accepted end takes the whitespace after it, so each sentence starts at a
    # non-space character: none is blank.
    for match in _END.finditer(text, first):
        if match.group("latin") is not None and _continues(text, match):
            continue
        ranges.append((start, match.end()))
        start = match.end()
    if start < len(text):
        ranges.append((start, len(text)))
    return ranges


def _continues(text: str, match: re.Match) -> bool:
    """Does the sentence go on past this mark? An ellipsis before a lowercase letter; a
    single `.` after an abbreviation or initials, or after a short word (three letters or
    fewer: "etc.", "approx." is listed) before a lowercase letter. Never past a line break,
    and never after `!` or `?`: all-lowercase text ("sagen kann. sie stehen") still splits."""
    if text.find("\n", match.end("latin"), match.end()) >= 0:
        return False
    mark = match.group("latin")
    lower_next = match.end() < len(text) and text[match.end()].islower()
    if mark == "…" or mark == "...":
        return lower_next
    if mark != ".":
        return False
    before = _LAST_TOKEN.search(text, max(0, match.start() - 40), match.start())
    if before is None:
        return False
    token = before.group().lstrip(_OPENERS)
    if token.lower() in ABBREVIATIONS or _INITIALS.fullmatch(token) is not None:
        return True
    return lower_next and len(token) <= 3
