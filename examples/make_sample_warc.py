"""Writes examples/data/crawl-sample.warc.gz - a small WARC shaped like a Common Crawl file
(one gzip member per record), deterministic, every page written by this project.

What is in it, and what `examples/cc_warc.yaml` does with it:
- ten HTML pages: articles with navigation, sidebars, footers and a comment section; a
  recipe; a technical guide with a table and a code block; German declared as ISO-8859-1 in
  the HTTP header; French declared only in <meta>; Russian in windows-1251 declared nowhere;
  an image gallery without text (-> `extract` no_content); a "coming soon" page
  (-> `length_filter` too_short);
- three responses that are not documents: a 404, a 301 and a PNG image (-> rejected rows
  `http_status:404`, `http_status:301`, `content_type:image/png`);
- warcinfo, request and metadata records, which readers skip silently.

    python examples/make_sample_warc.py
"""

from __future__ import annotations

import io
import uuid
from pathlib import Path

from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

SITE = "https://sample.curation-pipeline.test"
DATE = "2026-01-15T08:30:00Z"

NAV = ('<header><a href="/">Home</a> | <a href="/news">News</a> | <a href="/about">About</a>'
       ' | <a href="/login">Log in</a></header>')
FOOTER = ("<footer><p>Copyright 2026 Riverside Gazette. All rights reserved.</p>"
          '<p><a href="/privacy">Privacy</a> <a href="/terms">Terms</a></p></footer>')
SIDEBAR = ('<aside><h3>Most read</h3><ul><li><a href="/a">Council approves budget</a></li>'
           '<li><a href="/b">New cycling lanes open</a></li></ul></aside>')


def page(title: str, body: str, *, head: str = "", lang: str = "en") -> str:
    return (f'<!DOCTYPE html><html lang="{lang}"><head>{head}<title>{title}</title></head>'
            f"<body>{NAV}<main><article>{body}</article>{SIDEBAR}</main>{FOOTER}</body></html>")


def paragraphs(*texts: str) -> str:
    return "".join(f"<p>{t}</p>" for t in texts)


PAGES = [
    ("news/ferry", "text/html; charset=utf-8", "utf-8", page(
        "How the island ferry keeps two towns together",
        "<h1>How the island ferry keeps two towns together</h1>"
        '<p class="byline">By Marta Lind, <time datetime="2026-01-12">12 January 2026</time></p>'
        + paragraphs(
            "Every morning at six the ferry leaves the north pier with nurses, students and "
            "a van full of bread for the island bakery. The crossing takes thirty-five minutes "
            "and, for most passengers, it is the only way to reach work or school.",
            "The operator replaced its oldest boat last spring. The new vessel runs on "
            "batteries that are charged at the pier while cars drive on and off, and it has "
            "cut fuel costs by more than half during its first winter.",
            "Residents still ask for a later evening departure. The council has promised a "
            "trial timetable in the summer, when the days are long and the tourist season "
            "brings enough passengers to pay for the extra crossings."))),
    ("food/lentil-soup", "text/html; charset=utf-8", "utf-8", page(
        "Red lentil soup for a cold evening",
        "<h1>Red lentil soup for a cold evening</h1>"
        + paragraphs("This soup needs one pot, forty minutes and ingredients most kitchens "
                     "already have. It keeps for three days in the fridge and tastes better "
                     "on the second day, when the spices have settled.")
        + "<h2>Ingredients</h2><ul><li>250 g red lentils, rinsed</li><li>1 onion, chopped"
        "</li><li>2 carrots, diced</li><li>1 teaspoon ground cumin</li><li>1 litre vegetable "
        "stock</li><li>Juice of half a lemon</li></ul><h2>Method</h2><ol><li>Soften the "
        "onion and carrots in a little oil for ten minutes.</li><li>Stir in the cumin, then "
        "add the lentils and the stock.</li><li>Simmer for twenty-five minutes until the "
        "lentils fall apart, then blend half of the soup and add the lemon juice.</li></ol>")),
    ("docs/install", "text/html; charset=utf-8", "utf-8", page(
        "Installing the weather station logger",
        "<h1>Installing the weather station logger</h1>"
        + paragraphs("The logger reads the sensors of the school weather station once a "
                     "minute and publishes the readings on the class website. It runs on any "
                     "small computer with Python 3.11 or newer and a free USB port.")
        + "<h2>Supported boards</h2><table><tr><th>Board</th><th>Tested version</th></tr>"
        "<tr><td>Raspberry Pi 4</td><td>1.2</td></tr><tr><td>Raspberry Pi 5</td><td>1.3"
        "</td></tr></table><h2>Setup</h2>"
        + paragraphs("Install the package, then run the check command once to confirm that "
                     "the sensors answer before you start the logger as a service:")
        + "<pre><code>pip install station-logger\nstation-logger check --all\n"
        "station-logger run --every 60</code></pre>"
        + paragraphs("If the check reports a missing sensor, unplug it, wait ten seconds and "
                     "plug it in again; most problems come from loose cables."))),
    ("de/bruecke", "text/html; charset=ISO-8859-1", "latin-1", page(
        "Die neue Brücke über die Saale",
        "<h1>Die neue Brücke über die Saale</h1>" + paragraphs(
            "Nach zwei Jahren Bauzeit ist die neue Fußgängerbrücke über die Saale eröffnet "
            "worden. Sie verbindet die Altstadt mit dem Park am östlichen Ufer und ersetzt "
            "eine Fähre, die nur im Sommer fuhr.",
            "Die Stadt rechnet mit täglich mehr als dreitausend Fußgängern und Radfahrern. "
            "Am Eröffnungstag spielte das Schulorchester, und die Bäckerei am Ufer verkaufte "
            "süße Brezeln an die Gäste."), lang="de")),
    ("fr/marche", "text/html", "utf-8", page(
        "Le marché du samedi change d'adresse",
        "<h1>Le marché du samedi change d'adresse</h1>" + paragraphs(
            "À partir du mois prochain, le marché du samedi s'installera sur la place de la "
            "gare. Les commerçants demandaient depuis longtemps un lieu plus grand, abrité "
            "du vent et plus facile d'accès pour les livraisons.",
            "La mairie prévoit aussi des places de stationnement pour les vélos et un "
            "espace réservé aux producteurs locaux, qui vendront fruits, légumes, fromages "
            "et pain pendant toute la matinée."),
        head='<meta charset="utf-8">', lang="fr")),
    ("ru/biblioteka", "text/html", "cp1251", page(
        "Библиотека продлевает часы работы",
        "<h1>Библиотека продлевает часы работы</h1>" + paragraphs(
            "С понедельника городская библиотека будет открыта до девяти часов вечера. "
            "Читатели давно просили об этом, особенно студенты, которые готовятся к "
            "экзаменам после занятий.",
            "В читальном зале появятся новые столы с лампами и розетками, а по субботам "
            "библиотекари будут проводить занятия для детей и их родителей.",
            "Директор библиотеки рассказала, что за последний год число читателей выросло "
            "почти на треть, и большинство новых читателей приходит именно вечером."),
        lang="ru")),
    ("blog/garden", "text/html; charset=utf-8", "utf-8", page(
        "What we learned from a year of community gardening",
        "<h1>What we learned from a year of community gardening</h1>" + paragraphs(
            "Our garden started with twelve raised beds on an empty corner lot. A year later "
            "it feeds around thirty families and hosts a Saturday workshop for children, "
            "who water the beds and keep a diary of what grows.",
            "The biggest lesson was about water. A rain barrel under the shed roof now "
            "collects enough water for most of the summer, and mulch keeps the beds moist "
            "through the hottest weeks.")
        + '<section class="comments"><h3>Comments</h3><div class="comment"><p>Great '
        "work, we started a similar project on our street!</p></div><div class=\"comment\">"
        "<p>Which mulch do you use?</p></div></section>")),
    ("news/library-night", "text/html; charset=utf-8", "utf-8", page(
        "Night at the museum draws record crowds",
        "<h1>Night at the museum draws record crowds</h1>" + paragraphs(
            "More than four thousand visitors came to the museum's first night opening, "
            "which kept the galleries open until midnight with short talks, music and a "
            "printing workshop in the old press room.",
            "The museum plans to repeat the event every season. Tickets were free, but "
            "visitors were asked to book a time slot online so that the rooms never became "
            "too crowded to enjoy the exhibits."))),
    ("gallery/winter", "text/html; charset=utf-8", "utf-8",
     '<!DOCTYPE html><html><head><title>Winter photos</title><script>loadGallery()</script>'
     '</head><body><div class="gallery"><img src="/img/1.jpg"><img src="/img/2.jpg">'
     '<img src="/img/3.jpg"></div></body></html>'),
    ("coming-soon", "text/html; charset=utf-8", "utf-8", page(
        "Coming soon", "<h1>Coming soon</h1><p>Our new shop opens in March.</p>")),
]
NOT_DOCUMENTS = [
    ("old-page", "404 Not Found", "text/html; charset=utf-8",
     b"<html><body><h1>Not found</h1></body></html>", []),
    ("moved", "301 Moved Permanently", "text/html; charset=utf-8", b"",
     [("Location", f"{SITE}/news/ferry")]),
    ("img/logo.png", "200 OK", "image/png",
     b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00",
     []),
]


def record_headers(n: int, **extra: str) -> dict:
    return {"WARC-Record-ID": f"<urn:uuid:{uuid.UUID(int=0x5A3F_0000 + n)}>",
            "WARC-Date": DATE, **extra}


def main(out: Path = Path(__file__).parent / "data" / "crawl-sample.warc.gz") -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "wb") as handle:
        writer = WARCWriter(handle, gzip=True, warc_version="1.0")
        writer.write_record(writer.create_warc_record(
            "", "warcinfo", payload=io.BytesIO(b"software: examples/make_sample_warc.py\r\n"
                                               b"format: WARC File Format 1.0\r\n"),
            warc_content_type="application/warc-fields", warc_headers_dict=record_headers(0)))
        responses = [(path, "200 OK", content_type, html.encode(encoding), [])
                     for path, content_type, encoding, html in PAGES] + NOT_DOCUMENTS
        for n, (path, status, content_type, body, headers) in enumerate(responses, start=1):
            url = f"{SITE}/{path}"
            writer.write_record(writer.create_warc_record(
                url, "request", payload=io.BytesIO(b""),
                http_headers=StatusAndHeaders(f"GET /{path} HTTP/1.1",
                                              [("Host", SITE.split("//")[1])],
                                              is_http_request=True),
                warc_headers_dict=record_headers(100 + n)))
            http = StatusAndHeaders(status, [("Content-Type", content_type)] + headers,
                                    protocol="HTTP/1.1")
            writer.write_record(writer.create_warc_record(
                url, "response", payload=io.BytesIO(body), http_headers=http,
                warc_headers_dict=record_headers(n)))
            writer.write_record(writer.create_warc_record(
                url, "metadata", payload=io.BytesIO(b"fetchTimeMs: 120\r\n"),
                warc_content_type="application/warc-fields",
                warc_headers_dict=record_headers(200 + n)))
    return out


if __name__ == "__main__":
    print(f"wrote {main()}")
