"""License names and URLs -> SPDX ids, and which ids a policy keeps.

Normalisation rules (the `license` stage and its evaluation both use them):
- Creative Commons URLs in any spelling (`http`/`https`, `//`, `www.`, trailing slash,
  `deed.xx`, `legalcode`, `rdf`, badge images under `/l/` and `/p/`) name family, version
  and, for versions before 4.0, an optional jurisdiction port: `/by-sa/3.0/de/` ->
  `CC-BY-SA-3.0-DE`.
- A port keeps its own SPDX id where SPDX lists one (`CC-BY-SA-3.0-DE`, `CC-BY-3.0-AT`).
  SPDX lists only a few ports; the others (`/by/2.0/de/`) map to the unported id of the same
  version (`CC-BY-2.0`): same license elements and the same policy class, and the port stays
  visible in `license_evidence`. 4.0 has no ports, so `/4.0/de` never adds a suffix.
- A statement without a version ("CC BY-SA", "Creative Commons Namensnennung") yields the
  family alone (`CC-BY-SA`), which is not an SPDX-listed id: we do not invent a version.
- The Public Domain Mark is `CC-PDM-1.0` (SPDX); `PDM` is accepted as an alias in policies.
"""

from __future__ import annotations

import fnmatch
import re
from urllib.parse import urlsplit

# The Creative Commons ids on the SPDX License List (as listed in 2025).
SPDX_CC_IDS = frozenset("""
CC-BY-1.0 CC-BY-2.0 CC-BY-2.5 CC-BY-2.5-AU CC-BY-3.0 CC-BY-3.0-AT CC-BY-3.0-AU CC-BY-3.0-DE
CC-BY-3.0-IGO CC-BY-3.0-NL CC-BY-3.0-US CC-BY-4.0 CC-BY-NC-1.0 CC-BY-NC-2.0 CC-BY-NC-2.5
CC-BY-NC-3.0 CC-BY-NC-3.0-DE CC-BY-NC-4.0 CC-BY-NC-ND-1.0 CC-BY-NC-ND-2.0 CC-BY-NC-ND-2.5
CC-BY-NC-ND-3.0 CC-BY-NC-ND-3.0-DE CC-BY-NC-ND-3.0-IGO CC-BY-NC-ND-4.0 CC-BY-NC-SA-1.0
CC-BY-NC-SA-2.0 CC-BY-NC-SA-2.0-DE CC-BY-NC-SA-2.0-FR CC-BY-NC-SA-2.0-UK CC-BY-NC-SA-2.5
CC-BY-NC-SA-3.0 CC-BY-NC-SA-3.0-DE CC-BY-NC-SA-3.0-IGO CC-BY-NC-SA-4.0 CC-BY-ND-1.0
CC-BY-ND-2.0 CC-BY-ND-2.5 CC-BY-ND-3.0 CC-BY-ND-3.0-DE CC-BY-ND-4.0 CC-BY-SA-1.0 CC-BY-SA-2.0
CC-BY-SA-2.0-UK CC-BY-SA-2.1-JP CC-BY-SA-2.5 CC-BY-SA-3.0 CC-BY-SA-3.0-AT CC-BY-SA-3.0-DE
CC-BY-SA-3.0-IGO CC-BY-SA-4.0 CC-PDDC CC-PDM-1.0 CC-SA-1.0 CC0-1.0
""".split())

CC_VERSIONS = ("1.0", "2.0", "2.1", "2.5", "3.0", "4.0")
_ELEMENT_ORDER = ("BY", "NC", "ND", "SA")  # SPDX spelling: CC-BY-NC-SA, never CC-BY-SA-NC

# Non-CC licenses a page may point at, by URL (host + path prefix, lowercase, no scheme).
_OTHER_URLS = (
    ("opensource.org/licenses/mit", "MIT"),
    ("opensource.org/licenses/apache-2.0", "Apache-2.0"),
    ("opensource.org/licenses/bsd-2-clause", "BSD-2-Clause"),
    ("opensource.org/licenses/bsd-3-clause", "BSD-3-Clause"),
    ("apache.org/licenses/license-2.0", "Apache-2.0"),
    ("gnu.org/licenses/fdl-1.3", "GFDL-1.3-or-later"),
    ("gnu.org/licenses/fdl-1.2", "GFDL-1.2-or-later"),
    ("gnu.org/licenses/fdl", "GFDL-1.3-or-later"),
    ("gnu.org/copyleft/fdl", "GFDL-1.3-or-later"),
    ("gnu.org/licenses/gpl-3.0", "GPL-3.0-or-later"),
    ("gnu.org/licenses/gpl-2.0", "GPL-2.0-or-later"),
    ("opendatacommons.org/licenses/by", "ODC-By-1.0"),
    ("opendatacommons.org/licenses/odbl", "ODbL-1.0"),
    ("opendatacommons.org/licenses/pddl", "PDDL-1.0"),
    ("govdata.de/dl-de/by-2-0", "DL-DE-BY-2.0"),
    ("govdata.de/dl-de/zero-2-0", "DL-DE-ZERO-2.0"),
    ("nationalarchives.gov.uk/doc/open-government-licence/version/3", "OGL-UK-3.0"),
    ("nationalarchives.gov.uk/doc/open-government-licence/version/2", "OGL-UK-2.0"),
)

_EMBEDDED_CC = re.compile(r"(?<=/)(?:[a-z]+:/+)?(?:www\.|i\.)?"
                          r"(?:creativecommons\.org|licensebuttons\.net)/\S*")
_JURISDICTION = re.compile(r"^(?:[a-z]{2}|igo|scotland)$")


# -- URLs ------------------------------------------------------------------------------------
def spdx_from_url(url: str | None) -> str | None:
    """The license a URL points at (CC deed, legal code, badge image, or a known license
    page), or None when it names no license we know."""
    if not url:
        return None
    url = url.strip().lower()
    embedded = _EMBEDDED_CC.search(url, 1)
    if embedded:  # an archived copy: web.archive.org/web/2016.../http://creativecommons.org/..
        url = embedded.group(0)
    if url.startswith("//"):
        url = "http:" + url
    elif "://" not in url:
        url = "http://" + url
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    host = (parts.hostname or "").removeprefix("www.")
    path = [p for p in parts.path.split("/") if p]
    if host == "creativecommons.org" or host.endswith((".creativecommons.org",
                                                       "licensebuttons.net")):
        return _cc_path(path)
    joined = host + "/" + "/".join(path)
    for prefix, spdx in _OTHER_URLS:
        if joined.startswith(prefix):
            return spdx
    if host == "spdx.org" and len(path) >= 2 and path[0] == "licenses":
        return path[1].removesuffix(".html").removesuffix(".json").upper() or None
    return None


def _cc_path(path: list[str]) -> str | None:
    if not path:
        return None
    head = path[0]
    if head in ("licenses", "l") and len(path) >= 2:
        if path[1] == "publicdomain":
            return "CC-PDDC"
        version = path[2] if len(path) >= 3 and path[2] in CC_VERSIONS else None
        jurisdiction = path[3] if version and len(path) >= 4 and \
            _JURISDICTION.match(path[3]) else None
        return cc_id(_elements_from_code(path[1]), version, jurisdiction)
    if head in ("publicdomain", "p") and len(path) >= 2:
        version = path[2] if len(path) >= 3 and path[2] in CC_VERSIONS else "1.0"
        return {"zero": f"CC0-{version}", "mark": f"CC-PDM-{version}"}.get(path[1])
    if head == "presskit" and path[-1].endswith(".png") and "buttons" in path:
        # mirrors.creativecommons.org/presskit/buttons/88x31/png/by-sa.png: no version
        name = path[-1].removesuffix(".png")
        if name in ("cc-zero", "cc0"):
            return "CC0-1.0"
        return cc_id(_elements_from_code(name), None, None)
    return None


def _elements_from_code(code: str) -> set[str] | None:
    parts = code.upper().split("-")
    if not parts or any(p not in _ELEMENT_ORDER for p in parts):
        return None
    return set(parts)


def cc_id(elements: set[str] | None, version: str | None,
          jurisdiction: str | None) -> str | None:
    """SPDX id of a CC license from its elements, e.g. ({BY, SA}, "3.0", "de")."""
    if not elements or ("ND" in elements and "SA" in elements):
        return None
    if elements != {"SA"}:
        elements = elements | {"BY"}  # every license since 2.0 requires attribution
    family = "CC-" + "-".join(e for e in _ELEMENT_ORDER if e in elements)
    if version is None:
        return family
    if jurisdiction and version != "4.0":
        ported = f"{family}-{version}-{jurisdiction.upper()}"
        if ported in SPDX_CC_IDS:
            return ported
    unported = f"{family}-{version}"
    if unported in SPDX_CC_IDS:
        return unported
    suffix = f"-{jurisdiction.upper()}" if jurisdiction else ""
    return f"LicenseRef-{unported}{suffix}"  # e.g. a 2.1 port SPDX does not list


# -- names in text ---------------------------------------------------------------------------
_SHORT = re.compile(
    r"(?<![\w/.])CC[\s_-]?"
    r"(?P<code>(?i:BY(?:[\s_-]?(?:NC|ND|SA)){0,3}(?![a-z])|0|zero|PDM))"
    r"(?:[\s_-]*v?(?P<version>[1-4][.,][0-5]))?"
    r"(?:[\s_-]+(?P<jur>[A-Z]{2})\b)?")
_CREATIVE_COMMONS = re.compile(r"creative[\s_-]*commons", re.IGNORECASE)
_VERSION = re.compile(r"(?<![\d.])([1-4])[.,]([05])(?![\d])")

# License elements as written in license names, in the languages of most CC-licensed pages.
_KEYWORDS = {
    "BY": ("attribution", "namensnennung", "paternit", "reconocimiento", "atribuci",
           "attribuzione", "naamsvermelding", "uznanie autorstwa"),
    "NC": ("noncommercial", "non-commercial", "non commercial", "nichtkommerziell",
           "nicht-kommerziell", "nicht kommerziell", "keine kommerzielle",
           "pas d'utilisation commerciale", "pas d’utilisation commerciale", "nocomercial",
           "no comercial", "non commerciale", "niet-commercieel", "niekomercyjne"),
    "ND": ("noderiv", "no derivative", "no-derivative", "keine bearbeitung",
           "pas de modification", "sinobraderivada", "sin obra derivada", "sinderivadas",
           "sin derivadas", "non opere derivate", "geen afgeleide", "bez utworów"),
    "SA": ("sharealike", "share-alike", "share alike", "weitergabe unter gleichen",
           "partage dans les mêmes conditions", "partage à l'identique",
           "compartirigual", "compartir igual", "condividi allo stesso modo",
           "gelijk delen", "na tych samych warunkach"),
}
_KEYWORD_RES = {e: re.compile(r"(?<![a-zäöüéè])(?:" + "|".join(re.escape(w) for w in words)
                              + r")(?![a-zäöüéè])") for e, words in _KEYWORDS.items()}
_JURISDICTION_NAMES = {
    "deutschland": "de", "germany": "de", "österreich": "at", "austria": "at",
    "schweiz": "ch", "switzerland": "ch", "suisse": "ch", "france": "fr", "españa": "es",
    "spain": "es", "italia": "it", "italy": "it", "nederland": "nl", "netherlands": "nl",
    "polska": "pl", "poland": "pl", "united states": "us", "england": "uk", "igo": "igo",
}
_LONG_WINDOW = 160
_CODE = re.compile(r"(?<![A-Za-z])BY(?:[\s-](?:NC|ND|SA))*(?![A-Za-z])")


def spdx_from_text(text: str | None) -> list[tuple[str, int, int]]:
    """Every license named in `text`: (SPDX id, start, end), short forms ("CC BY-SA 4.0",
    "CC-BY-NC-ND-3.0-DE", "CC0") and long forms ("Creative Commons Namensnennung - Keine
    Bearbeitung 3.0 Deutschland Lizenz") in several languages."""
    if not text:
        return []
    found: list[tuple[str, int, int]] = []
    for m in _SHORT.finditer(text):
        raw = m.group("code")
        if raw[:1].islower() and text[m.start() + 2:m.start("code")].isspace():
            continue  # "CC by the way": a lowercase code needs a hyphen ("CC-by-sa")
        code = re.sub(r"[\s_-]", "", raw.upper())
        version = m.group("version").replace(",", ".") if m.group("version") else None
        if code in ("0", "ZERO"):
            found.append(("CC0-1.0", m.start(), m.end()))
            continue
        if code == "PDM":
            found.append(("CC-PDM-1.0", m.start(), m.end()))
            continue
        elements = set(re.findall(r"BY|NC|ND|SA", code))
        spdx = cc_id(elements, version, m.group("jur"))
        if spdx:
            found.append((spdx, m.start(), m.end()))
    for m in _CREATIVE_COMMONS.finditer(text):
        if any(s <= m.start() < e for _, s, e in found):
            continue
        parsed = _long_form(text, m.end())
        if parsed:
            found.append((parsed[0], m.start(), parsed[1]))
    return sorted(found, key=lambda f: f[1])


def _long_form(text: str, start: int) -> tuple[str, int] | None:
    window = text[start:start + _LONG_WINDOW]
    stop = re.search(r"[.;!?](?!\d)|\n\s*\n|creative[\s_-]*commons", window, re.IGNORECASE)
    window = window[:stop.start()] if stop else window
    lowered = window.lower()
    if "public domain mark" in lowered:
        return "CC-PDM-1.0", start + len(window)
    if re.search(r"\bzero\b|\bcc0\b|public domain dedication", lowered):
        return "CC0-1.0", start + len(window)
    version_match = _VERSION.search(window)
    named = lowered[:version_match.start()] if version_match else lowered
    elements = {e for e, pattern in _KEYWORD_RES.items() if pattern.search(named)}
    # "Creative Commons BY-SA 3.0": the element codes, only in capitals ("by" is a word)
    code = _CODE.search(window[:len(named)])
    if code:
        elements |= set(re.findall(r"BY|NC|ND|SA", code.group(0)))
    if not elements:
        return None  # "Creative Commons" alone names no license
    version = f"{version_match.group(1)}.{version_match.group(2)}" if version_match else None
    jurisdiction = None
    if version_match:
        after = lowered[version_match.end():version_match.end() + 40]
        for name, code in _JURISDICTION_NAMES.items():
            if re.match(r"[\s(]*" + name, after):
                jurisdiction = code
                break
    end = start + (version_match.end() if version_match else len(window))
    spdx = cc_id(elements, version, jurisdiction)
    return (spdx, end) if spdx else None


def spdx_from_value(value: str | None) -> str | None:
    """A license given as metadata: a URL, an SPDX id, or a license name."""
    if not value:
        return None
    value = value.strip()
    if re.match(r"^(?:https?:)?//|^(?:www\.)?[a-z0-9.-]+\.[a-z]{2,}/", value, re.IGNORECASE):
        return spdx_from_url(value)
    canonical = canonical_id(value)
    if canonical:
        return canonical
    found = spdx_from_text(value)
    return found[0][0] if found else None


_KNOWN_IDS = {s.lower(): s for s in SPDX_CC_IDS} | {
    spdx.lower(): spdx for _, spdx in _OTHER_URLS} | {
    s.lower(): s for s in ("MIT", "Apache-2.0", "BSD-2-Clause", "BSD-3-Clause", "ISC",
                           "Unlicense")}


def canonical_id(value: str) -> str | None:
    """`value` if it is (a case variant of) an id we know, else None. `PDM` -> CC-PDM-1.0."""
    lowered = value.strip().lower()
    if lowered in ("pdm", "public-domain-mark"):
        return "CC-PDM-1.0"
    return _KNOWN_IDS.get(lowered)


# -- policy classes --------------------------------------------------------------------------
PUBLIC_DOMAIN = frozenset({"CC0-1.0", "CC-PDM-1.0", "CC-PDDC", "PDDL-1.0", "DL-DE-ZERO-2.0",
                           "Unlicense"})
OPEN_NON_CC = frozenset({"MIT", "Apache-2.0", "BSD-2-Clause", "BSD-3-Clause", "ISC",
                         "ODC-By-1.0", "ODbL-1.0", "DL-DE-BY-2.0", "OGL-UK-2.0", "OGL-UK-3.0",
                         "GFDL-1.2-or-later", "GFDL-1.3-or-later"})


def cc_elements(spdx: str) -> set[str] | None:
    """License elements of a CC id ({"BY", "SA"} for CC-BY-SA-3.0-DE), None if not CC BY/SA."""
    m = re.match(r"^(?:LicenseRef-)?CC-((?:BY|NC|ND|SA)(?:-(?:NC|ND|SA))*)(?:-|$)", spdx)
    return set(m.group(1).split("-")) if m else None


def is_permissive(spdx: str) -> bool:
    """Allows commercial use and adaptation (Open Definition conformant): public domain,
    CC0, CC BY and CC BY-SA (any version or port), GFDL and permissive software/data
    licenses. Share-alike is included: it binds redistribution, not use."""
    if spdx in PUBLIC_DOMAIN or spdx in OPEN_NON_CC:
        return True
    elements = cc_elements(spdx)
    return elements is not None and not elements & {"NC", "ND"}


def is_non_commercial_ok(spdx: str) -> bool:
    """Permissive, or non-commercial with adaptation allowed (CC BY-NC, CC BY-NC-SA).
    No-derivatives licenses stay out: a cleaned, filtered corpus is an adaptation."""
    if is_permissive(spdx):
        return True
    elements = cc_elements(spdx)
    return elements is not None and "ND" not in elements


def matches_any(spdx: str | None, patterns: list[str]) -> bool:
    """`spdx` (None = unknown) against a list of ids or globs (`CC-BY-SA-*`, `unknown`)."""
    name = spdx or "unknown"
    return any(fnmatch.fnmatchcase(name, p) for p in patterns)
