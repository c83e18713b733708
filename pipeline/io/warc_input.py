"""`format: warc` and `format: wet` - web archives, plain or gzipped per record as Common
Crawl ships them, local or fsspec paths.

warc: `response` records (configurable) with an HTML content type and an accepted HTTP status
become documents: `id` (the WARC-Record-ID), `html` (the decoded HTTP body, bytes), `url`,
`source` (file#offset), `warc_date`, `content_type`, `charset` (resolved from the header,
`<meta>` or detection; see charset.py). `extract` turns them into text.

What does not become a document, and where it shows:
- responses skipped by policy are rejected rows without payload, so the funnel says how many
  and why: `http_status:404`, `content_type:image/png`, `binary_payload`, `too_large:bytes=N`;
- damage is a rejected row at its offset (`corrupt_record:*`, `truncated_gzip`,
  `corrupt_gzip`), and reading resumes at the next record;
- warcinfo, request, metadata and revisit records are not documents and are skipped silently.
An empty file or one that is not a WARC fails its shard with an `InputFileError`.

wet: `conversion` records become `text` documents.

Big files are split into byte ranges of about `shard_bytes` (warc_records.py says how a
range owns its records); a gzip that is one stream for the whole file cannot be split and
stays one shard.
"""

from __future__ import annotations

import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Iterator

import fsspec
import pyarrow as pa
import xxhash
from pydantic import ConfigDict, Field, ValidationError

from pipeline.io import common_crawl
from pipeline.io.charset import resolve_charset
from pipeline.io.common_crawl import CrawlOptions
from pipeline.io.formats import InputFileError, InputFormat, ReadBatch, register, relative_names
from pipeline.io.http_payload import BadHttpPayload, looks_binary, parse_http_response
from pipeline.io.warc_records import GZIP_MAGIC, WARC_MAGIC, Damage, Record, iter_records

MiB = 2**20
_SPLIT_PROBE_BYTES = 8 * MiB  # a first gzip member longer than this: a whole-file gzip
_PROBE_BLOCK = 64 * 1024  # bytes fetched at a time while looking for the first member's end
_PLAN_THREADS = 16  # files sized and probed at once while planning shards
_HTML_SNIFF = (b"<!doctype html", b"<html")


class _CommonOptions(CrawlOptions):
    model_config = ConfigDict(extra="forbid")
    shard_bytes: int = Field(64 * MiB, gt=0, description="split files larger than this")
    max_record_bytes: int = Field(
        32 * MiB, gt=0, description="records with a longer payload are rejected (too_large)")
    batch_bytes: int = Field(32 * MiB, gt=0, description="payload bytes per batch, at most")


class WarcOptions(_CommonOptions):
    record_types: list[str] = Field(["response"], description="WARC-Type values to read")
    content_types: list[str] = Field(["text/html", "application/xhtml+xml"],
                                     description="media types that are documents")
    statuses: list[int] = Field([200], description="HTTP status codes that are documents")


class WetOptions(_CommonOptions):
    pass


class _WebArchiveInput(InputFormat):
    """What warc and wet share: files from `paths`, or a Common Crawl crawl by name."""

    def check_source(self, input_spec):
        problems = common_crawl.keys_problems(input_spec.model_extra or {}, input_spec.paths)
        if problems or (input_spec.model_extra or {}).get("crawl") is not None:
            return problems
        return super().check_source(input_spec)

    def locations(self, input_spec):
        base = (input_spec.model_extra or {}).get("base", common_crawl.DEFAULT_BASE)
        if (input_spec.model_extra or {}).get("crawl") is not None and isinstance(base, str):
            return [("base", base)]
        return super().locations(input_spec)

    def list_files(self, input_spec):
        if (input_spec.model_extra or {}).get("crawl") is None:
            return super().list_files(input_spec)
        try:
            options = self.options(input_spec)
        except ValidationError:
            return []  # check_options names the invalid value
        return common_crawl.crawl_files(options, self.name)

    def plan_shards(self, input_spec, files):
        options = self.options(input_spec)
        names = common_crawl.listed_names(files, options) if options.crawl \
            else relative_names(files)
        return _plan(files, options.shard_bytes, names, common_crawl.storage_options(options))


@register
class WarcInput(_WebArchiveInput):
    name = "warc"
    options_model = WarcOptions

    def columns(self, input_spec, files, wants_html):
        # Only HTML comes out of a WARC: a first stage that needs `text` fails validation
        # with a hint to put `extract` first.
        return ["id", "html", "url", "source", "warc_date", "content_type", "charset"]

    def read(self, input_spec, shard, content, batch_rows) -> Iterator[ReadBatch]:
        options = self.options(input_spec)
        policy = _Policy({t.lower() for t in options.record_types},
                         {m.lower() for m in options.content_types}, set(options.statuses),
                         options.max_record_bytes)
        batch = _Batch("html", batch_rows, options.batch_bytes)
        for item in _records(shard, options):
            if isinstance(item, Damage):
                batch.reject_damage(shard["name"], item)
            elif (item.header("warc-type") or "").lower() in policy.record_types:
                meta = _record_meta(item, shard["name"])
                fields, reason = _html_document(item, policy)
                if reason:
                    batch.reject(meta, reason)
                else:
                    batch.keep(dict(meta, **fields), len(fields["html"]))
            if batch.full():
                yield batch.flush()
        if batch.rows or batch.rejected:
            yield batch.flush()


@dataclass
class _Policy:
    record_types: set[str]
    mimes: set[str]
    statuses: set[int]
    max_bytes: int


def _html_document(record: Record, policy: _Policy) -> tuple[dict | None, str | None]:
    """(html, content_type and charset of the document, None), or (None, why the record is
    not a document)."""
    if record.block is None:
        return None, f"too_large:bytes={record.length}"
    if (record.header("content-type") or "").lower().startswith("application/http"):
        try:
            response = parse_http_response(record.block, policy.max_bytes)
        except BadHttpPayload as bad:
            return None, str(bad)
        if response.status not in policy.statuses:
            return None, f"http_status:{response.status or 'unknown'}"
        if response.too_large:
            return None, f"too_large:bytes>{policy.max_bytes}"
        body, mime, declared = response.body, response.mime, response.charset
    else:  # e.g. a `resource` record: the block is the document itself
        body, declared = record.block, None
        mime = (record.header("content-type") or "").split(";")[0].strip().lower() or None
    mime = mime or _identified_type(record) or _sniff(body)
    if mime not in policy.mimes:
        return None, f"content_type:{mime or 'none'}"
    if looks_binary(body, declared):
        return None, "binary_payload"
    return {"html": body, "content_type": mime,
            "charset": resolve_charset(body, declared)}, None


@register
class WetInput(_WebArchiveInput):
    name = "wet"
    options_model = WetOptions

    def columns(self, input_spec, files, wants_html):
        return ["id", "text", "url", "source", "warc_date"]

    def read(self, input_spec, shard, content, batch_rows) -> Iterator[ReadBatch]:
        options = self.options(input_spec)
        batch = _Batch("text", batch_rows, options.batch_bytes)
        for item in _records(shard, options):
            if isinstance(item, Damage):
                batch.reject_damage(shard["name"], item)
            elif (item.header("warc-type") or "").lower() == "conversion":
                meta = _record_meta(item, shard["name"])
                if item.block is None:
                    batch.reject(meta, f"too_large:bytes={item.length}")
                else:
                    batch.keep(dict(meta, text=item.block.decode("utf-8", errors="replace")),
                               len(item.block))
            if batch.full():
                yield batch.flush()
        if batch.rows or batch.rejected:
            yield batch.flush()


# -- shards -----------------------------------------------------------------------------------
def _plan(files: list[str], shard_bytes: int, names: dict[str, str],
          storage: dict) -> list[dict]:
    def shards_of(path: str) -> list[dict]:
        fs, local = fsspec.core.url_to_fs(path, **storage)
        try:
            size = fs.size(local)
            splittable = size > shard_bytes and _splittable(fs, local, size)
        except OSError:
            size, splittable = 0, False  # unreadable: one shard, whose read reports it
        if not splittable:
            return [{"path": path, "name": names[path], "start": 0, "end": None}]
        return [{"path": path, "name": names[path], "start": start,
                 "end": start + shard_bytes if start + shard_bytes < size else None}
                for start in range(0, size, shard_bytes)]

    # On object storage each file costs a round trip or two (size, first gzip member), so a
    # plan over thousands of a crawl's files asks for several at once; order is kept.
    with ThreadPoolExecutor(_PLAN_THREADS) as pool:
        return [shard for shards in pool.map(shards_of, files) for shard in shards]


def _splittable(fs, path: str, size: int) -> bool:
    """Plain WARCs split anywhere; a gzip only when its first member ends before the file
    does (records are separate members, as in Common Crawl). Reads in small blocks: an
    object store's default block (50 MiB on S3) would fetch far more than the first member."""
    with fs.open(path, "rb", block_size=_PROBE_BLOCK) as handle:
        if not handle.read(2).startswith(GZIP_MAGIC[:2]):
            return True
        handle.seek(0)
        inflater = zlib.decompressobj(zlib.MAX_WBITS | 16)
        read = 0
        while not inflater.eof and read < _SPLIT_PROBE_BYTES:
            chunk = handle.read(_PROBE_BLOCK)
            if not chunk:
                return False
            read += len(chunk)
            try:
                while chunk and not inflater.eof:
                    inflater.decompress(chunk, MiB)
                    chunk = inflater.unconsumed_tail
            except zlib.error:
                return False
        return inflater.eof and read - len(inflater.unused_data) < size


# -- reading ----------------------------------------------------------------------------------
def _records(shard: dict, options: _CommonOptions) -> Iterator[Record | Damage]:
    path = shard["path"]
    try:
        handle = fsspec.open(path, "rb", **common_crawl.storage_options(options)).open()
    except FileNotFoundError:
        raise InputFileError(path, "file not found") from None
    with handle:
        compressed = _check_is_warc(handle, path)
        yield from iter_records(handle, compressed, shard["start"], shard["end"],
                                options.max_record_bytes)


def _check_is_warc(handle, path: str) -> bool:
    """Whether the file is gzipped; raises InputFileError for an empty or non-WARC file."""
    head = handle.read(64 * 1024)
    if not head:
        raise InputFileError(path, "file is empty (0 bytes); remove it or replace it with "
                             "a complete download")
    compressed = head.startswith(GZIP_MAGIC[:2])
    start = head
    if compressed:
        try:
            start = zlib.decompressobj(zlib.MAX_WBITS | 16).decompress(head, 64)
        except zlib.error:
            raise InputFileError(path, "not a WARC file: gzip data that does not decompress",
                                 0) from None
    if not start.lstrip(b"\r\n").startswith(WARC_MAGIC):
        raise InputFileError(path, f"not a WARC file: it starts with {start[:24]!r}; expected "
                             "'WARC/1.0' (plain, or gzip per record)", 0)
    return compressed


def _record_meta(record: Record, name: str) -> dict:
    source = f"{name}#{record.locator}"
    record_id = (record.header("warc-record-id") or "").strip().strip("<>")
    return {"id": record_id or xxhash.xxh3_64_hexdigest(source.encode()),
            "url": (record.header("warc-target-uri") or "").strip().strip("<>") or None,
            "source": source, "warc_date": record.header("warc-date")}


def _identified_type(record: Record) -> str | None:
    value = record.header("warc-identified-payload-type")
    return value.split(";")[0].strip().lower() if value else None


def _sniff(body: bytes) -> str | None:
    return "text/html" if body[:1024].lstrip().lower().startswith(_HTML_SNIFF) else None


class _Batch:
    """Kept rows and rejected rows of one batch; full by rows or by payload bytes."""

    def __init__(self, content: str, max_rows: int, max_bytes: int):
        self.content, self.max_rows, self.max_bytes = content, max_rows, max_bytes
        self.rows: list[dict] = []
        self.rejected: list[dict] = []
        self.bytes = 0

    def keep(self, row: dict, size: int) -> None:
        self.rows.append(row)
        self.bytes += size

    def reject(self, meta: dict, reason: str, preview: str | None = None) -> None:
        self.rejected.append({"id": meta["id"], "url": meta["url"], "source": meta["source"],
                              "reason": reason, "text": preview})

    def reject_damage(self, name: str, damage: Damage) -> None:
        source = f"{name}#{damage.locator}"
        self.reject({"id": xxhash.xxh3_64_hexdigest(source.encode()), "url": None,
                     "source": source}, damage.reason,
                    damage.preview.decode("utf-8", errors="replace") or None)

    def full(self) -> bool:
        return len(self.rows) + len(self.rejected) >= self.max_rows or \
            self.bytes >= self.max_bytes

    def flush(self) -> ReadBatch:
        table = pa.Table.from_pylist(self.rows, schema=_SCHEMAS[self.content])
        rejected = pa.Table.from_pylist(self.rejected, schema=_REJECTED) if self.rejected \
            else None
        self.rows, self.rejected, self.bytes = [], [], 0
        return ReadBatch(table, rejected)


_REJECTED = pa.schema([("id", pa.string()), ("url", pa.string()), ("source", pa.string()),
                       ("reason", pa.string()), ("text", pa.string())])
_SCHEMAS = {
    "html": pa.schema([("id", pa.string()), ("html", pa.binary()), ("url", pa.string()),
                       ("source", pa.string()), ("warc_date", pa.string()),
                       ("content_type", pa.string()), ("charset", pa.string())]),
    "text": pa.schema([("id", pa.string()), ("text", pa.string()), ("url", pa.string()),
                       ("source", pa.string()), ("warc_date", pa.string())]),
}
