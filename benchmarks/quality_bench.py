"""Heuristic quality rules: documents per second per core on ~5 KB web documents.

    python benchmarks/quality_bench.py [DIR] [--docs 1000] [--rounds 3]

Documents: text extracted (trafilatura) from the web pages under DIR/extraction (DIR:
$CURATION_EVAL_DIR or ../shared/eval), cut or joined at line ends into ~5 KB documents, with
a `lang` column from the `langid` stage so that stop words follow each page's language. Without
those pages the documents are generated (English-like sentences), which the first line says.

Figures, one per line: the full rule set (Gopher quality + repetition, C4, FineWeb) in filter
and annotate mode, each rule set alone, and Gopher repetition against a baseline: the same
measures computed the plain way (joined word n-grams in Python sets and Counters, one pass
per order). Times are CPU seconds of this process (best of `--rounds`), so "per core" holds
on a busy machine too.
"""

from __future__ import annotations

import argparse
import gzip
import os
import random
import sys
import time
from collections import Counter
from pathlib import Path

import pyarrow as pa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from stages._quality import RULES, Document  # noqa: E402
from stages._quality.gopher_repetition import DUP_ORDERS, TOP_ORDERS  # noqa: E402
from stages.langid import LangId  # noqa: E402
from stages.quality import Quality, QualityConfig  # noqa: E402

TARGET_CHARS = 5000
BATCH = 2048


def eval_root(arg: str | None) -> Path:
    default = ROOT / ".." / "shared" / "eval"
    return Path(arg or os.environ.get("CURATION_EVAL_DIR") or default).resolve()


def page_texts(root: Path) -> list[str]:
    import trafilatura

    pages = sorted((root / "extraction").glob("*/html/*.gz")) + \
        sorted((root / "extraction").glob("*/pages/*/source.html.gz"))
    texts = []
    for path in pages:
        html = gzip.decompress(path.read_bytes()).decode("utf-8", "replace")
        text = trafilatura.extract(html)
        if text:
            texts.append(text)
    return texts


def generated_texts(count: int) -> list[str]:
    rng = random.Random(5)
    vocab = ("the of and to in a is that for on with as was by at from it an be this are "
             "city council library river bridge market harbour farmers students museum "
             "research winter summer report budget project school station weather history "
             "opened measured discussed visited published restored planted reviewed").split()
    texts = []
    for _ in range(count):
        lines = []
        while sum(map(len, lines)) < TARGET_CHARS:
            words = [rng.choice(vocab) for _ in range(rng.randint(8, 30))]
            lines.append(" ".join(words).capitalize() + rng.choice([".", ".", ".", "?", ""]))
        texts.append("\n".join(lines))
    return texts


def five_kb_documents(texts: list[str], count: int) -> list[str]:
    """Cut long texts and join short ones at line ends into documents of >= 5,000 chars."""
    docs, current = [], []
    lines = (line for _ in range(1000) for text in texts for line in text.split("\n"))
    for line in lines:
        current.append(line)
        if sum(map(len, current)) + len(current) >= TARGET_CHARS:
            docs.append("\n".join(current))
            current = []
            if len(docs) == count:
                break
    return docs


def plain_repetition(text: str) -> dict:
    """Baseline: Gopher's n-gram measures the plain way (string n-grams, one pass per order)."""
    words = Document(text, "en").words
    chars, out = len(text), {}
    for n in TOP_ORDERS:
        grams = Counter(" ".join(words[i:i + n]) for i in range(len(words) - n + 1))
        gram, count = max(grams.items(), key=lambda item: item[1], default=("", 0))
        out[n] = len(gram) * count / chars if count > 1 else 0.0
    for n in DUP_ORDERS:
        seen, covered, i = set(), 0, 0
        while i <= len(words) - n:
            gram = " ".join(words[i:i + n])
            if gram in seen:
                covered += len(gram)
                i += n
            else:
                seen.add(gram)
                i += 1
        out[n] = covered / chars
    return out


def best_cpu(fn, rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        started = time.process_time()
        fn()
        best = min(best, time.process_time() - started)
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dir", nargs="?")
    parser.add_argument("--docs", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)

    root = eval_root(args.dir)
    texts = page_texts(root) if (root / "extraction").is_dir() else []
    source = f"text extracted from {len(texts)} pages under {root / 'extraction'}"
    if not texts:
        texts, source = generated_texts(50), "generated English-like text (no eval pages found)"
    docs = five_kb_documents(texts, args.docs)
    langid = LangId()
    table = langid.process(pa.table({"text": docs})).table
    batches = [table.slice(i, BATCH) for i in range(0, table.num_rows, BATCH)]
    mean_chars = sum(map(len, docs)) / len(docs)
    languages = Counter(table["lang"].to_pylist()).most_common(4)
    print(f"documents: {len(docs)} of {mean_chars:,.0f} characters on average, {source}; "
          f"languages {', '.join(f'{lang} {n}' for lang, n in languages)}")

    def rate(stage) -> float:
        return len(docs) / best_cpu(lambda: [stage.process(b) for b in batches], args.rounds)

    full = Quality(QualityConfig())
    kept = sum(out.table.num_rows if out.reasons is None else out.reasons.null_count
               for out in map(full.process, batches))  # reasons None: every row kept
    full_rate = rate(full)
    print(f"full rule set, filter mode: {full_rate:,.0f} docs/s per core "
          f"({full_rate * mean_chars / 1e6:.1f} MB/s; {kept} of {len(docs)} kept; aim >= 1,000)")
    print(f"full rule set, annotate mode: {rate(Quality(QualityConfig(mode='annotate'))):,.0f} "
          "docs/s per core")
    for name in RULES:
        print(f"{name} alone: {rate(Quality(QualityConfig(rules=[name]))):,.0f} docs/s per core")

    repetition = RULES["gopher_repetition"]()
    ours = len(docs) / best_cpu(lambda: [repetition.measure(Document(d, "en")) for d in docs],
                                args.rounds)
    plain = len(docs) / best_cpu(lambda: [plain_repetition(d) for d in docs], args.rounds)
    print(f"gopher_repetition measures, this project: {ours:,.0f} docs/s per core")
    print(f"gopher_repetition measures, plain Python baseline: {plain:,.0f} docs/s per core")
    print(f"ratio this project / baseline: {ours / plain:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
