"""License signals in one HTML page, and which one decides.

Each signal names a license (SPDX id), the kind of evidence and where it sits. The page's
license is the strongest signal; the order follows how surely a signal speaks for the page
itself rather than for something on it (a photo, an embedded video, a quoted work):

  5  page metadata: `<link rel=license>` in the head, `<meta name=dc.rights|dcterms.license
     |license ...>`, `itemprop=license`, JSON-LD `license` of a non-media object
  4  `<a rel="license">`: the markup Creative Commons' license chooser generates
  3  a license badge image (88x31 button), a license URL or a license name in the footer, and
     a licensing statement about the page ("this work is licensed under ...", "Soweit nicht
     anders gekennzeichnet, stehen unsere Texte unter ...")
  2  a license URL or a licensing sentence elsewhere in the body: used only when every such
     signal agrees (a page about licenses links to many)
  1  a domain rule (see _license_domains.py): what a site is known to use, when the page
     says nothing

Ties within a level go to the signal in the footer, then to the last one in document order
(the page's own notice comes after the content it covers). Signals inside figures, captions
and photo credits are skipped: they license the image, not the text.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from resiliparse.extract.html2text import extract_plain_text
from resiliparse.parse.html import DOMNode, HTMLTree

from stages._license.spdx import cc_elements, spdx_from_text, spdx_from_url, spdx_from_value

METADATA, A_REL, PAGE_NOTICE, BODY_MENTION, DOMAIN_RULE = 5, 4, 3, 2, 1

# Cheap test on the lowercased page: without one of these, no signal can be found.
HINTS = ("licen", "lizenz", "creativecommons", "creative commons", "cc by", "cc-by", "cc0",
         "publicdomain", "dc.rights", "dl-de", "copyleft")

_ELEMENTS = ", ".join((
    'link[rel~="license" i]', 'a[rel~="license" i]', '[itemprop~="license" i]',
    'a[href*="creativecommons.org" i]', 'a[href*="licensebuttons.net" i]',
    'a[href*="opendatacommons.org" i]', 'a[href*="/dl-de/" i]',
    'a[href*="open-government-licence" i]',
    'img[src*="creativecommons.org" i]', 'img[src*="licensebuttons.net" i]',
    'meta[name]', 'meta[property]', 'script[type="application/ld+json" i]'))
_META_NAMES = {"dc.rights", "dcterms.rights", "dc.license", "dcterms.license", "license",
               "rights", "copyright", "dc:rights", "dcterms:license", "cc:license",
               "og:license", "citation_license", "rights-standard"}
_FOOTER = re.compile(r"footer|colophon|copyright|copyleft|site-?info|"
                     r"(?:^|[\s_-])foot(?:$|[\s_-])", re.IGNORECASE)
_FOOTER_CANDIDATES = ", ".join(
    f'[{attr}*="{word}" i]' for attr in ("id", "class")
    for word in ("foot", "colophon", "copyright", "copyleft", "siteinfo", "site-info")) \
    + ", footer"
_MEDIA = re.compile(r"caption|gallery|(?:^|[\s_-])(?:photo|foto|bild|image|img|media"
                    r"|thumb|video|attachment)(?:$|[\s_-])", re.IGNORECASE)
_MEDIA_TAGS = {"figure", "figcaption", "picture", "video", "audio"}
_MEDIA_JSONLD = {"imageobject", "videoobject", "audioobject", "mediaobject", "photograph",
                 "musicrecording", "3dmodel"}
# Words that make a license mention a photo or media credit when they come just before it.
_CREDIT_WORDS = re.compile(
    r"\b(?:foto|photo|fotos|photos|bild|bilder|image|images|picture|grafik|abbildung|"
    r"illustration|titelbild|beitragsbild|header|cover|logo|video|quelle|source|credit|"
    r"flickr|wikimedia|commons\.wikimedia|unsplash|pixabay)\b", re.IGNORECASE)
_CREDIT_LOOKBACK = 80
_LICENSING = re.compile(
    r"licen[cs]ed\s+under|available\s+under|released\s+under|published\s+under|"
    r"distributed\s+under|licen[cs]e[ds]?\s*:|under\s+(?:a|the)\s+\S+|steh(?:t|en)\s+unter|"
    r"lizen[sz]iert|ver(?:ö|oe)ffentlicht\s+unter|unter\s+(?:einer|der)\s|lizenz\s*:|"
    r"sous\s+(?:la\s+)?licence|mis\s+à\s+disposition|bajo\s+(?:una\s+|la\s+)?licencia|"
    r"sotto\s+licenza|licenza\s*:", re.IGNORECASE)
_PAGE_SUBJECT = re.compile(
    r"this\s+(?:work|article|post|blog|site|website|page|content|text)|"
    r"(?:all|the)\s+(?:content|contents|texts?|articles)\b|content\s+on\s+this|"
    r"(?:except|unless)\s+(?:where\s+)?otherwise\s+noted|"
    r"dies(?:e[rsm]?)?\s+(?:werk|artikel|beitrag|text|blog|inhalt|seite|website|webseite)|"
    r"(?:alle|unsere|sämtliche)\s+(?:inhalte|texte|beiträge|artikel)|"
    r"(?:soweit|sofern|wenn)\s+nicht\s+anders|ce\s+(?:site|contenu|texte|blog|article)|"
    r"este\s+(?:sitio|contenido|texto|blog|art[ií]culo)", re.IGNORECASE)
_STATEMENT_LOOKBACK = 160
_NOTICE_WORDS = re.compile(r"licen[cs]|lizen[sz]|licencia|licenza|copyright|copyleft|©|"
                           r"rights\s+reserved|rechte\s+vorbehalten", re.IGNORECASE)
_NOTICE_CONTEXT = 600
_TEXT_LIMIT = 400_000  # characters of page text searched for statements


@dataclass(frozen=True)
class Signal:
    spdx: str
    kind: str   # link_rel, itemprop, meta, json_ld, a_rel, badge, url, text, domain
    where: str  # head, footer(<tag#id.class>), body, json-ld, url
    value: str  # the URL or the words that name the license
    strength: int
    in_footer: bool = False
    order: int = 0

    def describe(self) -> str:
        value = self.value if len(self.value) <= 160 else self.value[:157] + "..."
        return f"{self.kind} in {self.where}: {value}"


def page_signals(html: str) -> list[Signal]:
    """Every license signal of one page (domain rules are added by the caller)."""
    if not any(hint in html.lower() for hint in HINTS):
        return []
    tree = HTMLTree.parse(html)
    signals: list[Signal] = []
    for order, node in enumerate(tree.document.query_selector_all(_ELEMENTS)):
        signals += _element_signals(node, order)
    for node in tree.document.query_selector_all("script, style, noscript, template"):
        node.decompose()  # after JSON-LD is read: code is not page text
    signals += _text_signals(tree)
    return signals


def choose(signals: list[Signal]) -> tuple[Signal | None, list[Signal]]:
    """The deciding signal and the signals that named another license."""
    if not signals:
        return None, []
    best = max(signals, key=lambda s: (s.strength, s.in_footer, s.order))
    if best.strength == BODY_MENTION:
        named = {s.spdx for s in signals if s.strength == BODY_MENTION}
        if len(named) > 1:  # mentions that disagree decide nothing
            lower = [s for s in signals if s.strength < BODY_MENTION]
            return choose(lower)[0], [s for s in signals if s.strength == BODY_MENTION]
    best = _more_specific(best, signals)
    elements = cc_elements(best.spdx)
    others = [s for s in signals if s.spdx != best.spdx and not (
        elements and cc_elements(s.spdx) == elements and not re.search(r"-\d\.\d", s.spdx))]
    return best, others


def _more_specific(best: Signal, signals: list[Signal]) -> Signal:
    """A versionless name ("CC BY-SA" in a footer) defers to a signal naming the same license
    with its version (the badge beside it): same license, more precise."""
    elements = cc_elements(best.spdx)
    if elements is None or re.search(r"-\d\.\d", best.spdx):
        return best
    precise = [s for s in signals if s.strength >= BODY_MENTION and
               cc_elements(s.spdx) == elements and re.search(r"-\d\.\d", s.spdx)]
    return max(precise, key=lambda s: (s.strength, s.in_footer, s.order)) if precise else best


# -- elements ----------------------------------------------------------------------------------
def _element_signals(node: DOMNode, order: int) -> list[Signal]:
    tag = node.tag
    if tag == "script":
        return [Signal(spdx, "json_ld", "json-ld", value, METADATA, order=order)
                for spdx, value in _json_ld_licenses(node.text)]
    if tag == "meta":
        name = (node.getattr("name") or node.getattr("property") or "").strip().lower()
        itemprop = (node.getattr("itemprop") or "").lower()
        if name not in _META_NAMES and "license" not in itemprop:
            return []
        content = node.getattr("content") or ""
        spdx = spdx_from_value(content)
        return [Signal(spdx, "meta", f"meta {name or 'itemprop=license'}", content,
                       METADATA, order=order)] if spdx else []
    href = node.getattr("href") or node.getattr("src") or ""
    rel = (node.getattr("rel") or "").lower().split()
    footer = _footer_of(node)
    where = f"footer({footer})" if footer else ("head" if _in_head(node) else "body")
    spdx = spdx_from_url(href) or (
        _spdx_from_anchor(node) if tag == "a" and "license" in rel else None)
    if spdx is None:
        return []
    signal = dict(spdx=spdx, value=href, where=where, in_footer=bool(footer), order=order)
    if tag == "link" and "license" in rel or "license" in (node.getattr("itemprop") or ""):
        return [Signal(kind="link_rel" if tag == "link" else "itemprop", strength=METADATA,
                       **signal)]
    if tag == "img":
        if _inside_license_link(node):
            return []  # the surrounding <a> speaks for it
        return [Signal(kind="badge", strength=PAGE_NOTICE, **signal)]
    if tag == "a" and "license" not in rel and node.query_selector("img") is not None:
        # a license link around an image is the badge pattern, wherever the theme puts it
        return [Signal(kind="badge", strength=PAGE_NOTICE, **signal)]
    if not footer and _in_media(node):
        return []
    if tag == "a" and "license" in rel:
        return [Signal(kind="a_rel", strength=A_REL, **signal)]
    if not footer and not _reads_as_notice(node):
        return []  # "Song title (CC BY)": a credit for something on the page
    strength = PAGE_NOTICE if footer else BODY_MENTION
    return [Signal(kind="url", strength=strength, **signal)]


def _reads_as_notice(node: DOMNode) -> bool:
    """A plain license link outside the footer counts when it or its line speaks of
    licensing ("Creative Commons-Lizenz", "licensed under", "(c) 2008 ...")."""
    around = node.text or ""
    parent = node.parent
    if parent is not None:
        text = parent.text or ""
        around += " " + (text if len(text) <= _NOTICE_CONTEXT else "")
    return _NOTICE_WORDS.search(around) is not None


def _spdx_from_anchor(node: DOMNode) -> str | None:
    """A rel=license link to a page we cannot read: its words ("CC BY-SA 4.0", or a path
    like /wiki/Text_of_Creative_Commons_Attribution-ShareAlike_3.0_Unported_License)."""
    for words in (node.text, node.getattr("title") or "",
                  (node.getattr("href") or "").replace("_", " ")):
        found = spdx_from_text(words)
        if found:
            return found[0][0]
    return None


def _json_ld_licenses(text: str) -> list[tuple[str, str]]:
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        return []
    found: list[tuple[str, str]] = []
    stack = [data]
    while stack and len(found) < 20:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, dict):
            kinds = item.get("@type", "")
            kinds = [kinds] if isinstance(kinds, str) else kinds if isinstance(kinds, list) else []
            media = any(str(k).lower() in _MEDIA_JSONLD for k in kinds)
            for key, value in item.items():
                if key in ("license", "http://schema.org/license", "schema:license") \
                        and not media:
                    found += _license_values(value)
                elif isinstance(value, (dict, list)):
                    stack.append(value)
    return found


def _license_values(value) -> list[tuple[str, str]]:
    if isinstance(value, list):
        return [f for v in value for f in _license_values(v)]
    if isinstance(value, dict):
        value = value.get("@id") or value.get("url") or value.get("name") or ""
    if not isinstance(value, str):
        return []
    spdx = spdx_from_value(value)
    return [(spdx, value)] if spdx else []


def _ancestors(node: DOMNode, limit: int = 40):
    parent = node.parent
    while parent is not None and limit > 0 and parent.tag not in ("html", "body", None):
        yield parent
        parent = parent.parent
        limit -= 1


def _describe(node: DOMNode) -> str:
    out = node.tag
    if node.id:
        out += f"#{node.id}"
    if node.class_name:
        out += "." + ".".join(node.class_name.split()[:2])
    return out


def _is_footer(node: DOMNode) -> bool:
    return node.tag == "footer" or _FOOTER.search(f"{node.id or ''} {node.class_name or ''}") \
        is not None


def _footer_of(node: DOMNode) -> str | None:
    for parent in _ancestors(node):
        if _is_footer(parent):
            return _describe(parent)
    return None


def _in_head(node: DOMNode) -> bool:
    parent = node.parent
    while parent is not None and parent.tag not in ("html", None):
        if parent.tag == "head":
            return True
        parent = parent.parent
    return False


def _in_media(node: DOMNode) -> bool:
    for parent in _ancestors(node, limit=8):
        if parent.tag in _MEDIA_TAGS or _MEDIA.search(f"{parent.id or ''} "
                                                      f"{parent.class_name or ''}"):
            return True
    return False


def _inside_license_link(node: DOMNode) -> bool:
    for parent in _ancestors(node, limit=3):
        if parent.tag == "a" and spdx_from_url(parent.getattr("href") or ""):
            return True
    return False


# -- text --------------------------------------------------------------------------------------
def _text_signals(tree: HTMLTree) -> list[Signal]:
    signals: list[Signal] = []
    body = tree.body
    if body is None:
        return signals
    for order, node in enumerate(body.query_selector_all(_FOOTER_CANDIDATES)):
        if not _is_footer(node) or _footer_of(node):
            continue  # not a footer, or inside one whose text is read whole
        # re-parsed so that block elements keep their line breaks ("Lizenz:<br>CC BY")
        text = extract_plain_text(HTMLTree.parse(node.html), main_content=False,
                                  alt_texts=False)
        for spdx, start, end in spdx_from_text(text):
            if _credit_before(text, start):
                continue
            signals.append(Signal(spdx, "text", f"footer({_describe(node)})",
                                  _snippet(text, start, end), PAGE_NOTICE, True,
                                  order=10_000 + order))
    text = extract_plain_text(tree, main_content=False, alt_texts=False)[:_TEXT_LIMIT]
    for spdx, start, end in spdx_from_text(text):
        before = text[max(0, start - _STATEMENT_LOOKBACK):start]
        before = re.split(r"\n\s*\n", before)[-1]  # the same paragraph only
        if _credit_before(text, start) or not _LICENSING.search(before):
            continue
        about_page = _PAGE_SUBJECT.search(before) is not None
        signals.append(Signal(spdx, "text", "body", _snippet(text, start, end),
                              PAGE_NOTICE if about_page else BODY_MENTION, order=start))
    return signals


def _credit_before(text: str, start: int) -> bool:
    before = text[max(0, start - _CREDIT_LOOKBACK):start]
    before = re.split(r"[\n.!?](?!\d)", before)[-1]  # the same sentence or line
    return _CREDIT_WORDS.search(before) is not None


def _snippet(text: str, start: int, end: int) -> str:
    lo = max(0, start - 60)
    snippet = " ".join(text[lo:end].split())
    return ("..." if lo else "") + snippet
