"""The HTTP response inside a WARC `response` record: status, headers and the decoded body.

Header parsing and body decoding (chunked transfer, gzip/deflate/br content encoding, with
a fallback to the raw bytes when a server lied about either) are warcio's; this module only
bounds the size and names what it found.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from warcio.bufferedreaders import ChunkedDataReader
from warcio.statusandheaders import StatusAndHeadersParser

from pipeline.io.charset import codec_name

_HTTP_PARSER = StatusAndHeadersParser(["HTTP/1.0", "HTTP/1.1", "HTTP/2", "HTTP/2.0"],
                                      verify=False)
_READ_CHUNK = 1 << 20

# Leading bytes of formats that are never HTML, whatever the Content-Type says.
_BINARY_MAGIC = (b"\x89PNG", b"\xff\xd8\xff", b"GIF8", b"%PDF", b"PK\x03\x04", b"\x1f\x8b",
                 b"RIFF", b"\x00\x00\x01\x00", b"wOFF", b"wOF2", b"OggS", b"ID3")
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
_WIDE_CODECS = ("utf-16", "utf-32")


class BadHttpPayload(ValueError):
    """The block is not an HTTP response we can read; the message is a short reason."""


@dataclass
class HttpResponse:
    status: int | None
    mime: str | None      # media type of the Content-Type header, lower case, no parameters
    charset: str | None   # `charset` parameter of the Content-Type header
    body: bytes
    too_large: bool = False  # the decoded body passed the limit and was cut there


def parse_http_response(block: bytes, max_body_bytes: int) -> HttpResponse:
    """Split an HTTP response into status, content type and decoded body (at most
    `max_body_bytes`; `too_large` says the body was longer)."""
    stream = io.BytesIO(block)
    try:
        head = _HTTP_PARSER.parse(stream)
    except (EOFError, ValueError, IndexError) as exc:
        raise BadHttpPayload("corrupt_record:no_http_header") from exc
    if not head.protocol.upper().startswith("HTTP/"):
        raise BadHttpPayload("corrupt_record:no_http_header")
    try:
        status = int(head.get_statuscode())
    except (TypeError, ValueError):
        status = None
    mime, charset = split_content_type(head.get_header("content-type"))
    encoding = (head.get_header("content-encoding") or "").strip().lower() or None
    chunked = "chunked" in (head.get_header("transfer-encoding") or "").lower()
    if not chunked and encoding not in ("gzip", "x-gzip", "deflate", "br"):
        body = block[stream.tell():]
        return HttpResponse(status, mime, charset, body[:max_body_bytes],
                            len(body) > max_body_bytes)
    parts, size = [], 0
    try:
        reader = ChunkedDataReader(stream, decomp_type=_decomp_type(encoding))
        while size <= max_body_bytes:
            part = reader.read(_READ_CHUNK)
            if not part:
                break
            parts.append(part)
            size += len(part)
    except Exception as exc:  # zlib/brotli errors after a good start: the body is damaged
        raise BadHttpPayload(f"bad_content_encoding:{encoding or 'chunked'}") from exc
    body = b"".join(parts)
    return HttpResponse(status, mime, charset, body[:max_body_bytes], size > max_body_bytes)


def split_content_type(value: str | None) -> tuple[str | None, str | None]:
    """('text/html', 'utf-8') from 'text/html; charset="UTF-8"'."""
    if not value:
        return None, None
    mime, *params = value.split(";")
    charset = None
    for param in params:
        key, _, val = param.partition("=")
        if key.strip().lower() == "charset" and val.strip():
            charset = val.strip().strip("\"'")
    return mime.strip().lower() or None, charset


def looks_binary(body: bytes, declared: str | None = None) -> bool:
    """True for payloads that cannot be HTML: known binary signatures or NUL bytes early on.
    `declared` is the HTTP charset: a page declared UTF-16/32 has NUL bytes in every ASCII
    character, with or without a byte-order mark."""
    if body.startswith(_BINARY_MAGIC):
        return True
    if body.startswith(_UTF16_BOMS) or (codec_name(declared) or "").startswith(_WIDE_CODECS):
        return False
    return b"\x00" in body[:1024]


def _decomp_type(encoding: str | None) -> str | None:
    return {"gzip": "gzip", "x-gzip": "gzip", "deflate": "deflate", "br": "br"}.get(encoding)
