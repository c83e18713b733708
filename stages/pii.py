"""`pii`: find personal data in documents; redact it, count it, or drop pages full of it.

Kinds (`types`, each can be left out): `email`, `ip` (public IPv4/IPv6 only: private,
loopback, link-local and documentation ranges are nobody's), `phone` (libphonenumber's rules
through the `phonenumbers` package, with region hints for numbers written without a country
code), `card` (Luhn-valid payment card numbers), `iban` (checksum-valid), `ssn` (US, in the
issued ranges). How each is found, and what is not taken for one (dates, version numbers,
order numbers, ISBNs, timestamps, prices): the modules of stages/_pii/.

- `mode: redact` (default) replaces each finding with its kind's placeholder (`<EMAIL>`,
  `<IP>`, `<PHONE>`, `<CARD>`, `<IBAN>`, `<SSN>`; `placeholders` changes them); every other
  character of the text stays as it was. Later stages see the redacted text.
- `mode: annotate` leaves the text alone and adds `pii_spans`: the findings as
  {kind, start, end} in character offsets of the text.
- `mode: drop` rejects a page with more than `max_findings` findings (default 0: any) as
  `pii:findings=N`, and leaves the text of the pages it keeps alone. `max_findings` also
  works with the other modes (`mode: redact, max_findings: 20`: drop directories of
  addresses, redact the rest).

Every mode adds a count column per kind (`pii_email`, `pii_ip`, ...) and returns per-kind
totals as the batch's counters, which the runner adds up into the manifest and the report.
"""

from __future__ import annotations

from functools import cached_property
from typing import Literal

import numpy as np
import phonenumbers
import pyarrow as pa
from pydantic import Field, field_validator, model_validator

from pipeline.registry import register
from pipeline.stage import (Stage, StageConfig, StageOutput, column_or_nulls, reasons_where,
                            with_column)
from stages._pii.detect import PiiFinder
from stages._pii.findings import DEFAULT_PLACEHOLDERS, KINDS, redact

Kind = Literal["email", "ip", "phone", "card", "iban", "ssn"]
SPAN = pa.struct([("kind", pa.string()), ("start", pa.int32()), ("end", pa.int32())])


class PiiConfig(StageConfig):
    mode: Literal["redact", "annotate", "drop"] = Field(
        "redact", description="redact: replace findings with placeholders; annotate: counts "
                              "and spans only; drop: reject pages with more than max_findings")
    types: list[Kind] = Field(default_factory=lambda: list(KINDS),
                              description="kinds to look for")
    placeholders: dict[str, str] = Field(
        default_factory=dict, description="redact: text put in place of each kind, e.g. "
                                          "{email: '[email]'}; unnamed kinds keep <EMAIL>...")
    max_findings: int | None = Field(
        None, ge=0, description="reject pages with more findings than this (drop mode: "
                                "default 0)")
    phone_regions: list[str] | None = Field(
        None, description="countries (ISO 3166 codes) whose numbering plans read numbers "
                          "without a country code; default: by the `lang` column, else US, GB")
    strict_phones: bool = Field(
        False, description="accept only numbers valid in their plan (not invented numbers "
                           "of possible length)")

    @field_validator("placeholders")
    @classmethod
    def _known_kinds(cls, value):
        unknown = sorted(set(value) - set(KINDS))
        if unknown:
            raise ValueError(f"placeholders for unknown kinds {unknown}; kinds: {list(KINDS)}")
        return value

    @field_validator("phone_regions")
    @classmethod
    def _known_regions(cls, value):
        if value is None:
            return value
        value = [region.upper() for region in value]
        unknown = sorted(set(value) - phonenumbers.SUPPORTED_REGIONS)
        if unknown:
            raise ValueError(f"unknown phone regions {unknown}: use ISO 3166 codes (US, DE, "
                             "JP, ...)")
        return value

    @model_validator(mode="after")
    def _drop_needs_a_bound(self):
        if self.mode == "drop" and self.max_findings is None:
            self.max_findings = 0
        if not self.types:
            raise ValueError("types is empty: name at least one kind to look for")
        return self


@register
class Pii(Stage):
    name = "pii"
    config_model = PiiConfig
    description = ("Find e-mails, public IPs, phone numbers, card numbers, IBANs and US SSNs; "
                   "redact them, annotate them, or drop pages with too many.")

    def produces(self):
        counts = tuple(f"pii_{kind}" for kind in self._kinds())
        return counts + (("pii_spans",) if self.config.mode != "redact" else ())

    @cached_property
    def finder(self) -> PiiFinder:
        return PiiFinder(self._kinds(), self.config.phone_regions, self.config.strict_phones)

    @cached_property
    def placeholders(self) -> dict[str, str]:
        return DEFAULT_PLACEHOLDERS | dict(self.config.placeholders)

    def process(self, table: pa.Table) -> StageOutput:
        kinds = self._kinds()
        langs = None
        if "phone" in kinds and self.config.phone_regions is None:
            langs = column_or_nulls(table, "lang").to_pylist()
        found = self.finder.find_batch(table["text"], langs)
        counts = {kind: np.zeros(table.num_rows, np.int32) for kind in kinds}
        for row, findings in enumerate(found):
            for finding in findings:
                counts[finding.kind][row] += 1
        for kind in kinds:
            table = with_column(table, f"pii_{kind}", pa.array(counts[kind]))
        if self.config.mode == "redact":
            table = self._redacted(table, found)
        else:
            table = with_column(table, "pii_spans", pa.array(
                [[{"kind": f.kind, "start": f.start, "end": f.end} for f in findings]
                 for findings in found], pa.list_(SPAN)))
        totals = np.array([len(findings) for findings in found], np.int64)
        reasons = None
        if self.config.max_findings is not None:
            over = pa.array(totals > self.config.max_findings)
            reasons = reasons_where(over, "pii", "findings", pa.array(totals))
        counters = {kind: int(counts[kind].sum()) for kind in kinds}
        counters["documents_with_pii"] = int((totals > 0).sum())
        return StageOutput(table, reasons, counters=counters)

    def _redacted(self, table: pa.Table, found) -> pa.Table:
        rows = [row for row, findings in enumerate(found) if findings]
        if not rows:
            return table
        texts = table["text"].to_pylist()
        for row in rows:
            texts[row] = redact(texts[row], found[row], self.placeholders)
        return with_column(table, "text", pa.array(texts, table["text"].type))

    def _kinds(self) -> tuple[str, ...]:
        types = self.config.types if self.config.types is not None else KINDS
        return tuple(kind for kind in KINDS if kind in types)
