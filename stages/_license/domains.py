"""Per-domain license rules: what a site is known to publish under, when its page says nothing.

A rule applies to a domain and its subdomains; the longest matching domain wins, so
`ncbi.nlm.nih.gov: null` carves PubMed Central out of `nih.gov`. A rule is one license, or a
history of licenses with the date each took effect: with a crawl date (the `warc_date`
column, or a Wayback Machine URL) the license in force at that date applies, without one the
latest. Users extend the table with a YAML file of the same shape (`domain_rules: PATH`),
merged over the built-in rules domain by domain; `null` switches a built-in rule off:

    example.org: CC-BY-4.0
    blog.example.com:
      - {license: CC-BY-SA-3.0, since: 2010-01-01}
      - {license: CC-BY-4.0, since: 2019-05-01}
    nasa.gov: null

The built-in table is small and deliberately conservative:
- Wikimedia projects: text under GFDL until the 2009 relicensing, CC BY-SA 3.0 from
  2009-06-15, CC BY-SA 4.0 for edits after the Terms of Use update of June 2023 (older
  revisions stay 3.0, which permits adaptation under 4.0). A page's own footer states the
  version in force and outranks this rule. Wikidata's structured data is CC0. Wikinews
  (CC BY 2.5, then 4.0) is left out: we could not pin down its switch date.
- U.S. federal government: works of federal employees have no copyright (17 U.S.C. § 105),
  so a few well-known federal domains, `.mil` and `.fed.us` map to the Public Domain Mark.
  `.gov` alone is not a rule: states, counties and cities use it too and their works are
  often copyrighted. Third-party content on federal sites keeps its own license, and a page
  signal always wins over this rule.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import yaml

from stages._license.spdx import canonical_id, spdx_from_value

_WIKIMEDIA = [("GFDL-1.2-or-later", "2001-01-15"), ("CC-BY-SA-3.0", "2009-06-15"),
              ("CC-BY-SA-4.0", "2023-06-29")]
_US_FEDERAL = """
usa.gov whitehouse.gov congress.gov senate.gov house.gov gao.gov supremecourt.gov
uscourts.gov nasa.gov noaa.gov weather.gov nih.gov cdc.gov fda.gov hhs.gov usgs.gov nps.gov
fws.gov epa.gov energy.gov ed.gov state.gov defense.gov justice.gov fbi.gov irs.gov
treasury.gov usda.gov commerce.gov census.gov bls.gov nist.gov nsf.gov va.gov dhs.gov
fema.gov sec.gov ftc.gov fcc.gov transportation.gov faa.gov hud.gov dol.gov osha.gov doi.gov
medlineplus.gov cancer.gov mil fed.us
""".split()

BUILTIN_RULES: dict[str, list[tuple[str, str | None]] | None] = {
    **{d: _WIKIMEDIA for d in ("wikipedia.org", "wiktionary.org", "wikibooks.org",
                               "wikiquote.org", "wikisource.org", "wikiversity.org",
                               "wikivoyage.org", "wikimedia.org", "mediawiki.org")},
    "wikidata.org": [("CC0-1.0", "2012-10-29")],
    **{d: [("CC-PDM-1.0", None)] for d in _US_FEDERAL},
    # Federal sites that mostly host other people's copyrighted works:
    "ncbi.nlm.nih.gov": None,   # PubMed / PubMed Central: publishers' articles
}


@dataclass(frozen=True)
class DomainMatch:
    spdx: str
    domain: str
    since: str | None
    dated: bool  # False: no crawl date, the latest rule was assumed

    def describe(self) -> str:
        since = f" in force since {self.since}" if self.since else ""
        assumed = "" if self.dated or not self.since else " (no crawl date: latest assumed)"
        return f"site rule{since}{assumed}"


class DomainRules:
    """The merged rule table; `match(url, date)` finds the rule for one page."""

    def __init__(self, extra_path: str | None = None):
        self.rules = dict(BUILTIN_RULES)
        if extra_path:
            self.rules.update(load_rules_file(extra_path))

    def match(self, url: str | None, crawl_date: str | None = None) -> DomainMatch | None:
        host, wayback_date = page_host(url)
        date = crawl_date or wayback_date
        labels = host.split(".") if host else []
        for i in range(len(labels)):
            domain = ".".join(labels[i:])
            if domain in self.rules:
                history = self.rules[domain]
                return _in_force(domain, history, date) if history else None
        return None


def _in_force(domain: str, history: list[tuple[str, str | None]],
              date: str | None) -> DomainMatch | None:
    ordered = sorted(history, key=lambda h: h[1] or "")
    if date is None:
        spdx, since = ordered[-1]
        return DomainMatch(spdx, domain, since, dated=False)
    for spdx, since in reversed(ordered):
        if since is None or since <= date[:10]:
            return DomainMatch(spdx, domain, since, dated=True)
    return None  # crawled before the earliest rule


_WAYBACK = re.compile(r"^/web/(\d{8})\d*(?:[a-z]{2}_)?/(.+)$")


def page_host(url: str | None) -> tuple[str, str | None]:
    """(host without `www.`, crawl date of a Wayback Machine capture or None)."""
    if not url:
        return "", None
    try:
        parts = urlsplit(url.strip())
        host = (parts.hostname or "").lower()
        if host == "web.archive.org":
            m = _WAYBACK.match(parts.path)
            if m:
                stamp = m.group(1)
                inner = m.group(2)
                inner = inner if "://" in inner else "http://" + inner
                date = f"{stamp[:4]}-{stamp[4:6]}-{stamp[6:8]}"
                return (urlsplit(inner).hostname or "").lower().removeprefix("www."), date
    except ValueError:
        return "", None
    return host.removeprefix("www."), None


def load_rules_file(path: str) -> dict[str, list[tuple[str, str | None]] | None]:
    """Parse a user rules file; raises ValueError naming the file and the bad entry."""
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValueError(f"cannot read domain rules {path}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise ValueError(f"domain rules {path} is not valid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValueError(f"domain rules {path}: expected a mapping `domain: SPDX-id`")
    rules: dict[str, list[tuple[str, str | None]] | None] = {}
    for domain, value in data.items():
        where = f"domain rules {path}, entry {domain!r}"
        domain = str(domain).strip().lower().removeprefix("www.").strip(".")
        if value is None:
            rules[domain] = None
        elif isinstance(value, str):
            rules[domain] = [(_license(value, where), None)]
        elif isinstance(value, list):
            rules[domain] = [_dated(item, where) for item in value]
        else:
            raise ValueError(f"{where}: expected an SPDX id, null or a list of "
                             "{license, since}")
    return rules


def _dated(item, where: str) -> tuple[str, str | None]:
    if not isinstance(item, dict) or "license" not in item or \
            set(item) - {"license", "since"}:
        raise ValueError(f"{where}: each item is {{license: SPDX-id, since: YYYY-MM-DD}}")
    since = item.get("since")
    if isinstance(since, (dt.date, dt.datetime)):
        since = since.isoformat()[:10]
    if since is not None and not re.match(r"^\d{4}-\d{2}-\d{2}$", str(since)):
        raise ValueError(f"{where}: since must be a date YYYY-MM-DD, got {since!r}")
    return _license(str(item["license"]), where), since


def _license(value: str, where: str) -> str:
    spdx = canonical_id(value) or spdx_from_value(value)
    if spdx is None and not re.match(r"^[A-Za-z0-9][A-Za-z0-9.+-]*$", value):
        raise ValueError(f"{where}: {value!r} is not an SPDX id (e.g. CC-BY-4.0)")
    return spdx or value
