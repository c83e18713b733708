"""Findings of every kind in one document: which wins where two overlap, and redaction.

A finding is a span of characters (Python string offsets) and its kind. Where two findings
overlap, the kind earlier in `PRIORITY` wins: an IBAN's or a card's digits may also read as
a phone number, an SSN as part of one.
"""

from __future__ import annotations

import bisect
import itertools
from dataclasses import dataclass

KINDS = ("email", "ip", "phone", "card", "iban", "ssn")
DEFAULT_PLACEHOLDERS = {"email": "<EMAIL>", "iban": "<IBAN>", "card": "<CARD>",
                        "ssn": "<SSN>", "ip": "<IP>", "phone": "<PHONE>"}
PRIORITY = {kind: rank for rank, kind in
            enumerate(("email", "iban", "card", "ssn", "ip", "phone"))}


@dataclass(frozen=True)
class Finding:
    start: int
    end: int
    kind: str


class Taken:
    """Spans already claimed (they may overlap each other): does a new span touch one?
    Sorted starts and a running maximum of ends answer in O(log n), so a page with 100k
    findings is not quadratic."""

    def __init__(self, spans: list[tuple[int, int]]):
        spans = sorted(spans)
        self.starts = [start for start, _ in spans]
        self.reach = list(itertools.accumulate((end for _, end in spans), max))

    def overlaps(self, start: int, end: int) -> bool:
        before = bisect.bisect_left(self.starts, end)  # spans that start before `end`
        return before > 0 and self.reach[before - 1] > start


def without_overlaps(findings: list[Finding]) -> list[Finding]:
    """The findings sorted by position; where some overlap, one of the highest-priority
    kind among them stays (then the earlier, then the longer span)."""
    chosen: list[Finding] = []
    for finding in sorted(findings, key=lambda f: (f.start, PRIORITY[f.kind], -f.end)):
        clash = len(chosen)
        while clash and chosen[clash - 1].end > finding.start:
            clash -= 1  # chosen spans are sorted and apart: only the last ones can overlap
        rank = PRIORITY[finding.kind]
        if clash == len(chosen):
            chosen.append(finding)
        elif all(rank < PRIORITY[other.kind] for other in chosen[clash:]):
            del chosen[clash:]
            chosen.append(finding)
    return chosen


def redact(text: str, findings: list[Finding], placeholders: dict[str, str]) -> str:
    """`text` with each finding replaced by its kind's placeholder; every other character
    stays as it was. `findings` must be sorted and must not overlap."""
    pieces, at = [], 0
    for finding in findings:
        pieces.append(text[at:finding.start])
        pieces.append(placeholders[finding.kind])
        at = finding.end
    pieces.append(text[at:])
    return "".join(pieces)
