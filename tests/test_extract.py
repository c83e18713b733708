"""`extract`: decoding that never fails, what each engine returns, rejected reasons, the
per-page CPU limit inside a Ray worker, and accounting through the real runner."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pydantic import ValidationError

from pipeline.runner import run_job
from pipeline.spec import load_spec
from stages._extract.hybrid import reads_like_article
from stages.extract import Extract, ExtractConfig
from tests.conftest import assert_accounting, make_text, write_spec
from tests.warc_files import article, record_id, response, write_warc

GERMAN = ("Die Größe der Brücke über den Fluss überraschte die Besucher, und die Bäckerei "
          "am Ufer verkaufte süßes Gebäck an alle, die vorbeikamen. ") * 6
RUSSIAN = ("Большой мост через реку удивил посетителей, а пекарня на берегу продавала "
           "сладкую выпечку всем прохожим в тот солнечный день. ") * 6


def run(pages: list, charsets: list | None = None, **config) -> tuple[list[dict], list]:
    stage = Extract(ExtractConfig(**config))
    stage.setup()
    columns = {"id": [str(i) for i in range(len(pages))],
               "html": pa.array(pages, pa.binary() if isinstance(pages[0], bytes)
                                else pa.string()),
               "url": [f"https://example.org/{i}" for i in range(len(pages))]}
    if charsets is not None:
        columns["charset"] = pa.array(charsets, pa.string())
    out = stage.process(pa.table(columns))
    # no reasons: every page kept
    reasons = out.reasons.to_pylist() if out.reasons is not None else [None] * len(pages)
    return out.table.to_pylist(), reasons


def german_page(charset_meta: str | None = None) -> str:
    return article("Brücke", [GERMAN, GERMAN[:200]], charset=charset_meta)


# -- decoding ---------------------------------------------------------------------------------
def test_declared_latin1_page_is_decoded():
    rows, reasons = run([german_page().encode("latin-1")], ["ISO-8859-1"])
    assert reasons == [None]
    assert "Die Größe der Brücke" in rows[0]["text"]


def test_wrong_declaration_is_overruled_by_the_bytes():
    # declared UTF-8, served windows-1252: the bytes are not UTF-8, detection decides
    rows, reasons = run([german_page().encode("cp1252"), german_page().encode("utf-8")],
                        ["utf-8", "iso-8859-1"])
    assert reasons == [None, None]
    # ... and declared latin-1 but served UTF-8: valid UTF-8 wins over the declaration
    assert all("Die Größe der Brücke" in row["text"] for row in rows)


def test_undeclared_charset_is_detected():
    page = article("Мост", [RUSSIAN]).encode("cp1251")
    rows, reasons = run([page])
    assert reasons == [None] and "Большой мост через реку" in rows[0]["text"]
    meta_declared = article("Мост", [RUSSIAN], charset="koi8-r").encode("koi8-r")
    rows, _ = run([meta_declared])
    assert "Большой мост через реку" in rows[0]["text"]


def test_invalid_utf8_bytes_never_fail_a_page():
    page = german_page().encode("utf-8").replace(b"Besucher", b"Besu\xff\xfe\xc3cher", 1)
    rows, reasons = run([page, b"\xff\xfe\xfd" * 50, b""], ["utf-8", None, None])
    assert reasons[0] is None and "Die Größe der Brücke" in rows[0]["text"]
    assert reasons[1:] == ["no_content", "no_content"]


# -- what comes out ---------------------------------------------------------------------------
def test_page_without_main_text_is_rejected_as_no_content():
    empty = ('<html><head><title>Gallery</title><style>p {color: red}</style></head><body>'
             '<div><img src="a.png"><img src="b.png"></div><script>var x = 1;</script>'
             '</body></html>')
    for engine in ("trafilatura", "resiliparse", "auto", "hybrid"):
        rows, reasons = run([empty], engine=engine)
        assert reasons == ["no_content"], engine
        assert rows[0]["text"] is None


@pytest.mark.parametrize("engine", ["trafilatura", "resiliparse", "auto", "hybrid"])
def test_engines_return_main_text_and_title_without_boilerplate(engine):
    text = make_text(3, 120)
    rows, reasons = run([article("River news", [text, make_text(4, 60)])], engine=engine)
    assert reasons == [None]
    assert text in rows[0]["text"]
    assert "Contact us" not in rows[0]["text"]
    assert "River news" in rows[0]["title"]


def test_markdown_keeps_headings_tables_and_code_blocks():
    page = ("<html><body><article><h1>Install guide</h1>"
            f"<p>{make_text(1, 40)}</p><h2>Platforms</h2>"
            "<table><tr><th>Platform</th><th>Version</th></tr>"
            "<tr><td>Linux</td><td>5.4</td></tr></table>"
            f"<p>{make_text(2, 40)}</p>"
            "<pre><code>tool --version\ntool check --all</code></pre>"
            "<ul><li>first step</li><li>second step</li></ul>"
            f"<p>{make_text(5, 40)}</p></article></body></html>")
    rows, reasons = run([page], format="markdown")
    text = rows[0]["text"]
    assert reasons == [None]
    assert "# Install guide" in text and "## Platforms" in text
    assert "| Platform | Version |" in text and "| Linux | 5.4 |" in text
    assert "```\ntool --version\ntool check --all\n```" in text
    assert "- first step" in text
    plain, _ = run([page])
    assert "```" not in plain[0]["text"] and "# Install guide" not in plain[0]["text"]


def test_markdown_needs_trafilatura():
    with pytest.raises(ValidationError, match="markdown"):
        ExtractConfig(engine="resiliparse", format="markdown")


# -- hybrid: which path a page takes ---------------------------------------------------------
# The fast path gives resiliparse's text (blank lines dropped, one line per block as
# trafilatura writes it), the careful path trafilatura's fast mode's text.
PAGE_FURNITURE = ("<p>Share this story</p><p>Tags: rivers, towns</p>"
                  "<p>Related: The old mill reopens</p>")


def test_hybrid_article_page_takes_the_fast_path():
    paragraphs = [make_text(1, 80), make_text(2, 60), make_text(3, 70)]
    page = article("River news", paragraphs).replace("</article>", PAGE_FURNITURE + "</article>")
    rows, reasons = run([page], engine="hybrid")
    fast, _ = run([page], engine="resiliparse")
    text = rows[0]["text"]
    assert "\n\n" in fast[0]["text"]  # resiliparse separates blocks by blank lines
    assert reasons == [None] and text == fast[0]["text"].replace("\n\n", "\n")
    assert f"{paragraphs[0]}\n{paragraphs[1]}" in text
    assert "Share this story" not in text and "Related:" not in text
    careful, _ = run([page], engine="trafilatura", fallbacks=False)
    assert "Share this story" in careful[0]["text"]  # the careful path would have kept it
    # title and date by trafilatura's rules on both paths (resiliparse alone: <title> only)
    careful, _ = run([page], engine="trafilatura")
    assert rows[0]["title"] == careful[0]["title"] == "River news"


def test_hybrid_sends_pages_that_do_not_read_like_an_article_to_trafilatura():
    # short lines only (a poem, a listing): no paragraph evidence, so trafilatura decides
    verses = "".join(f"<p>{make_text(i, 6)}</p>" for i in range(30))
    page = article("Poems", []).replace("</article>", verses + "</article>")
    rows, reasons = run([page], engine="hybrid")
    careful, _ = run([page], engine="trafilatura", fallbacks=False)
    assert reasons == [None] and rows[0]["text"] == careful[0]["text"]
    assert f"{make_text(0, 6)}\n{make_text(1, 6)}" in rows[0]["text"]


def test_hybrid_recovers_an_article_resiliparse_misses():
    # resiliparse's main-content rules drop a figure caption; here it holds the whole text
    body = "".join(f"<p>{make_text(i, 60)}</p>" for i in range(4))
    page = f"<html><body><figure><figcaption>{body}</figcaption></figure></body></html>"
    fast, fast_reasons = run([page], engine="resiliparse")
    rows, reasons = run([page], engine="hybrid")
    assert fast_reasons == ["no_content"]
    assert reasons == [None] and make_text(3, 60) in rows[0]["text"]


def test_hybrid_reads_too_deep_pages_with_trafilatura():
    # (lxml stops at depth 256: the text sits before the deep part)
    deep = (f"<html><body><p>{make_text(2, 80)}</p>" + "<div>" * 5000 + "x" + "</div>" * 5000
            + "</body></html>")
    _, fast_reasons = run([deep], engine="resiliparse")
    rows, reasons = run([deep], engine="hybrid")
    assert fast_reasons == ["extract_error:NestingTooDeep"]
    assert reasons == [None] and make_text(2, 80) in rows[0]["text"]


def test_reads_like_article_needs_paragraphs_and_a_cut_tail():
    paragraphs = "\n\n".join(make_text(i, 40) for i in range(3))
    tail = "\nShare\nTags: rivers\nContact us"
    assert reads_like_article(paragraphs, paragraphs + tail)
    assert not reads_like_article(paragraphs, paragraphs)  # nothing cut: end not found
    listing = "\n".join(make_text(i, 5) for i in range(40))
    assert not reads_like_article(listing, listing + tail)
    assert not reads_like_article("", tail)


def test_engine_defaults_hybrid_and_trafilatura_for_markdown():
    assert ExtractConfig().engine == "hybrid"
    assert ExtractConfig(format="markdown").engine == "trafilatura"
    with pytest.raises(ValidationError, match="markdown"):
        ExtractConfig(engine="hybrid", format="markdown")


def test_html_is_dropped_unless_kept_and_text_input_works():
    rows, _ = run([german_page()])
    assert "html" not in rows[0] and set(rows[0]) >= {"text", "title", "date"}
    stage = Extract(ExtractConfig(keep_html=True))
    assert "html" not in stage.consumes()
    rows, _ = run([german_page()], keep_html=True)
    assert rows[0]["html"] == german_page()


def test_too_large_page_is_rejected_unparsed():
    big = article("Big", [make_text(i, 200) for i in range(40)])
    rows, reasons = run([big, german_page()], max_bytes=20_000)
    assert reasons[0] == f"too_large:bytes={len(big)}" and reasons[1] is None


def test_page_over_the_cpu_limit_is_rejected_and_the_next_one_extracted():
    slow = article("Slow", [make_text(i, 150) for i in range(400)])
    rows, reasons = run([slow, german_page()], timeout_s=0.001)
    assert reasons == ["extract_timeout", None]
    rows, reasons = run([slow], timeout_s=None)
    assert reasons == [None]


# -- through the real runner ------------------------------------------------------------------
def crawl(tmp_path: Path) -> Path:
    path = tmp_path / "crawl.warc.gz"
    records = [response(n, article(f"Story {n}", [make_text(n, 80), make_text(n + 1, 40)]))
               for n in range(1, 31)]
    records += [
        response(31, "<html><body><img src='a.png'><script>go()</script></body></html>"),
        response(32, article("Short", ["Too short to keep."])),                       # filtered
        response(33, "<html>gone</html>", status="404 Not Found"),                    # skipped
        response(34, german_page().encode("latin-1"),
                 content_type="text/html; charset=iso-8859-1"),
    ]
    offsets = write_warc(path, records)
    data = path.read_bytes()  # the 20th record's member loses its second half
    cut = offsets[19] + (offsets[20] - offsets[19]) // 2
    path.write_bytes(data[:cut] + data[offsets[20]:])
    return path


def job(tmp_path: Path, name: str, extract: str, warc: Path) -> Path:
    return write_spec(tmp_path / f"{name}.yaml", f"""
name: {name}
input: {{format: warc, paths: ["{warc}"], shard_bytes: 8000}}
output: {{path: out-{name}}}
stages:
  - extract: {extract}
  - length_filter: {{min_words: 20}}
resources: {{cpus: 2}}
""")


def test_warc_to_text_job_accounts_for_every_record(tmp_path, ray_cluster):
    warc = crawl(tmp_path)
    result = run_job(load_spec(job(tmp_path, "web", "{engine: trafilatura}", warc)),
                     progress=False)
    out = tmp_path / "out-web"
    manifests = assert_accounting(out)
    assert result.shards == len(manifests) > 2 and not result.failed
    kept = pq.read_table(out / "data").to_pylist()
    rejected = pq.read_table(out / "rejected").to_pylist()
    assert "html" not in kept[0]
    assert sorted(r["id"] for r in kept) == sorted(
        record_id(n) for n in list(range(1, 20)) + list(range(21, 31)) + [34])
    reasons = sorted((r["stage"], r["reason"].split("=")[0]) for r in rejected)
    damage = next(reason for stage, reason in reasons if reason.endswith("_gzip"))
    assert damage in ("corrupt_gzip", "truncated_gzip")  # which one depends on the bytes cut
    assert reasons == sorted([("read", damage), ("read", "http_status:404"),
                              ("extract", "no_content"), ("length_filter", "too_short:words")])
    assert len(kept) + len(rejected) == 34  # every record of the file, exactly once
    german = next(r for r in kept if r["id"] == record_id(34))
    assert "Die Größe der Brücke" in german["text"] and german["charset"] == "cp1252"


def test_cpu_limit_works_inside_ray_workers(tmp_path, ray_cluster):
    path = tmp_path / "slow.warc.gz"
    write_warc(path, [response(n, article(f"Slow {n}", [make_text(i, 150) for i in range(300)]))
                      for n in range(1, 5)])
    run_job(load_spec(job(tmp_path, "slow", "{timeout_s: 0.001}", path)), progress=False)
    rejected = pq.read_table(tmp_path / "out-slow" / "rejected").to_pylist()
    assert [r["reason"] for r in rejected] == ["extract_timeout"] * 4
