"""US Social Security numbers written `AAA-GG-SSSS`, in the ranges the SSA issues: area
001-899 but not 666, group 01-99, serial 0001-9999. Nine digits without hyphens are left
alone: without the hyphens nothing tells them from any other number."""

from __future__ import annotations

import re

_SSN = re.compile(r"([0-9]{3})-([0-9]{2})-([0-9]{4})")


def find_ssns(text: str, pos: int = 0, endpos: int | None = None) -> list[tuple[int, int]]:
    """Spans found in text[pos:endpos] (the text around it still decides where a number
    ends)."""
    spans = []
    for match in _SSN.finditer(text, pos, len(text) if endpos is None else endpos):
        start, end = match.span()
        if start and (text[start - 1].isalnum() or text[start - 1] in "-_./"):
            continue
        if end < len(text) and (text[end].isalnum() or text[end] == "_" or
                                (text[end] in "-./" and text[end + 1:end + 2].isdigit())):
            continue
        area, group, serial = match.groups()
        if area not in ("000", "666") and area[0] != "9" and group != "00" and serial != "0000":
            spans.append((start, end))
    return spans
