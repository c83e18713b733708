"""`extract` with `format: markdown`: the stage's Markdown (trafilatura with the passes of
stages/_extract/markdown.py) against trafilatura's own Markdown on the same pages.

For every evaluation page (see _extraction_pages.py) both are scored against the expected
main text (word F1 per set, as extract_eval.py scores), pages whose extraction raised are
counted (a raise would be an `extract_error` row in a job), and what the passes found is
counted: formulas, fenced code blocks and those with a language, GFM tables, and leftover
internal markers (must be 0). The passes' own cost is CPU time per page, beside the parse
they need and the Markdown extraction as a whole.

    python benchmarks/markdown_eval.py [DIR] [--sets dragnet,...]

DIR defaults to $CURATION_EVAL_DIR or ../shared/eval.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._extraction_pages import SETS, load_pages, score  # noqa: E402
from pipeline.io.charset import decode_html  # noqa: E402
from stages._extract.engines import TrafilaturaEngine  # noqa: E402
from stages._extract.markdown import MARK_OPEN, prepare_for_markdown  # noqa: E402

_INLINE_MATH = re.compile(r"(?<![$\\])\$[^$\n]+\$")


def trafilatura_markdown(html: str, url: str) -> str | None:
    """trafilatura's own Markdown with the stage's options, no passes."""
    import trafilatura
    from trafilatura.settings import Extractor

    options = Extractor(output_format="python", formatting=True, comments=False, tables=True,
                        url=url)
    document = trafilatura.bare_extraction(html, options=options)
    return document.text if document is not None else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dir", nargs="?", default=os.environ.get(
        "CURATION_EVAL_DIR", str(Path(__file__).resolve().parents[2] / "shared" / "eval")))
    parser.add_argument("--sets", default=",".join(SETS))
    args = parser.parse_args()

    from trafilatura.utils import load_html

    pages = load_pages(Path(args.dir), tuple(args.sets.split(",")))
    stage = TrafilaturaEngine(markdown=True, favor="balanced", comments=False, tables=True,
                              metadata=False)
    ours, theirs, errors = [], [], 0
    parse_s = passes_s = markdown_s = 0.0
    for page in pages:
        html, _ = decode_html(page.html, None)
        started = time.process_time()
        tree = load_html(html)
        parsed = time.process_time()
        if tree is not None:
            prepare_for_markdown(tree, html=html)
        parse_s += parsed - started
        passes_s += time.process_time() - parsed
        started = time.process_time()
        try:
            ours.append(stage(html, page.url).text)
        except Exception:  # the stage would reject the page as extract_error
            errors += 1
            ours.append(None)
        markdown_s += time.process_time() - started
        theirs.append(trafilatura_markdown(html, page.url))

    n = len(pages)
    print(f"{n} pages; raised: {errors}")
    print(f"CPU per page: parse {parse_s / n * 1000:.2f} ms, passes {passes_s / n * 1000:.2f} ms,"
          f" stage's Markdown extraction (parse and passes included) "
          f"{markdown_s / n * 1000:.1f} ms")
    for name in sorted({page.set for page in pages}):
        chosen = [i for i, page in enumerate(pages) if page.set == name]
        subset = [pages[i] for i in chosen]
        for label, texts in (("trafilatura markdown", theirs), ("stage markdown", ours)):
            precision, recall, f1 = score(subset, [texts[i] for i in chosen])
            print(f"{name:20} {label:21} P {precision:.4f} R {recall:.4f} F1 {f1:.4f}")
    texts = [text or "" for text in ours]
    print("display formulas", sum(text.count("\n$$\n") // 2 for text in texts),
          "| inline $..$ spans", sum(len(_INLINE_MATH.findall(text)) for text in texts),
          "| code blocks", sum(text.count("```") // 2 for text in texts),
          "| with a language", sum(len(re.findall(r"^```\w", text, re.M)) for text in texts),
          "| tables", sum(text.count("\n|---") for text in texts),
          "| leftover markers", sum(text.count(MARK_OPEN[0]) for text in texts))


if __name__ == "__main__":
    main()
