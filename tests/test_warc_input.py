"""WARC and WET input: which records become documents, rejected rows for the rest, damage
that costs only itself, and byte-range shards that read every record exactly once."""

from __future__ import annotations

import gzip
import zlib
from collections import Counter
from pathlib import Path

import pytest

from pipeline.io import formats
from pipeline.io.formats import InputFileError
from pipeline.spec import InputSpec, SpecError, parse_spec
from tests.conftest import make_text
from tests.warc_files import (article, conversion, metadata, record_id, request, response,
                              warcinfo, write_warc)


def read_all(path: Path | str, fmt: str = "warc", **options) -> tuple[list[dict], list[dict], int]:
    """(kept rows, rejected rows, shard count) over every shard of one file."""
    spec = InputSpec(format=fmt, paths=[str(path)], **options)
    reader = formats.get(fmt)
    shards = reader.plan_shards(spec, [str(path)])
    kept, rejected = [], []
    for shard in shards:
        for batch in reader.read(spec, shard, "html", 64):
            kept += batch.table.to_pylist()
            rejected += batch.rejected.to_pylist() if batch.rejected is not None else []
    return kept, rejected, len(shards)


def page(n: int, words: int = 80) -> str:
    return article(f"Page {n}", [make_text(n, words)])


# -- which records become documents -----------------------------------------------------------
def test_html_200_responses_are_documents_and_skipped_responses_are_counted(tmp_path):
    path = tmp_path / "crawl.warc.gz"
    offsets = write_warc(path, [
        warcinfo(),
        request(1), response(1, page(1)), metadata(1),
        response(2, "<html><body>gone</body></html>", status="404 Not Found"),
        response(3, b"\x89PNG\r\n\x1a\n" + bytes(range(256)), content_type="image/png"),
        response(4, "", status="301 Moved Permanently",
                 headers=[("Location", "https://example.org/new")]),
        response(5, page(5), content_type="application/xhtml+xml"),
    ])
    kept, rejected, _ = read_all(path)

    assert [row["id"] for row in kept] == [record_id(1), record_id(5)]
    first = kept[0]
    assert first["url"] == "https://example.org/page/1"
    assert first["warc_date"] == "2024-05-18T01:58:10Z"
    assert first["source"] == f"crawl.warc.gz#{offsets[2]}"
    assert first["content_type"] == "text/html" and first["charset"] == "utf-8"
    assert isinstance(first["html"], bytes) and b"<h1>Page 1</h1>" in first["html"]
    # skipped responses are rejected rows with a reason and no payload;
    # warcinfo, request and metadata records are not documents at all
    assert {(r["id"], r["reason"]) for r in rejected} == {
        (record_id(2), "http_status:404"), (record_id(3), "content_type:image/png"),
        (record_id(4), "http_status:301")}
    assert all(r["text"] is None for r in rejected)


def test_status_and_content_type_policy_is_configurable(tmp_path):
    path = tmp_path / "crawl.warc"
    write_warc(path, [response(1, page(1)), response(2, "plain words", content_type="text/plain"),
                      response(3, page(3), status="404 Not Found")], gzip=False)
    kept, rejected, _ = read_all(path, content_types=["text/html", "text/plain"],
                                 statuses=[200, 404])
    assert [row["id"] for row in kept] == [record_id(1), record_id(2), record_id(3)]
    assert rejected == []


def test_binary_payload_declared_as_html_is_rejected(tmp_path):
    path = tmp_path / "crawl.warc.gz"
    write_warc(path, [response(1, b"GIF89a" + bytes(300)),
                      response(2, b"<html>" + b"\x00" * 50 + b"</html>"),
                      response(3, page(3))])
    kept, rejected, _ = read_all(path)
    assert [row["id"] for row in kept] == [record_id(3)]
    assert [r["reason"] for r in rejected] == ["binary_payload", "binary_payload"]


def test_response_without_http_status_line_is_a_corrupt_record(tmp_path):
    path = tmp_path / "crawl.warc"
    write_warc(path, [response(1, page(1)), response(2, page(2))], gzip=False)
    raw = path.read_bytes()
    path.write_bytes(raw.replace(b"HTTP/1.1 200 OK", b"<html>ok here..", 1))
    kept, rejected, _ = read_all(path)
    assert [row["id"] for row in kept] == [record_id(2)]
    assert [(r["id"], r["reason"]) for r in rejected] == [
        (record_id(1), "corrupt_record:no_http_header")]


def test_chunked_gzip_http_body_is_decoded(tmp_path):
    html = page(1).encode()
    body = zlib.compress(html, wbits=31)
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(part), part)
                       for part in (body[:100], body[100:])) + b"0\r\n\r\n"
    path = tmp_path / "crawl.warc.gz"
    write_warc(path, [response(1, chunked, headers=[("Transfer-Encoding", "chunked"),
                                                    ("Content-Encoding", "gzip")])])
    kept, _, _ = read_all(path)
    assert kept[0]["html"] == html


def test_charset_column_comes_from_header_meta_or_detection(tmp_path):
    russian = "Это длинный текст на русском языке о погоде, реках и городах страны. " * 8
    path = tmp_path / "crawl.warc.gz"
    write_warc(path, [
        response(1, f"<html><body><p>{russian}</p></body></html>".encode("koi8-r"),
                 content_type="text/html; charset=KOI8-R"),
        response(2, f'<html><head><meta charset="windows-1251"></head><body>{russian}'
                    f"</body></html>".encode("cp1251"), content_type="text/html"),
        response(3, f"<html><body>{russian}</body></html>".encode("cp1251"),
                 content_type="text/html"),
        response(4, "<html><body>Grüße aus Köln</body></html>".encode("utf-8"),
                 content_type="text/html; charset=iso-8859-1"),
    ])
    kept, _, _ = read_all(path)
    assert [row["charset"] for row in kept] == ["koi8-r", "cp1251", "cp1251", "utf-8"]


def test_wet_conversion_records_are_text_documents(tmp_path):
    path = tmp_path / "crawl.warc.wet.gz"
    write_warc(path, [warcinfo(), conversion(1, "Plain text of page one.\nSecond line."),
                      conversion(2, "Zweite Seite mit Umlauten: äöü")])
    kept, rejected, _ = read_all(path, fmt="wet")
    assert [(r["id"], r["text"]) for r in kept] == [
        (record_id(1), "Plain text of page one.\nSecond line."),
        (record_id(2), "Zweite Seite mit Umlauten: äöü")]
    assert rejected == [] and "html" not in kept[0]


# -- bad input --------------------------------------------------------------------------------
def test_truncated_last_gzip_member_is_a_rejected_row(tmp_path):
    path = tmp_path / "crawl.warc.gz"
    offsets = write_warc(path, [response(n, page(n)) for n in range(1, 5)])
    data = path.read_bytes()
    path.write_bytes(data[:offsets[3] + (len(data) - offsets[3]) // 2])
    kept, rejected, _ = read_all(path)
    assert [row["id"] for row in kept] == [record_id(n) for n in range(1, 4)]
    assert [(r["reason"], r["source"]) for r in rejected] == [
        ("truncated_gzip", f"crawl.warc.gz#{offsets[3]}")]


def test_truncated_member_in_the_middle_costs_only_that_record(tmp_path):
    path = tmp_path / "crawl.warc.gz"
    offsets = write_warc(path, [response(n, page(n)) for n in range(1, 5)])
    data = path.read_bytes()
    cut = offsets[1] + (offsets[2] - offsets[1]) // 2  # second member loses its second half
    path.write_bytes(data[:cut] + data[offsets[2]:])
    kept, rejected, _ = read_all(path)
    assert [row["id"] for row in kept] == [record_id(1), record_id(3), record_id(4)]
    assert len(rejected) == 1 and rejected[0]["source"] == f"crawl.warc.gz#{offsets[1]}"
    assert rejected[0]["reason"] in ("corrupt_gzip", "truncated_gzip")


def test_corrupt_record_header_resyncs_to_the_next_record(tmp_path):
    for compressed in (False, True):
        path = tmp_path / ("crawl.warc.gz" if compressed else "crawl.warc")
        records = [response(n, page(n)) for n in range(1, 5)]
        records[1].extra = {"X-Marker": "damage-here"}
        records[2].extra = {"X-Marker": "length-here"}
        write_warc(path, records, gzip=False)
        raw = path.read_bytes()
        # a record whose first line is not a WARC version line
        start = raw.rindex(b"WARC/1.0", 0, raw.index(b"X-Marker: damage-here"))
        raw = raw[:start] + b"WARX/1.0" + raw[start + 8:]
        # a Content-Length that is not a number
        second = raw.index(b"X-Marker: length-here")
        length_at = raw.index(b"Content-Length: ", second)
        raw = raw[:length_at] + b"Content-Length: 12x4" + raw[length_at + 20:]
        if compressed:  # gzip each record separately, like Common Crawl
            starts = [i for i in range(len(raw)) if raw.startswith(b"WARC/1.0\r\n", i)
                      or raw.startswith(b"WARX/1.0\r\n", i)]
            raw = b"".join(gzip.compress(raw[a:b], mtime=0)
                           for a, b in zip(starts, starts[1:] + [len(raw)]))
        path.write_bytes(raw)
        kept, rejected, _ = read_all(path)
        assert [row["id"] for row in kept] == [record_id(1), record_id(4)], compressed
        assert sorted(r["reason"] for r in rejected) == [
            "corrupt_record:bad_content_length", "corrupt_record:not_a_warc_header"]
        assert all("#" in r["source"] and r["text"] for r in rejected)  # offset and preview


def test_flipped_bytes_inside_a_gzip_member_cost_only_that_record(tmp_path):
    path = tmp_path / "crawl.warc.gz"
    offsets = write_warc(path, [response(n, page(n, 300)) for n in range(1, 5)])
    data = bytearray(path.read_bytes())
    middle = (offsets[1] + offsets[2]) // 2
    data[middle:middle + 40] = bytes(b ^ 0x5A for b in data[middle:middle + 40])
    path.write_bytes(bytes(data))
    kept, rejected, _ = read_all(path)
    assert [row["id"] for row in kept] == [record_id(1), record_id(3), record_id(4)]
    assert [r["source"] for r in rejected] == [f"crawl.warc.gz#{offsets[1]}"]


def test_empty_and_non_warc_files_are_file_errors_with_their_name(tmp_path):
    empty = tmp_path / "empty.warc.gz"
    empty.write_bytes(b"")
    other = tmp_path / "notes.warc"
    other.write_text("just some notes\n")
    gzipped_text = tmp_path / "notes.warc.gz"
    gzipped_text.write_bytes(gzip.compress(b"filedesc://an old ARC file\n"))
    for path, message in ((empty, "empty"), (other, "not a WARC"), (gzipped_text, "not a WARC")):
        with pytest.raises(InputFileError, match=message) as error:
            read_all(path)
        assert str(path) in str(error.value)


def test_oversized_record_is_rejected_without_reading_it(tmp_path):
    path = tmp_path / "crawl.warc.gz"
    write_warc(path, [response(1, page(1, 3000)), response(2, page(2))])
    kept, rejected, _ = read_all(path, max_record_bytes=4000)
    assert [row["id"] for row in kept] == [record_id(2)]
    assert rejected[0]["id"] == record_id(1) and rejected[0]["reason"].startswith("too_large")


# -- shards -----------------------------------------------------------------------------------
@pytest.mark.parametrize("compressed", [True, False])
def test_big_warc_splits_into_shards_that_read_every_record_once(tmp_path, compressed):
    records = []
    for n in range(1, 241):
        records.append(request(n))
        status = "404 Not Found" if n % 17 == 0 else "200 OK"
        records.append(response(n, page(n, 40 + n % 60), status=status))
    path = tmp_path / ("big.warc.gz" if compressed else "big.warc")
    write_warc(path, records, gzip=compressed)
    kept, rejected, shards = read_all(path, shard_bytes=path.stat().st_size // 9)

    assert shards >= 9
    seen = Counter(row["id"] for row in kept) + Counter(row["id"] for row in rejected)
    assert seen == Counter(record_id(n) for n in range(1, 241))
    assert len(rejected) == 240 // 17 and all(r["reason"] == "http_status:404" for r in rejected)
    assert [row["id"] for row in kept] == [record_id(n) for n in range(1, 241) if n % 17]


def test_whole_file_gzip_is_one_shard_and_still_read(tmp_path):
    plain = tmp_path / "plain.warc"
    write_warc(plain, [response(n, page(n)) for n in range(1, 6)], gzip=False)
    path = tmp_path / "whole.warc.gz"
    path.write_bytes(gzip.compress(plain.read_bytes(), mtime=0))
    kept, _, shards = read_all(path, shard_bytes=500)
    assert shards == 1
    assert [row["id"] for row in kept] == [record_id(n) for n in range(1, 6)]
    assert kept[0]["source"] == "whole.warc.gz#0" and kept[1]["source"].startswith(
        "whole.warc.gz#0+")


# -- the spec sees the reader's columns ------------------------------------------------------
def test_spec_lets_extract_come_first_and_asks_for_it_otherwise(tmp_path):
    path = tmp_path / "crawl.warc.gz"
    write_warc(path, [response(1, page(1))])
    spec = parse_spec(f"""
name: web
input: {{format: warc, paths: ["{path}"]}}
output: {{path: "{tmp_path / 'out'}"}}
stages:
  - extract: {{}}
  - length_filter: {{min_words: 5}}
""")
    assert spec.input_columns == ["id", "html", "url", "source", "warc_date", "content_type",
                                  "charset"]
    assert "html" not in spec.columns_after[0] and "text" in spec.columns_after[0]
    with pytest.raises(SpecError, match="add 'extract' before it"):
        parse_spec(f"""
name: web
input: {{format: warc, paths: ["{path}"]}}
output: {{path: "{tmp_path / 'out'}"}}
stages:
  - length_filter: {{}}
""")


@pytest.mark.parametrize("compressed", [True, False])
def test_records_do_not_depend_on_where_read_buffers_end(tmp_path, monkeypatch, compressed):
    from pipeline.io import warc_records

    path = tmp_path / ("crawl.warc.gz" if compressed else "crawl.warc")
    offsets = write_warc(path, [warcinfo()] + [response(n, page(n, 30 + 7 * n))
                                               for n in range(1, 13)], gzip=compressed)
    data = bytearray(path.read_bytes())
    at = offsets[5] + (40 if compressed else 0)  # inside the deflate data / the WARC line
    data[at:at + 8] = b"\x00" * 8
    path.write_bytes(bytes(data))
    expected = read_all(path, shard_bytes=len(data) // 3)
    # tiny buffers of several sizes put a buffer end at every place in magic numbers,
    # headers and blocks
    for size in range(5, 12):
        for name in ("_READ_CHUNK", "_GZIP_READ_CHUNK", "_INFLATE_CHUNK"):
            monkeypatch.setattr(warc_records, name, size)
        assert read_all(path, shard_bytes=len(data) // 3) == expected, size
    kept, rejected, _ = expected
    assert len(kept) == 11 and len(rejected) == 1


def test_fsspec_urls_are_read_and_split_like_local_files(tmp_path):
    import fsspec

    local = tmp_path / "crawl.warc.gz"
    write_warc(local, [response(n, page(n)) for n in range(1, 21)])
    url = "memory://bucket/crawl.warc.gz"
    with fsspec.open(url, "wb") as handle:
        handle.write(local.read_bytes())
    size = local.stat().st_size
    remote = read_all(url, shard_bytes=size // 4)
    assert remote == read_all(local, shard_bytes=size // 4)
    assert remote[2] >= 4 and len(remote[0]) == 20
