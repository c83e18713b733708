"""Evaluation pages with ground truth, the two scores used on them, and a WARC writer.

Sets (under DIR/extraction, see ../shared/eval/README.md):
- mozilla-readability: pages whose metadata says `readerable` (122 of 130; the other 8 are
  not articles, and their expected text is whatever Readability.js made of them); the
  expected text is the text of expected.html.
- dragnet: 1,381 news and blog pages; the expected text is the main text a person extracted.
- trafilatura-eval: all 990 pages of trafilatura's evaluation set (the folders
  `trafilatura-eval` and `trafilatura-eval-rest`), with snippets that must / must not appear
  (no full text).

Scores: on pages with an expected text, word tokens with multiplicity (lower-cased `\\w+`),
precision, recall and F1 per page, averaged over pages. On trafilatura-eval as upstream's
evaluate.py: a found `with` snippet is a true positive, a missing one a false negative, a
found `without` snippet a false positive; P/R/F1 over all snippets.

`Page.index` numbers the pages of each set from 0: even pages are the half an engine's
constants may be tuned on, odd pages the held-out half (`split`).
"""

from __future__ import annotations

import gzip
import io
import json
import re
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import lxml.html
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

_WORD = re.compile(r"\w+")
_SPACE = re.compile(r"\s+")


SETS = ("mozilla-readability", "dragnet", "trafilatura-eval")
# trafilatura's evaluation set, split over two folders: (folder, annotation file)
_TRAFILATURA_FOLDERS = (("trafilatura-eval", "evaldata-subset.json"),
                        ("trafilatura-eval-rest", "evaldata-rest.json"))


@dataclass
class Page:
    set: str
    key: str            # url (trafilatura-eval), test name (mozilla-readability), n (dragnet)
    html: bytes
    expected: str = ""  # mozilla-readability, dragnet
    with_: list[str] = field(default_factory=list)     # trafilatura-eval
    without: list[str] = field(default_factory=list)   # trafilatura-eval
    index: int = 0      # position within its set

    @property
    def url(self) -> str:
        return self.key if self.set == "trafilatura-eval" else \
            f"https://{self.set}.test/{self.key}"


def load_pages(root: Path, sets: tuple[str, ...] = SETS) -> list[Page]:
    pages = []
    for name in sets:
        found = _LOADERS[name](root / "extraction")
        for i, page in enumerate(found):
            page.index = i
        pages += found
    return pages


def split(pages: list[Page], part: str) -> list[Page]:
    """`tune` (even pages of each set), `held-out` (odd pages) or `all`."""
    if part == "all":
        return pages
    return [p for p in pages if p.index % 2 == (0 if part == "tune" else 1)]


def _readability(root: Path) -> list[Page]:
    pages = []
    moz = root / "mozilla-readability" / "pages"
    for folder in sorted(p for p in moz.iterdir() if p.is_dir()):
        meta = json.loads((folder / "expected-metadata.json").read_text(encoding="utf-8"))
        if not meta.get("readerable"):
            continue
        expected = lxml.html.fromstring(
            (folder / "expected.html").read_text(encoding="utf-8")).text_content()
        pages.append(Page("mozilla-readability", folder.name,
                          gzip.decompress((folder / "source.html.gz").read_bytes()), expected))
    return pages


def _dragnet(root: Path) -> list[Page]:
    folder = root / "dragnet"
    # names are numbers, some with an R prefix; sorted as strings, a fixed order
    numbers = sorted(p.name.removesuffix(".html.gz") for p in (folder / "html").glob("*.gz"))
    return [Page("dragnet", n,
                 gzip.decompress((folder / "html" / f"{n}.html.gz").read_bytes()),
                 (folder / "gold" / f"{n}.txt").read_text(encoding="utf-8", errors="replace"))
            for n in numbers if (folder / "gold" / f"{n}.txt").exists()]


def _trafilatura_eval(root: Path) -> list[Page]:
    pages = []
    for name, annotation_file in _TRAFILATURA_FOLDERS:
        folder = root / name
        annotations = json.loads((folder / annotation_file).read_text(encoding="utf-8"))
        for url, entry in annotations.items():
            path = folder / "html" / f"{entry['file']}.gz"
            pages.append(Page("trafilatura-eval", url, gzip.decompress(path.read_bytes()),
                              with_=entry.get("with", []), without=entry.get("without", [])))
    return pages


_LOADERS = {"mozilla-readability": _readability, "dragnet": _dragnet,
            "trafilatura-eval": _trafilatura_eval}


def score(pages: list[Page], texts: list[str | None]) -> tuple[float, float, float]:
    """(precision, recall, F1) of `texts` on pages of one set (see the module docstring)."""
    if pages[0].set != "trafilatura-eval":
        rows = [_token_prf(text or "", page.expected) for page, text in zip(pages, texts)]
        return tuple(sum(r[i] for r in rows) / len(rows) for i in range(3))
    tp = fn = fp = 0
    for page, text in zip(pages, texts):
        found = _norm(text or "")
        for snippet in page.with_:
            if _norm(snippet) in found:
                tp += 1
            else:
                fn += 1
        fp += sum(_norm(snippet) in found for snippet in page.without)
    precision, recall = tp / max(1, tp + fp), tp / max(1, tp + fn)
    return precision, recall, _f1(precision, recall)


def _token_prf(text: str, expected: str) -> tuple[float, float, float]:
    got, want = Counter(_WORD.findall(text.lower())), Counter(_WORD.findall(expected.lower()))
    common = sum((got & want).values())
    precision = common / sum(got.values()) if got else 0.0
    recall = common / sum(want.values()) if want else 0.0
    return precision, recall, _f1(precision, recall)


def _f1(p: float, r: float) -> float:
    return 2 * p * r / (p + r) if p + r else 0.0


def _norm(text: str) -> str:
    return _SPACE.sub(" ", text).strip()


def write_warc(path: Path, pages: list[Page], copies: int = 1) -> None:
    """One gzip-per-record WARC holding every page `copies` times as HTTP 200 responses
    without a declared charset (the eval pages come without headers). Record ids encode
    (copy, page index): see `page_of`."""
    with open(path, "wb") as handle:
        writer = WARCWriter(handle, gzip=True)
        for copy in range(copies):
            for i, page in enumerate(pages):
                url = page.url if copy == 0 else f"{page.url}#copy{copy}"
                http = StatusAndHeaders("200 OK", [("Content-Type", "text/html")],
                                        protocol="HTTP/1.1")
                record = writer.create_warc_record(
                    url, "response", payload=io.BytesIO(page.html), http_headers=http,
                    warc_headers_dict={
                        "WARC-Record-ID": f"<urn:uuid:{uuid.UUID(int=copy << 32 | i)}>",
                        "WARC-Date": "2026-01-01T00:00:00Z"})
                writer.write_record(record)


def page_of(record_id: str) -> tuple[int, int]:
    """(copy, page index) of a record written by `write_warc`, from its id."""
    number = uuid.UUID(record_id.removeprefix("urn:uuid:")).int
    return number >> 32, number & 0xFFFFFFFF
