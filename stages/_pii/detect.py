"""Every finder over a batch: cheap gates first, Python only where something may be.

Per batch, Arrow's RE2 and numpy decide which rows may hold each kind: an `@` (e-mail), an
IBAN-shaped token (two capitals, two digits, four more), `:hex:` (IPv6), and runs of numbers
(numbers.py: cards, SSNs, IPv4, phones). A row with none of these costs no Python at all; a
row with some runs only the finders that its gates allow, on the runs long enough for them.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from stages._pii.email import find_emails
from stages._pii.findings import KINDS, Finding, Taken, without_overlaps
from stages._pii.ip import find_ipv4, find_ipv6
from stages._pii.numbers import in_characters, number_runs
from stages._pii.payment import find_cards, find_ibans
from stages._pii.phone import phones_in_run
from stages._pii.regions import regions_for
from stages._pii.ssn import find_ssns

_IBAN_SHAPE = r"[A-Z]{2}[0-9]{2} ?[0-9A-Z]{4}"
_IPV6_SHAPE = r":[0-9A-Fa-f]{0,4}:"
# Digits a run needs before each finder looks at it (an SSN is a run of its own: in
# `+81 158-23-2012` the SSN layout is the end of a phone number).
_CARD_DIGITS, _SSN_DIGITS, _PHONE_DIGITS = 12, 9, 7


class PiiFinder:
    """Finds the `kinds` asked for (a subset of findings.KINDS). Phone numbers written
    without a country code are read in `regions` if given, else in the regions of each
    document's language (regions.py)."""

    def __init__(self, kinds: Sequence[str] = KINDS, regions: Sequence[str] | None = None,
                 strict_phones: bool = False):
        unknown = set(kinds) - set(KINDS)
        if unknown:
            raise ValueError(f"unknown PII kinds {sorted(unknown)}; known: {list(KINDS)}")
        self.kinds = frozenset(kinds)
        self.regions = tuple(regions) if regions is not None else None
        self.strict_phones = strict_phones

    def find(self, text: str, lang: str | None = None) -> list[Finding]:
        """The findings in one document (the batch code on a batch of one)."""
        return self.find_batch(pa.array([text], pa.string()), [lang])[0]

    def find_batch(self, texts: pa.Array | pa.ChunkedArray,
                   langs: Sequence[str | None] | None = None) -> list[list[Finding]]:
        """Findings per row, sorted by position, without overlaps."""
        if isinstance(texts, pa.ChunkedArray):
            texts = texts.combine_chunks()
        rows = len(texts)
        gates = self._gates(texts)
        may_hold = np.zeros(rows, bool)
        for gate in gates.values():
            may_hold |= gate
        runs = number_runs(texts) if self.kinds & {"card", "ssn", "ip", "phone"} else {}
        may_hold[list(runs)] = True
        candidates = np.flatnonzero(may_hold)
        strings = texts.take(pa.array(candidates, pa.int64())).to_pylist()
        found: list[list[Finding]] = [[] for _ in range(rows)]
        for row, text in zip(candidates.tolist(), strings):
            lang = langs[row] if langs is not None else None
            row_runs = in_characters(text, runs[row]) if row in runs else ()
            found[row] = self._find_in(text, row_runs, gates, row, lang)
        return found

    def _gates(self, texts: pa.Array) -> dict[str, np.ndarray]:
        def mask(array) -> np.ndarray:
            return pc.fill_null(array, False).to_numpy(zero_copy_only=False).astype(bool)
        gates = {}
        if "email" in self.kinds:
            gates["email"] = mask(pc.match_substring(texts, "@"))
        if "iban" in self.kinds:
            gates["iban"] = mask(pc.match_substring_regex(texts, _IBAN_SHAPE))
        if "ip" in self.kinds:
            gates["ipv6"] = mask(pc.match_substring_regex(texts, _IPV6_SHAPE))
        return gates

    def _find_in(self, text: str, runs, gates: dict[str, np.ndarray], row: int,
                 lang: str | None) -> list[Finding]:
        findings: list[Finding] = []

        def add(kind: str, spans) -> None:
            findings.extend(Finding(start, end, kind) for start, end in spans)

        if "email" in gates and gates["email"][row]:
            add("email", find_emails(text))
        if "iban" in gates and gates["iban"][row]:
            add("iban", find_ibans(text))
        if "ipv6" in gates and gates["ipv6"][row]:
            add("ip", find_ipv6(text))
        for start, end, digits in runs:
            if "card" in self.kinds and digits >= _CARD_DIGITS:
                add("card", find_cards(text, start, end))
            if "ssn" in self.kinds and digits == _SSN_DIGITS and text[start - 1:start] != "+":
                add("ssn", find_ssns(text, start, end))
            if "ip" in self.kinds:
                add("ip", find_ipv4(text, start, end))
        if "phone" in self.kinds:
            regions = self.regions if self.regions is not None else regions_for(lang)
            taken = Taken([(f.start, f.end) for f in findings])
            for start, end, digits in runs:
                if digits >= _PHONE_DIGITS:
                    add("phone", phones_in_run(text, start, end, regions,
                                               self.strict_phones, taken))
        return without_overlaps(findings) if findings else findings
