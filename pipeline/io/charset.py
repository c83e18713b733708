"""Which charset HTML bytes are in, and their text. Decoding never raises.

Order of evidence:
1. A byte-order mark.
2. Bytes that are valid UTF-8 are UTF-8, whatever was declared: pages that declare latin-1
   but are served as UTF-8 are common, while non-ASCII latin-1 text is almost never valid
   UTF-8 by accident. (A UTF-16/32 declaration is tried first: its ASCII is valid UTF-8.)
3. The declared charset (HTTP header, else `<meta>`), if the bytes decode with it.
4. Detection (uchardet, through resiliparse), decoding invalid bytes as U+FFFD.

Labels are mapped the way browsers map them (WHATWG): `iso-8859-1` means windows-1252.
"""

from __future__ import annotations

import codecs
import re

from resiliparse.parse.encoding import detect_encoding, map_encoding_to_html5

_BOMS = ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF32_LE, "utf-32-le"),
         (codecs.BOM_UTF32_BE, "utf-32-be"), (codecs.BOM_UTF16_LE, "utf-16-le"),
         (codecs.BOM_UTF16_BE, "utf-16-be"))
_META_CHARSET = re.compile(
    rb"""<meta[^>]{0,512}?charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]{1,40})""", re.IGNORECASE)
_META_SCAN_BYTES = 4096  # a <meta> declaration that counts sits near the top (WHATWG: 1024)
_DETECT_BYTES = 64 * 1024


def codec_name(label: str | None) -> str | None:
    """The Python codec for a charset label from a header or `<meta>`; None if unknown."""
    if not label:
        return None
    label = label.strip().strip("\"'").lower()
    mapped = map_encoding_to_html5(label, fallback_utf8=False)
    if mapped:
        return mapped
    try:
        return codecs.lookup(label).name
    except LookupError:
        return None


def meta_charset(html: bytes) -> str | None:
    """The charset a `<meta charset>` or `<meta http-equiv=content-type>` tag declares."""
    match = _META_CHARSET.search(html, 0, _META_SCAN_BYTES)
    return match.group(1).decode("ascii") if match else None


def decode_html(html: bytes | str, declared: str | None = None) -> tuple[str, str]:
    """(text, codec used), following the order in the module docstring.

    `declared` is the HTTP header's charset (or the reader's `charset` column); a `<meta>`
    declaration is looked up here when it is missing or unknown.
    """
    if isinstance(html, str):
        return html, "utf-8"
    for bom, name in _BOMS:
        if html.startswith(bom):
            return html[len(bom):].decode(name, errors="replace"), name
    codec = codec_name(declared) or codec_name(meta_charset(html))
    candidates = ["utf-8", codec] if codec and not codec.startswith(("utf-16", "utf-32")) \
        else [codec, "utf-8"]
    for candidate in candidates:
        if candidate:
            try:
                return html.decode(candidate), candidate
            except UnicodeDecodeError:
                pass
    detected = codec_name(detect_encoding(html, max_len=_DETECT_BYTES)) or "utf-8"
    return html.decode(detected, errors="replace"), detected


def resolve_charset(html: bytes, declared: str | None = None) -> str:
    """The codec `decode_html` would use."""
    return decode_html(html, declared)[1]
