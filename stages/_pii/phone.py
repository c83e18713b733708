"""Phone numbers: candidates cut out by one cheap regex, judged by Google's libphonenumber
rules (the `phonenumbers` package) only when their shape could be a phone number.

1. A candidate is a run of numbers (numbers.py: digit groups joined by space, no-break
   space, `-`, `–`, `.`, `/` or parentheses), cut where two numbers stand side by side
   (`030 123456 / 030 654321`, but not after an area code: `0731 / 153 87-0`), with 7 to 18
   digits, a `+` or `(` just before it taken in, and not glued to a word, a longer number or
   a time (`12:30`).
2. Runs that are something else are set aside before any parsing, which is what keeps clean
   pages cheap: dates with a four-digit year (`12.05.2023`, `2023-05-12 14`, `08 06 1988`),
   year ranges, decimals (`688.4147`, `4.0 4.1 4.2`), thousands (`2.462.000`), dotted
   quads, versions (`10.0.19041.1`), the SSN layout (`912-34-5678`), slashes not after an
   area code (`343/344/347`), prices (a currency sign or word beside it), ISBN-13s, and
   numbers named as something else just before (`ISBN`, `PMID`, `doi`, `order`, `Steuer-Nr.`
   ...).
3. A bare run of digits (no separator, no `+`) is a phone number only with a sign that it
   is one: a trunk prefix `0`, or a phone word just before it (`Tel.`, `call`, `電話` ...);
   otherwise `1707200742` (a Unix time) and `20240206062542` would be numbers somewhere.
   In countries where national numbers are written with their trunk `0` (regions.py), a
   number without it needs the phone word too.
4. A number with `+` or `00` is parsed as international; any other is parsed in each region
   hint (`regions.py`). It is a phone number when libphonenumber calls it valid in its
   numbering plan, or, with `strict: false`, when its length is possible there and it is
   written as phone numbers are (a `+`, an area code in parentheses, two separators or
   more, or a trunk `0` and one separator: `01632 960661`): invented numbers in ranges no
   operator uses yet (films' 555 numbers, Ofcom's drama ranges) are still someone's number
   written down.
5. An extension after it (`x123`, `ext. 12`) is taken in.
"""

from __future__ import annotations

import functools
import re

import phonenumbers
from phonenumbers import NumberParseException
from stdnum import isbn

from stages._pii.findings import Taken
from stages._pii.regions import WRITES_TRUNK_ZERO

# Where a run of numbers holds two numbers side by side: `030 123456 / 030 654321`.
_PIECE_BREAK = re.compile(r"[ \u00a0]{2,}|[ \u00a0]?/[ \u00a0]|[ \u00a0]/")
_SEPARATOR = re.compile(r"[ \u00a0\-\u2013./()]+")
_YEAR_DATE = re.compile(r"(?<!\d)(?:\d{1,2}[./-]\d{1,2}[./-](?:1[89]|20)\d\d|"
                        r"(?:1[89]|20)\d\d[./-]\d{1,2}[./-]\d{1,2})(?!\d)")
_YEAR_RANGE = re.compile(r"(?:1[89]|20)\d\d\s*[-\u2013/]\s*(?:(?:1[89]|20)?\d\d)")
_SPACED_DATE = re.compile(r"\d{1,2}[ \u00a0]\d{1,2}[ \u00a0](?:1[89]|20)\d\d")
# Big numbers with thousands separators (`2.462.000`, `6 500 000`) and dotted quads (a
# private IP address, which the IP finder leaves alone, is no phone number either).
_THOUSANDS = re.compile(r"\d{1,3}(?:\.\d{3}){2,}|\d{1,3}(?:[ \u00a0]\d{3})*[ \u00a0]000")
_DOTTED_QUAD = re.compile(r"\d{1,3}(?:\.\d{1,3}){3}")
_VERSION = re.compile(r"[+(]?\d+(?:\.\d+)*\.\d(?:\.\d+)*")  # a one-digit group: 10.0.19041.1
_SSN_LAYOUT = re.compile(r"\d{3}-\d{2}-\d{4}")
_NAMED_OTHERWISE = re.compile(
    r"(?<!\w)(?:isbn(?:-1[03])?|issn|doi|pmid|pmc|arxiv|bug|kb|issue|order|invoice|patent|"
    r"versions?|ver|build|sku|serial|item|art|case|ref|kto|konto|account|acct|blz|"
    r"steuer-?nr|st\.?-?nr|tax|vat|ust-?id|hrb|meldung)\.?"
    r"\s*(?:no\.?|nr\.?|number|#)?\s*[:#]?\s*\Z", re.IGNORECASE)
# Words that say a phone number follows (in the languages of regions.py), as word starts
# (`Tel.:`, `Telefonnummer`, not `hotel` or `plausibel`), and signs and CJK words anywhere.
_PHONE_WORD = re.compile(
    r"(?<![A-Za-z\u00C0-\u024F\u0400-\u04FF])(?:tel|tél|phone|fon|fone|fono|fax|call|mobil|"
    r"cell|handy|whatsapp|hotline|sms|ruf|appel|llam|ligue|bel|zadzwo|телефон|тел)|"
    r"☎|📞|电话|電話|手机|手機|携帯|전화", re.IGNORECASE)
_CURRENCY_BEFORE = re.compile(r"[$€£¥₹₽₩]\s?\Z")
_CURRENCY_AFTER = re.compile(r"\s?(?:[$€£¥₹₽₩]|(?:eur|euros?|usd|dollars?|gbp|chf|franken|"
                             r"francs?|jpy|yen|cny|yuan|kr|zł|pln|rub)\b)", re.IGNORECASE)
_EXTENSION = re.compile(r"\s?(?:x|ext\.?|extension|#)\s?\d{1,6}(?!\d)", re.IGNORECASE)
# A character that glues a candidate to the text before it (`/2016/07/08/`, `#34`, `v1.2`).
_GLUE_BEFORE = frozenset("_-./,#=&%+")
MIN_DIGITS, MAX_DIGITS = 7, 18


def phones_in_run(text: str, start: int, end: int, regions: tuple[str, ...],
                  strict: bool = False, taken: Taken | None = None) -> list[tuple[int, int]]:
    """Phone numbers in the run of numbers text[start:end] (see numbers.py), leaving out
    any that overlaps a span in `taken` (found as another kind)."""
    spans = []
    for piece_start, piece_end in _pieces(text, start, end):
        span = _phone_at(text, piece_start, piece_end, regions, strict, taken)
        if span is not None:
            spans.append(span)
    return spans


def _pieces(text: str, start: int, end: int):
    at = start
    for split in _PIECE_BREAK.finditer(text, start, end):
        left = text[at:split.start()]
        area_code = left.startswith(("0", "(")) or text[at - 1:at] == "+"
        if "/" in split.group() and area_code and _digits(left) < MIN_DIGITS:
            continue  # an area code before the slash: `0731 / 153 87-0`, `+49 (0)40 / 49 07`
        yield at, split.start()
        at = split.end()
    yield at, end


def _digits(text: str) -> int:
    return sum(ch.isdigit() for ch in text)


def _phone_at(text: str, start: int, end: int, regions: tuple[str, ...], strict: bool,
              taken: Taken | None) -> tuple[int, int] | None:
    while end > start and not text[end - 1].isdigit():
        end -= 1
    while start < end and not (text[start].isdigit() or text[start] == "("):
        start += 1
    if start and text[start - 1] == "(" and ")" in text[start:end]:
        start -= 1  # an area code in parentheses: `(0161) 4960066`, not `(0161 4960066)`
    if start and text[start - 1] == "+":
        start -= 1
    if end - start < MIN_DIGITS or (taken is not None and taken.overlaps(start, end)):
        return None
    candidate = text[start:end]
    if not (_stands_alone(text, start, end) and _may_be_phone(text, start, end, candidate)):
        return None
    named = _PHONE_WORD.search(text, max(0, start - 30), start) is not None
    if not _is_phone(candidate, regions, strict, named):
        return None
    extension = _EXTENSION.match(text, end)
    if extension and not (extension.end() < len(text) and text[extension.end()].isalnum()):
        end = extension.end()
    return start, end


def _stands_alone(text: str, start: int, end: int) -> bool:
    if start and (text[start - 1].isalnum() or
                  (text[start - 1] in _GLUE_BEFORE and text[start] != "+")):
        return False
    if end < len(text):
        after, then = text[end], text[end + 1:end + 2]
        if _EXTENSION.match(text, end):
            return True
        if after.isalnum() or after in "%_" or (after in ":,/-" and then.isdigit()) or \
                (after == "." and then.isalnum()):
            return False
    return True


def _may_be_phone(text: str, start: int, end: int, candidate: str) -> bool:
    if not MIN_DIGITS <= _digits(candidate) <= MAX_DIGITS:
        return False
    if "." in candidate and (candidate.count(".") == 1 or
                             any(c in candidate for c in " -\u2013/")):
        return False  # decimals, `4.0 4.1 4.2`, dates written `27. 2. 2015` or `19.-22.2.08`
    if "/" in candidate and not candidate.startswith(("0", "(0", "+")):
        return False  # a slash follows an area code (`030/1234567`), else `343/344`, `455/2021`
    if _YEAR_DATE.search(candidate) or _YEAR_RANGE.fullmatch(candidate) or \
            _SPACED_DATE.fullmatch(candidate) or \
            _THOUSANDS.fullmatch(candidate) or _DOTTED_QUAD.fullmatch(candidate) or \
            _VERSION.fullmatch(candidate) or _SSN_LAYOUT.fullmatch(candidate):
        return False
    if candidate.lstrip("(+").startswith("000"):
        return False  # no country code starts with 0
    if candidate.count("(") != candidate.count(")"):
        return False
    before = max(0, start - 24)
    if _NAMED_OTHERWISE.search(text, before, start) or \
            _CURRENCY_BEFORE.search(text, before, start) or _CURRENCY_AFTER.match(text, end):
        return False
    plain = "".join(ch for ch in candidate if ch.isdigit())
    return not (len(plain) == 13 and plain[:3] in ("978", "979") and isbn.is_valid(plain))


def _is_phone(candidate: str, regions: tuple[str, ...], strict: bool, named: bool) -> bool:
    """Is `candidate` a phone number (`named`: a phone word stands just before it)?"""
    international = candidate.startswith(("+", "00", "(+", "(00"))
    separators = len(_SEPARATOR.findall(candidate.strip("()")))
    if not (international or separators or named or candidate.startswith("0")):
        return False  # a bare run of digits: a timestamp, an id, a count
    formatted = international or candidate.startswith("(") or separators >= 2 or \
        (separators == 1 and candidate.startswith("0"))
    trunk = candidate.lstrip("(").startswith("0")
    for region in ((None,) if international else regions):
        if region in WRITES_TRUNK_ZERO and not (trunk or named):
            continue  # there a national number is written with its 0: `62053-21` is an id
        number = _parse(candidate, region or "DE")  # DE: any region whose exit code is 00
        if number is None:
            continue
        if phonenumbers.is_valid_number(number):
            return True
        if not strict and formatted and phonenumbers.is_possible_number(number):
            return True
    return False


def _parse(candidate: str, region: str):
    if not _length_possible(candidate, region):
        return None
    try:
        return phonenumbers.parse(candidate, region)
    except NumberParseException:
        return None


def _length_possible(candidate: str, region: str) -> bool:
    """A cheap check before parsing (a parse costs ~60 us): could a national number of
    this many digits exist in `region`, with or without its trunk prefix?"""
    if candidate.lstrip("(").startswith(("+", "00")):
        return True
    digits = sum(ch.isdigit() for ch in candidate)
    lengths, prefix = _plan(region)
    return digits in lengths or (prefix is not None and digits - len(prefix) in lengths)


@functools.lru_cache(maxsize=None)
def _plan(region: str) -> tuple[frozenset[int], str | None]:
    metadata = phonenumbers.PhoneMetadata.metadata_for_region(region)
    if metadata is None:
        raise ValueError(f"unknown phone region {region!r}")
    lengths = set(metadata.general_desc.possible_length or ())
    lengths |= set(metadata.general_desc.possible_length_local_only or ())
    return frozenset(lengths), metadata.national_prefix
