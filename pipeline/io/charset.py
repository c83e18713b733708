"""Which charset HTML bytes are in, and their text. Decoding never raises.

Order of evidence:
1. A byte-order mark.
2. Bytes that are valid UTF-8 are UTF-8, whatever was declared: pages that declare latin-1
   but are served as UTF-8 are common, while non-ASCII latin-1 text is almost never valid
   UTF-8 by accident. (UTF-16/32 declarations are tried first: their ASCII is valid UTF-8.)
3. The declared charset (HTTP header, else `<meta>`), if the bytes decode with it.
4. Detection (uchardet, through resiliparse), decoding with U+FFFD for invalid bytes.

Labels are mapped the way browsers map them (WHATWG): `iso-8859-1` means windows-1252.
"""

from __future__ import annotations

import codecs
import re

from resiliparse.parse.encoding import detect_encoding, map_encoding_to_html5

_BOMS = ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF32_LE, "utf-32-le"),
         (codecs.BOM_UTF32_BE, "utf-32-be"), (codecs.BOM_UTF16_LE, "utf-16-le"),
         (codecs.BOM_UTF16_BE, "utf-16-be"))
_META_CHARSET = re.compile(rb"""<meta[^>]{0,512}?charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]{1,40})""",
                           re.IGNORECASE)
_META_SCAN_BYTES = 4096   # a <meta charset> that counts sits near the top (WHATWG: 1024)
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
    """The charset a `<meta charset>` or `<meta http-equiv content-type>` tag declares."""
    match = _META_CHARSET.search(html, 0, _META_SCAN_BYTES)
    return match.group(1).decode("ascii") if match else None


def resolve_charset(html: bytes, declared: str | None = None) -> str:
    """The codec to decode `html` with, following the order in the module docstring.

    `declared` is the HTTP header's charset, if any; a `<meta>` declaration is looked up here.
    """
    for bom, name in _BOMS:
        if html.startswith(bom):
            return name
    declared_codec = codec_name(declared) or codec_name(meta_charset(html))
    if declared_codec and declared_codec.startswith("utf-16") or \
            declared_codec and declared_codec.startswith("utf-32"):
        if _decodes(html, declared_codec):
            return declared_codec
    if _decodes(html, "utf-8"):
        return "utf-8"
    if declared_codec and _decodes(html, declared_codec):
        return declared_codec
    return codec_name(detect_encoding(html, max_len=_DETECT_BYTES)) or "utf-8"


def decode_html(html: bytes | str, charset: str | None = None) -> tuple[str, str]:
    """(text, codec used). `charset` is a hint (e.g. the reader's `charset` column): used as
    is when the bytes decode with it, otherwise the full resolution runs."""
    if isinstance(html, str):
        return html, "utf-8"
    hint = codec_name(charset)
    if hint and _decodes(html, hint):
        codec = hint
    else:
        codec = resolve_charset(html, charset)
    for bom, name in _BOMS:
        if name == codec and html.startswith(bom):
            html = html[len(bom):]
            break
    return html.decode(codec, errors="replace"), codec


def _decodes(data: bytes, codec: str) -> bool:
    try:
        data.decode(codec)
    except (UnicodeDecodeError, LookupError):
        return False
    return True
