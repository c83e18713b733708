"""E-mail addresses: the everyday form `local@domain.tld`.

Found from each `@` outwards rather than by one regex over the whole text, so the cost is set
by the number of `@` signs (none on most pages) and stays linear on hostile input: the local
part is looked for in the 64 characters before the `@` (RFC 5321's limit), the domain in at
most 8 labels after it.

Letters may be any script's (`müller@beispiel.de`, internationalised domains), except the
scripts written without spaces (Chinese, Japanese kana, Korean syllables, Thai): there the
text around an address touches it, as in `联系john@x.cn谢谢`.
"""

from __future__ import annotations

import re

MAX_LOCAL = 64
_NO_SPACE_SCRIPTS = "\u0E00-\u0E7F\u3040-\u30FF\u3400-\u4DBF\u4E00-\u9FFF\uAC00-\uD7AF\uF900-\uFAFF"
_LETTER = rf"[^\W_{_NO_SPACE_SCRIPTS}]"  # a letter or digit of a script with spaces
# The local-part characters people use (RFC 5322 allows more: ' { | } ... are left out so
# that quotes and brackets around an address are not taken into it).
_LOCAL = rf"(?:{_LETTER}|[_.%+\-])"
_LOCAL_BEFORE_AT = re.compile(rf"{_LOCAL}{{1,{MAX_LOCAL}}}\Z")
_LOCAL_CHAR = re.compile(_LOCAL)
_LABEL = rf"{_LETTER}(?:(?:{_LETTER}|-){{0,61}}{_LETTER})?"
_DOMAIN_AFTER_AT = re.compile(
    rf"(?:{_LABEL}\.){{1,8}}([^\W\d_{_NO_SPACE_SCRIPTS}]{{2,24}})(?!{_LETTER}|-)")
# `logo@2x.png` is a file name, not an address
FILE_EXTENSIONS = frozenset("png jpg jpeg gif svg webp bmp ico tif tiff css js json pdf".split())


def find_emails(text: str) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    at = text.find("@")
    floor = 0  # an address starts after the previous one ends
    while at != -1:
        span = _address_around(text, at, floor)
        if span is not None:
            spans.append(span)
            floor = span[1]
        at = text.find("@", max(floor, at + 1))
    return spans


def _address_around(text: str, at: int, floor: int) -> tuple[int, int] | None:
    local = _LOCAL_BEFORE_AT.search(text, max(floor, at - MAX_LOCAL), at)
    if local is None:
        return None
    start = local.start()
    if start > floor and _LOCAL_CHAR.match(text, start - 1):
        return None  # a local part longer than 64 characters: not an address
    while start < at and text[start] == ".":
        start += 1  # a sentence's full stop before the address
    name = text[start:at]
    if not name or name.endswith(".") or ".." in name:
        return None
    domain = _DOMAIN_AFTER_AT.match(text, at + 1)
    if domain is None or domain.group(1).lower() in FILE_EXTENSIONS:
        return None
    return start, domain.end()
