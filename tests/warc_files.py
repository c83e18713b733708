"""Small WARC files for the tests, written with warcio (fixed record ids and dates)."""

from __future__ import annotations

import io
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

DATE = "2024-05-18T01:58:10Z"


def record_id(n: int) -> str:
    return f"urn:uuid:{uuid.UUID(int=n)}"


@dataclass
class Rec:
    """One record to write. `http` None means no HTTP headers (warcinfo, resource, ...)."""

    kind: str
    url: str | None
    body: bytes
    n: int
    http: list[tuple[str, str]] | None = None
    status: str = "200 OK"
    content_type: str | None = None  # WARC Content-Type for records without HTTP
    extra: dict = field(default_factory=dict)


def response(n: int, body: bytes | str, *, url: str | None = None, status: str = "200 OK",
             content_type: str | None = "text/html; charset=utf-8",
             headers: list[tuple[str, str]] = ()) -> Rec:
    body = body.encode("utf-8") if isinstance(body, str) else body
    http = ([("Content-Type", content_type)] if content_type else []) + list(headers)
    return Rec("response", url or f"https://example.org/page/{n}", body, n, http, status)


def request(n: int) -> Rec:
    return Rec("request", f"https://example.org/page/{n}", b"", n,
               http=[("Host", "example.org")], status="GET /page HTTP/1.1")


def warcinfo(n: int = 0) -> Rec:
    return Rec("warcinfo", None, b"software: tests\r\nformat: WARC File Format 1.1\r\n", n,
               content_type="application/warc-fields")


def metadata(n: int) -> Rec:
    return Rec("metadata", f"https://example.org/page/{n}", b"fetchTimeMs: 12\r\n", n,
               content_type="application/warc-fields")


def conversion(n: int, text: str) -> Rec:
    return Rec("conversion", f"https://example.org/page/{n}", text.encode("utf-8"), n,
               content_type="text/plain")


def write_warc(path: Path, records: list[Rec], *, gzip: bool = True) -> list[int]:
    """Write `records` (one gzip member each when `gzip`); returns each record's offset."""
    path.parent.mkdir(parents=True, exist_ok=True)
    offsets = []
    with open(path, "wb") as handle:
        writer = WARCWriter(handle, gzip=gzip, warc_version="1.0")
        for rec in records:
            offsets.append(handle.tell())
            headers = {"WARC-Record-ID": f"<{record_id(rec.n)}>", "WARC-Date": DATE,
                       **rec.extra}
            if rec.http is not None:
                http = StatusAndHeaders(rec.status, rec.http, protocol="HTTP/1.1",
                                        is_http_request=rec.kind == "request")
                record = writer.create_warc_record(rec.url, rec.kind,
                                                   payload=io.BytesIO(rec.body),
                                                   http_headers=http,
                                                   warc_headers_dict=headers)
            else:
                record = writer.create_warc_record(rec.url or "", rec.kind,
                                                   payload=io.BytesIO(rec.body),
                                                   warc_content_type=rec.content_type,
                                                   warc_headers_dict=headers)
            writer.write_record(record)
    return offsets


def article(title: str, paragraphs: list[str], *, charset: str | None = None) -> str:
    """An article page with navigation and a footer around the main text."""
    meta = f'<meta charset="{charset}">' if charset else ""
    body = "".join(f"<p>{p}</p>" for p in paragraphs)
    return (f"<!DOCTYPE html><html><head>{meta}<title>{title}</title></head><body>"
            f'<nav><a href="/">Home</a> <a href="/news">News</a></nav>'
            f"<main><article><h1>{title}</h1>{body}</article></main>"
            f"<footer>Contact us</footer></body></html>")
