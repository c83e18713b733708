"""Real page texts for the MinHash benchmarks: the HTML pages under <eval>/extraction, main text
extracted with resiliparse (fast, and extraction quality does not matter here)."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def eval_dir(argument: str | None) -> Path:
    """DIR argument, else $CURATION_EVAL_DIR, else ../shared/eval beside the repository."""
    return Path(argument or os.environ.get("CURATION_EVAL_DIR") or ROOT.parent / "shared" / "eval")


def page_texts(folder: Path, min_words: int = 150) -> list[str]:
    """Main text of each page with at least `min_words` whitespace-separated words and
    ordinary word lengths (pages in scripts without spaces, e.g. Chinese, are left out:
    word shingles are meaningless for them)."""
    from resiliparse.extract.html2text import extract_plain_text
    from resiliparse.parse.encoding import bytes_to_str, detect_encoding

    pages = sorted((folder / "extraction" / "trafilatura-eval" / "html").glob("*.gz"))
    pages += sorted((folder / "extraction" / "mozilla-readability" / "pages")
                    .glob("*/source.html.gz"))
    if not pages:
        raise SystemExit(f"no HTML pages under {folder / 'extraction'}; pass the eval folder "
                         "as DIR or set CURATION_EVAL_DIR")
    texts = []
    for page in pages:
        raw = gzip.open(page).read()
        text = extract_plain_text(bytes_to_str(raw, detect_encoding(raw)), main_content=True)
        words = text.split()
        if len(words) >= min_words and len(text) / len(words) < 12:
            texts.append(text)
    return texts
