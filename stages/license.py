"""`license`: which license a page is published under, from its HTML and URL; keep by policy.

Reads the raw `html` (place the stage before `extract`, or let `extract` keep the HTML) and
`url`. Signals, strongest first (details and tie rules in _license/signals.py): page metadata
(`<link rel=license>`, `dc.rights`/`dcterms.license` meta, JSON-LD `license`) > `<a
rel=license>` > badge images, license links and licensing statements in the footer > license
links elsewhere (only when they agree) > per-domain rules (_license/domains.py). Names and
URLs normalise to SPDX ids (_license/spdx.py).

Columns: `license` (SPDX id, or null when nothing was found) and `license_evidence` (the
deciding signal, where it sat, and any signal that named another license).

`policy` decides what is kept; a rejected row's reason is `license:<id>` or
`license:unknown`:
- `any`: keep everything, annotate only (the default: measurement without policy);
- `permissive`: public domain, CC0, CC BY and CC BY-SA in any version or port, GFDL and
  permissive software/data licenses (MIT, Apache-2.0, BSD, ODC-By, DL-DE-BY, OGL-UK);
- `non_commercial`: permissive plus CC BY-NC and CC BY-NC-SA (no ND: a cleaned corpus is an
  adaptation);
- a list of SPDX ids or globs, e.g. `[CC0-1.0, CC-PDM-1.0, "CC-BY-[0-9]*", unknown]`.
"""

from __future__ import annotations

import os
from typing import Literal

import pyarrow as pa
from pydantic import Field, field_validator

from pipeline.io.charset import decode_html
from pipeline.registry import register
from pipeline.stage import (SpecPath, Stage, StageConfig, StageOutput, column_or_nulls, reason,
                            reasons_or_none, with_column)
from stages._license.domains import DomainRules, load_rules_file
from stages._license.signals import DOMAIN_RULE, Signal, choose, page_signals
from stages._license.spdx import is_non_commercial_ok, is_permissive, matches_any

_HEAD_BYTES, _TAIL_BYTES = 1_500_000, 500_000  # a footer sits at the end of a huge page


class LicenseConfig(StageConfig):
    policy: Literal["any", "permissive", "non_commercial"] | list[str] = Field(
        "any", description="any (annotate only), permissive, non_commercial, or a list of "
                           "SPDX ids/globs to keep (`unknown` keeps pages without a license)")
    domain_rules: SpecPath | None = Field(
        None, description="YAML file of `domain: SPDX-id` rules merged over the built-in "
                          "table (relative paths start at the spec's folder)")
    date_column: str = Field("warc_date", description="crawl date column, used by dated "
                                                      "domain rules when present")
    max_html_bytes: int = Field(_HEAD_BYTES + _TAIL_BYTES, gt=0,
                                description="longer pages are read as their head and tail")

    @field_validator("domain_rules")
    @classmethod
    def _rules_file_is_valid(cls, value):
        if value is None:
            return None
        path = os.path.abspath(os.path.expanduser(value))
        if not os.path.isfile(path):
            raise ValueError(f"domain rules file not found: {path} (relative paths start at "
                             "the spec's folder)")
        load_rules_file(path)  # a broken file fails validation, not the job
        return path

    @field_validator("policy")
    @classmethod
    def _non_empty_list(cls, value):
        if isinstance(value, list) and not value:
            raise ValueError("an empty list keeps nothing; list SPDX ids, or use `any`")
        return value


@register
class License(Stage):
    name = "license"
    config_model = LicenseConfig
    description = ("Detect each page's license (SPDX) from its HTML and URL; keep pages "
                   "whose license the policy allows.")

    def requires(self):
        return ("html", "url")

    def produces(self):
        return ("license", "license_evidence")

    def setup(self) -> None:
        self._rules = DomainRules(self.config.domain_rules)
        policy = self.config.policy
        if policy == "any":
            self._keeps = lambda spdx: True
        elif policy == "permissive":
            self._keeps = lambda spdx: spdx is not None and is_permissive(spdx)
        elif policy == "non_commercial":
            self._keeps = lambda spdx: spdx is not None and is_non_commercial_ok(spdx)
        else:
            self._keeps = lambda spdx: matches_any(spdx, policy)

    def process(self, table: pa.Table) -> StageOutput:
        licenses, evidence = [], []
        for page, url, charset, date in zip(table["html"].to_pylist(), table["url"].to_pylist(),
                                            column_or_nulls(table, "charset").to_pylist(),
                                            _dates(table, self.config.date_column)):
            spdx, why = self.detect(page, url, charset, date)
            licenses.append(spdx)
            evidence.append(why)
        reasons = [None if self._keeps(spdx) else reason("license", value=spdx or "unknown")
                   for spdx in licenses]
        table = with_column(table, "license", pa.array(licenses, pa.string()))
        table = with_column(table, "license_evidence", pa.array(evidence, pa.string()))
        return StageOutput(table, reasons_or_none(reasons))

    def detect(self, html: bytes | str | None, url: str | None, charset: str | None = None,
               crawl_date: str | None = None) -> tuple[str | None, str | None]:
        """(SPDX id or None, evidence) for one page."""
        signals: list[Signal] = []
        if html:
            try:
                signals = page_signals(self._text(html, charset))
            except Exception as exc:  # a page we cannot parse has no signal; say why
                return self._domain_only(url, crawl_date,
                                         f"unreadable html ({type(exc).__name__})")
        match = self._rules.match(url, crawl_date)
        if match:
            signals.append(Signal(match.spdx, "domain", match.domain, match.describe(),
                                  DOMAIN_RULE))
        best, others = choose(signals)
        if best is None:
            return None, None
        why = best.describe()
        if others:
            named = sorted({f"{s.spdx} ({s.kind} in {s.where})" for s in others})
            why += "; outranks " + ", ".join(named[:3]) + (" ..." if len(named) > 3 else "")
        return best.spdx, why

    def _domain_only(self, url, crawl_date, problem: str) -> tuple[str | None, str]:
        match = self._rules.match(url, crawl_date)
        if match is None:
            return None, problem
        return match.spdx, f"domain in {match.domain}: {match.describe()}; {problem}"

    def _text(self, html: bytes | str, charset: str | None) -> str:
        limit = self.config.max_html_bytes
        if len(html) > limit:
            # cut at tag starts: a cut inside a UTF-8 sequence would make the page undecodable
            lt = b"<" if isinstance(html, bytes) else "<"
            head_end = html.rfind(lt, 0, limit - limit // 4)
            tail_start = html.find(lt, len(html) - limit // 4)
            html = html[:max(head_end, 0)] + html[tail_start if tail_start >= 0 else len(html):]
        if isinstance(html, str):
            return html
        return decode_html(html, charset)[0]


def _dates(table: pa.Table, column: str) -> list[str | None]:
    values = column_or_nulls(table, column)
    if pa.types.is_timestamp(values.type) or pa.types.is_date(values.type):
        return [v.isoformat()[:10] if v is not None else None for v in values.to_pylist()]
    return [str(v)[:10] if v else None for v in values.to_pylist()]
