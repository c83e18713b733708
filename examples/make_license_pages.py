"""Writes examples/data/license-pages.jsonl: small HTML pages for license_decontam.yaml.

Deterministic and written by this project. Each page shows one way a license is declared (or
not), and two pages quote items of the bundled mini benchmarks (examples/data/bench/), so the
`decontam` stage has something to find:

    python examples/make_license_pages.py
"""

import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCH = HERE / "data" / "bench"

PARAGRAPHS = [
    "The city council met on Tuesday to discuss the budget of the new public library, which "
    "will open in the old post office building next spring.",
    "Volunteers planted four hundred trees along the river during the weekend, and the local "
    "school will look after the young oaks for the first two summers.",
    "Engineers tested the prototype battery through a thousand charging cycles and found that "
    "it kept more than ninety percent of its capacity.",
    "A new ferry route connects the two islands in under forty minutes, with six crossings a "
    "day in summer and four in winter.",
]


def article(title: str, extra: str = "") -> str:
    body = "".join(f"<p>{p}</p>" for p in PARAGRAPHS)
    return f"<article><h1>{title}</h1>{body}{extra}</article>"


def html(title: str, head: str = "", extra: str = "", footer: str = "") -> str:
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title>{head}"
            f"</head><body><nav><a href='/'>Home</a></nav>{article(title, extra)}"
            f"<footer id='colophon'>{footer}</footer></body></html>")


def main() -> None:
    math = [json.loads(line) for line in (BENCH / "mini_math.jsonl").open()]
    code = [json.loads(line) for line in (BENCH / "mini_code.jsonl").open()]
    quoted_math = (f"<h2>Homework help</h2><p>Question: {math[1]['question']}</p>"
                   f"<p>Answer: {math[1]['answer'].replace('<<', '').replace('>>', ' ')}</p>")
    quoted_code = f"<pre><code>{code[0]['prompt']}{code[0]['solution']}</code></pre>"
    pages = [
        ("https://blog.example.net/2024/library", html(
            "Library news", footer="<a rel='license' href='https://creativecommons.org/"
            "licenses/by-sa/4.0/'>CC BY-SA 4.0</a>")),
        ("https://news.example.com/ferry", html(
            "Ferry timetable", footer="<p>&copy; 2024 Example News. All rights reserved.</p>")),
        ("https://photos.example.net/trees", html(
            "Tree planting", footer="<a href='https://creativecommons.org/licenses/by-nc-nd/"
            "3.0/de/'><img src='https://i.creativecommons.org/l/by-nc-nd/3.0/de/88x31.png' "
            "alt='Creative Commons License'></a>")),
        ("https://en.wikipedia.org/wiki/Ferry", html("Ferry")),
        ("https://www.nasa.gov/battery-tests", html("Battery tests")),
        ("https://tutor.example.net/homework", html(
            "Homework help", head="<meta name='DC.rights' content='https://creativecommons.org/"
            "publicdomain/zero/1.0/'>", extra=quoted_math)),
        ("https://code.example.net/snippets", html(
            "Python snippets", head="<script type='application/ld+json'>{\"@type\": "
            "\"TechArticle\", \"license\": \"https://creativecommons.org/licenses/by/4.0/\"}"
            "</script>", extra=quoted_code)),
        ("https://www.example.org/council", html(
            "Council notes", footer="<p>Soweit nicht anders gekennzeichnet, stehen die Texte "
            "dieser Seite unter einer Creative Commons Namensnennung 4.0 International Lizenz."
            "</p>")),
    ]
    out = HERE / "data" / "license-pages.jsonl"
    with out.open("w", encoding="utf-8") as f:
        for number, (url, page) in enumerate(pages):
            f.write(json.dumps({"id": f"page-{number}", "url": url, "html": page}) + "\n")
    print(f"wrote {len(pages)} pages to {out}")


if __name__ == "__main__":
    main()
