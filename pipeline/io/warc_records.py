"""Record framing for WARC files: where each record starts, its headers and its block.

Why not warcio's or FastWARC's ArchiveIterator: a shard starts at a byte offset in the middle
of a file, every record needs its exact offset (for `source` and shard ownership), and a
corrupt record must cost only itself, while those iterators stop at the first error. Header
lines are still parsed by warcio; this module only finds records and resyncs after damage.

Offsets. In a `.warc.gz` each record is normally its own gzip member (as Common Crawl ships
them) and a record's offset is its member's offset in the compressed file, the number CC's
index gives. A record that shares a member with the one before it (a whole-file gzip) is
located as `member+inner`, `inner` counting decompressed bytes. Records may also span members
(some writers cut long records into several); the gzip stream is read as one, and only a
record's start decides its offset. In a plain `.warc` the offset is the record's byte offset.

Shard ranges. A shard [start, end) owns the records whose (member) offset lies in it. Its
reader scans forward from `start` to the first record start (a gzip member that decompresses
to `WARC/`; in a plain file a `WARC/1.x` line whose Content-Length leads to the next record),
follows the chain of records and stops at the first one at or past `end`. Since a record
belongs to the range holding its offset, neighbouring shards never both read it.

Damage. After a record that cannot be read, reading resumes at the next gzip member that
holds a WARC record, or in a plain file at the next `WARC/1.x` line whose header parses (no
Content-Length check here, so that each damaged record still gets its own rejected row). In
a gzip that is one stream for the whole file there is no later member: damage ends the file.
"""

from __future__ import annotations

import io
import zlib
from dataclasses import dataclass
from typing import BinaryIO, Iterator

from warcio.statusandheaders import StatusAndHeaders, StatusAndHeadersParser

GZIP_MAGIC = b"\x1f\x8b\x08"
WARC_MAGIC = b"WARC/"
_WARC_PARSER = StatusAndHeadersParser(["WARC/1.0", "WARC/1.1", "WARC/0.17", "WARC/0.18"],
                                      verify=True)
_READ_CHUNK = 1 << 20
# Compressed bytes fed to zlib at a time: at the end of each member zlib copies what is left
# of the chunk, so a chunk much bigger than a member (~10 KB in Common Crawl) costs copying.
_GZIP_READ_CHUNK = 64 * 1024
_INFLATE_CHUNK = 1 << 20        # decompressed bytes per step: bounds a gzip bomb's footprint
_MAX_HEADER_BYTES = 64 * 1024   # a WARC header block longer than this is damage
_PREVIEW_BYTES = 300
_TRAILER_SLACK = 16            # stray newlines tolerated after a record
_PROBE_BYTES = 64 * 1024        # compressed bytes tried when testing a gzip member candidate


@dataclass
class Record:
    """One framed record. `block` is None when it was longer than the caller's limit."""

    offset: int
    inner: int
    headers: StatusAndHeaders
    length: int
    block: bytes | None

    @property
    def locator(self) -> str:
        return locator(self.offset, self.inner)

    def header(self, name: str) -> str | None:
        return self.headers.get_header(name)


@dataclass
class Damage:
    """Bytes at `offset` that are not a readable record; reading resumes after them."""

    offset: int
    inner: int
    reason: str
    preview: bytes = b""

    @property
    def locator(self) -> str:
        return locator(self.offset, self.inner)


def locator(offset: int, inner: int) -> str:
    return f"{offset}+{inner}" if inner else str(offset)


class _Broken(Exception):
    """Damage found while inflating; `offset` is the gzip member that is damaged."""

    def __init__(self, reason: str, offset: int | None = None):
        super().__init__(reason)
        self.reason, self.offset = reason, offset


# -- byte sources: the plain file, or the gzip members inflated one after the other --------
class _Source:
    """A buffer over (decompressed) bytes with `fill`, `find`, `take` and `skip`.
    `consumed` counts the bytes taken since the source started."""

    def __init__(self):
        self.buf = bytearray()
        self.pos = 0
        self.consumed = 0

    def _more(self, cross: bool = True) -> bytes:  # pragma: no cover - abstract
        raise NotImplementedError

    def position(self) -> tuple[int, int]:  # pragma: no cover - abstract
        """(offset, inner) of the next byte, as a record starting there is located."""
        raise NotImplementedError

    def available(self) -> int:
        return len(self.buf) - self.pos

    def fill(self, n: int, cross: bool = True) -> bool:
        while self.available() < n:
            more = self._more(cross)
            if not more:
                return False
            if self.pos > _READ_CHUNK:
                del self.buf[:self.pos]
                self.pos = 0
            self.buf += more
        return True

    def find(self, needle: bytes, limit: int) -> int:
        """Index of `needle` within the next `limit` bytes, or -1."""
        searched = 0
        while True:
            i = self.buf.find(needle, self.pos + max(0, searched - len(needle)),
                              self.pos + limit)
            if i >= 0:
                return i - self.pos
            searched = self.available()
            if searched >= limit or not self.fill(searched + 1):
                return -1

    def take(self, n: int) -> bytes:
        self.fill(n)
        data = bytes(self.buf[self.pos:self.pos + n])
        self.pos += len(data)
        self.consumed += len(data)
        return data

    def skip(self, n: int) -> int:
        skipped = 0
        while skipped < n:
            step = len(self.take(min(n - skipped, _READ_CHUNK)))
            if not step:
                break
            skipped += step
        return skipped

    def skip_newlines(self, most: int | None = None) -> None:
        taken = 0
        while (most is None or taken < most) and self.fill(1) and self.buf[self.pos] in b"\r\n":
            self.pos += 1
            self.consumed += 1
            taken += 1

    def peek(self, n: int) -> bytes:
        self.fill(n)
        return bytes(self.buf[self.pos:self.pos + n])


class _PlainSource(_Source):
    def __init__(self, handle: BinaryIO, offset: int):
        super().__init__()
        self.handle, self.start = handle, offset
        handle.seek(offset)

    def _more(self, cross: bool = True) -> bytes:
        return self.handle.read(_READ_CHUNK)

    def position(self) -> tuple[int, int]:
        return self.start + self.consumed, 0


class _GzipSource(_Source):
    """Inflates gzip members one after the other and remembers where each began, so that
    any position maps to (member offset, bytes into the member)."""

    def __init__(self, handle: BinaryIO, offset: int):
        super().__init__()
        self.handle = handle
        handle.seek(offset)
        self.pending, self.pending_offset = b"", offset
        self.inflater = None
        self.member_offset = offset           # the member being inflated
        self.members: list[tuple[int, int]] = []  # (stream position it starts at, offset)
        self.produced = 0                     # decompressed bytes appended so far
        self.failure: _Broken | None = None

    def position(self) -> tuple[int, int]:
        here = self.consumed
        while len(self.members) > 1 and self.members[1][0] <= here:
            self.members.pop(0)
        if not self.members or self.members[0][0] > here:
            self.fill(1)  # the next member has not been opened yet
            while len(self.members) > 1 and self.members[1][0] <= here:
                self.members.pop(0)
        if not self.members:
            return self.pending_offset, 0
        start, offset = self.members[0]
        return offset, here - start

    def member_done(self) -> bool:
        """Inflate the current member to its end (checking its CRC) unless more of its data
        is still waiting; never opens the next member."""
        return not self.fill(1, cross=False)

    def _more(self, cross: bool = True) -> bytes:
        if self.failure is not None:
            raise self.failure
        try:
            return self._inflate(cross)
        except _Broken as broken:
            self.failure = broken  # an inflater that failed once stays failed
            raise

    def _inflate(self, cross: bool) -> bytes:
        while True:
            if self.inflater is None or self.inflater.eof:
                if not cross or not self._open_member():
                    return b""
            if not self.pending:
                self.pending = self.handle.read(_GZIP_READ_CHUNK)
                if not self.pending:
                    raise _Broken("truncated_gzip", self.member_offset)
            data = self.pending
            try:
                out = self.inflater.decompress(data, _INFLATE_CHUNK)
            except zlib.error:
                raise _Broken("corrupt_gzip", self.member_offset) from None
            rest = self.inflater.unused_data if self.inflater.eof else \
                self.inflater.unconsumed_tail
            self.pending_offset += len(data) - len(rest)
            self.pending = rest
            if out:
                self.produced += len(out)
                return out

    def _open_member(self) -> bool:
        if len(self.pending) < len(GZIP_MAGIC):  # a chunk may end inside the magic bytes
            self.pending += self.handle.read(_GZIP_READ_CHUNK)
        if not self.pending:
            return False
        self.member_offset = self.pending_offset
        if not self.pending.startswith(GZIP_MAGIC[:2]):
            raise _Broken("corrupt_gzip", self.member_offset)
        self.inflater = zlib.decompressobj(zlib.MAX_WBITS | 16)
        self.members.append((self.produced, self.member_offset))
        return True


# -- finding record starts --------------------------------------------------------------------
def is_member_start(handle: BinaryIO, offset: int) -> bool:
    """Whether a gzip member starts at `offset` and its content starts like a WARC record."""
    handle.seek(offset)
    data = handle.read(_PROBE_BYTES)
    if not data.startswith(GZIP_MAGIC):
        return False
    try:
        head = zlib.decompressobj(zlib.MAX_WBITS | 16).decompress(data, 16)
    except zlib.error:
        return False
    return head.lstrip(b"\r\n").startswith(WARC_MAGIC)


def find_member_start(handle: BinaryIO, offset: int, end: int | None) -> int | None:
    """First gzip member at or after `offset` (and before `end`) holding a WARC record."""
    return _scan(handle, offset, end, GZIP_MAGIC, lambda at: is_member_start(handle, at))


def find_plain_record_start(handle: BinaryIO, offset: int, end: int | None,
                            strict: bool = True) -> int | None:
    """First `WARC/1.x` header at or after `offset` (and before `end`) that starts a line.
    `strict` (where a shard begins): its Content-Length must also end where the next record
    (or the file) begins, so that text about WARC inside a payload is not taken for a record.
    Not strict (resync after damage): any header block that parses, so that each damaged
    record still gets its own rejected row."""
    def valid(at: int) -> bool:
        if at > 0:
            handle.seek(at - 1)
            if handle.read(1) != b"\n":
                return False
        return _chains(handle, at) if strict else _parses(handle, at)
    return _scan(handle, offset, end, WARC_MAGIC, valid)


def _scan(handle: BinaryIO, offset: int, end: int | None, needle: bytes, valid) -> int | None:
    position = offset
    while end is None or position < end:
        handle.seek(position)
        window = handle.read(_READ_CHUNK)
        if len(window) < len(needle):
            return None
        i = window.find(needle)
        while i >= 0:
            at = position + i
            if end is not None and at >= end:
                return None
            if valid(at):
                return at
            i = window.find(needle, i + 1)
        position += len(window) - len(needle) + 1
    return None


def _header_at(handle: BinaryIO, at: int) -> tuple[StatusAndHeaders, int] | None:
    """The WARC header block at `at` and its length, if one parses there."""
    handle.seek(at)
    head = handle.read(_MAX_HEADER_BYTES)
    cut = head.find(b"\r\n\r\n")
    if cut < 0:
        return None
    try:
        return _WARC_PARSER.parse(io.BytesIO(head[:cut + 4])), cut + 4
    except Exception:
        return None


def _parses(handle: BinaryIO, at: int) -> bool:
    return _header_at(handle, at) is not None


def _chains(handle: BinaryIO, at: int) -> bool:
    found = _header_at(handle, at)
    if found is None:
        return False
    try:
        length = int(found[0].get_header("content-length") or "")
    except ValueError:
        return False
    handle.seek(at + found[1] + length)
    return _closes_record(handle.read(_TRAILER_SLACK + len(WARC_MAGIC)))


def _closes_record(after: bytes) -> bool:
    """Whether the bytes after a record's block end it: the blank lines the standard asks
    for, or (as some writers produce) any number of newlines followed by the next record
    or the end of the file."""
    if after.startswith(b"\r\n\r\n"):
        return True
    after = after.lstrip(b"\r\n")
    return not after or after.startswith(WARC_MAGIC)


# -- reading ----------------------------------------------------------------------------------
def iter_records(handle: BinaryIO, compressed: bool, start: int, end: int | None,
                 max_block_bytes: int) -> Iterator[Record | Damage]:
    """Records (and damage) whose offset lies in [start, end), in file order."""
    find = find_member_start if compressed else find_plain_record_start
    source_class = _GzipSource if compressed else _PlainSource
    at = start if start == 0 else find(handle, start, end)
    while at is not None:
        source = source_class(handle, at)
        damage = None
        for item in _records_from(source, end, max_block_bytes, compressed):
            yield item
            damage = item if isinstance(item, Damage) else None
        if damage is None:
            return
        # resync after the damaged member (gzip) or the damaged record's first byte
        at = find_member_start(handle, damage.offset + 1, end) if compressed else \
            find_plain_record_start(handle, damage.offset + 1, end, strict=False)


def _records_from(source: _Source, end: int | None, max_block_bytes: int,
                  compressed: bool) -> Iterator[Record | Damage]:
    while True:
        try:
            source.skip_newlines()
            if not source.fill(1):
                return
            offset, inner = source.position()
        except _Broken as broken:
            yield Damage(broken.offset, 0, broken.reason)
            return
        if end is not None and offset >= end:
            return
        item = _next_record(source, offset, inner, max_block_bytes, compressed)
        yield item
        if isinstance(item, Damage):
            return


def _next_record(source: _Source, offset: int, inner: int, max_block_bytes: int,
                 compressed: bool) -> Record | Damage:
    """The record that starts at the source's position."""
    try:
        cut = source.find(b"\r\n\r\n", _MAX_HEADER_BYTES)
        if cut < 0:
            return Damage(offset, inner, "corrupt_record:no_header_end",
                          source.peek(_PREVIEW_BYTES))
        head = source.take(cut + 4)
        if not head.startswith(WARC_MAGIC):
            return Damage(offset, inner, "corrupt_record:not_a_warc_header",
                          head[:_PREVIEW_BYTES])
        try:
            headers = _WARC_PARSER.parse(io.BytesIO(head))
        except Exception:
            return Damage(offset, inner, "corrupt_record:bad_header", head[:_PREVIEW_BYTES])
        try:
            length = int(headers.get_header("content-length") or "")
            if length < 0:
                raise ValueError
        except ValueError:
            return Damage(offset, inner, "corrupt_record:bad_content_length",
                          head[:_PREVIEW_BYTES])
        if length > max_block_bytes:
            got, block = source.skip(length), None
        else:
            block = source.take(length)
            got = len(block)
        if got < length:
            return Damage(offset, inner, "truncated_record", head[:_PREVIEW_BYTES])
        if compressed:  # a record counts only once the member it ends in passed its CRC
            source.member_done()
        if not _followed_by_next_record(source):
            return Damage(offset, inner, "corrupt_record:bad_content_length",
                          head[:_PREVIEW_BYTES])
        return Record(offset, inner, headers, length, block)
    except _Broken as broken:
        # damage while inflating: report the record, resync after the damaged member
        where = broken.offset if broken.offset is not None else offset
        return Damage(where, inner if where == offset else 0, broken.reason)


def _followed_by_next_record(source: _Source) -> bool:
    """Consume the blank lines after a record; False if they are not there (the record's
    Content-Length is wrong). Damage in the *next* gzip member is not this record's: the
    source keeps it and reports it when the next record is read."""
    try:
        if not _closes_record(source.peek(_TRAILER_SLACK + len(WARC_MAGIC))):
            return False
        source.skip_newlines(_TRAILER_SLACK)
    except _Broken:
        pass
    return True
