"""Decontamination: recall on planted benchmark items, false positives on clean pages, speed.

GSM8K (1,319 items) and HumanEval (164) are indexed together. Host documents are the text of
real web pages (the extraction evaluation pages). Every HumanEval item and 600 GSM8K items
are planted, one per document, in five variants:
- verbatim: the item as the benchmark file has it (question + answer, prompt + solution);
- rewrapped: whitespace and line breaks changed (lines of ~60 characters);
- recased: UPPER, lower, Title or sWAP case;
- repunctuated: punctuation replaced by other marks, straight quotes by curly ones;
- template: inside a prompt template ("Question: ... Answer:", "### Instruction ...");
- question_only: only the question (GSM8K) or only the prompt (HumanEval).
A planted document counts as found when `contamination` names the planted item itself.
False positives: clean pages (and 5 KB windows of them) that hit anything. Throughput: 5 KB
windows of real text through `Decontam.process` in batches of 2,048, in CPU seconds of this
process (so a busy machine does not distort it).

    python benchmarks/decontam_eval.py [DIR]    # DIR: CURATION_EVAL_DIR or /work/shared/eval
"""

from __future__ import annotations

import gzip
import json
import os
import random
import re
import sys
import textwrap
import time
from pathlib import Path

import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from resiliparse.extract.html2text import extract_plain_text  # noqa: E402

from stages.decontam import Decontam, DecontamConfig  # noqa: E402

GSM8K_PLANTED = 600
DOC_CHARS = 5000
THROUGHPUT_DOCS = 20_480
BATCH = 2048
AIMS = {"verbatim": 0.99, "reformatted": 0.95, "fp": 0.001, "docs_per_s": 5000}


def clean_pages(root: Path) -> list[str]:
    texts = []
    extraction = root / "extraction"
    for page in sorted((extraction / "trafilatura-eval" / "html").glob("*.gz")):
        texts.append(extract_plain_text(gzip.decompress(page.read_bytes()).decode(
            "utf-8", "replace"), main_content=True))
    for page in sorted((extraction / "mozilla-readability" / "pages").glob("*/source.html.gz")):
        texts.append(extract_plain_text(gzip.decompress(page.read_bytes()).decode(
            "utf-8", "replace"), main_content=True))
    return [t for t in texts if len(t) >= 200]


def windows(texts: list[str], size: int) -> list[str]:
    out = []
    for text in texts:
        for start in range(0, max(1, len(text) - size // 2), size):
            piece = text[start:start + size]
            if len(piece) >= size // 2:
                out.append(piece)
    return out


# -- variants ----------------------------------------------------------------------------------
def rewrap(text: str, rng: random.Random) -> str:
    return "\n".join(textwrap.fill(" ".join(p.split()), width=rng.randint(40, 80))
                     for p in text.split("\n\n"))


def recase(text: str, rng: random.Random) -> str:
    return rng.choice([str.upper, str.lower, str.title, str.swapcase])(text)


def repunctuate(text: str, rng: random.Random) -> str:
    marks = [";", "!", " - ", "...", " \u2014 ", "?", ":", " , "]
    text = re.sub(r"'(\w)", "\u2019\\1", text).replace('"', "\u201c")
    return re.sub(r"[.,;:!?()\[\]]", lambda m: rng.choice(marks), text)


def variants(kind: str, item: dict, rng: random.Random) -> dict[str, str]:
    if kind == "gsm8k":
        question, answer = item["question"], item["answer"]
        clean_answer = re.sub(r"<<[^>]*>>", "", answer)
        template = f"Question: {question}\nAnswer: {clean_answer}"
        only = question
    else:
        question, answer = item["prompt"], item["canonical_solution"]
        clean_answer = answer
        template = (f"### Instruction:\nComplete the following Python function.\n{question}\n"
                    f"### Response:\n{answer}")
        only = question
    whole = f"{question}\n{answer}"
    clean_whole = f"{question}\n{clean_answer}"
    return {"verbatim": whole, "rewrapped": rewrap(clean_whole, rng),
            "recased": recase(clean_whole, rng), "repunctuated": repunctuate(clean_whole, rng),
            "template": template, "question_only": only}


def plant(host: str, insert: str, rng: random.Random) -> str:
    breaks = [m.end() for m in re.finditer(r"\n", host)] or [len(host)]
    at = rng.choice(breaks)
    return f"{host[:at]}\n{insert}\n{host[at:]}"


# -- main --------------------------------------------------------------------------------------
def main(argv: list[str]) -> int:
    root = Path(argv[0] if argv else os.environ.get("CURATION_EVAL_DIR", "/work/shared/eval"))
    bench = root / "decontam"
    config = DecontamConfig(benchmarks=[
        {"path": str(bench / "gsm8k" / "test.jsonl"), "name": "gsm8k",
         "fields": ["question", "answer"], "strip": [r"<<[^>]*>>"]},
        {"path": str(bench / "humaneval" / "HumanEval.jsonl"), "name": "humaneval",
         "fields": ["prompt", "canonical_solution"], "id_field": "task_id"},
    ])
    stage = Decontam(config)
    started = time.perf_counter()
    stage.setup()
    build = time.perf_counter() - started
    index = stage.index
    print(f"index: {len(index.keys):,} distinct 13-grams from "
          f"{sum(b.items for b in index.benchmarks):,} items, built in {build:.2f} s")
    print(f"index memory: {index.nbytes / 2**20:.2f} MiB = {index.bytes_per_ngram:.1f} bytes "
          f"per n-gram (uint64 key + CSR item list + 16-bit/key bitmap)")
    for b in index.benchmarks:
        print(f"index {b.name}: {b.items} items, {b.texts} texts, {b.ngrams:,} n-grams, "
              f"{b.too_short} texts shorter than 13 tokens (undetectable at n=13)")

    pages = clean_pages(root)
    rng = random.Random(20261125)
    gsm8k = [json.loads(line) for line in (bench / "gsm8k" / "test.jsonl").open()]
    humaneval = [json.loads(line) for line in (bench / "humaneval" / "HumanEval.jsonl").open()]
    planted: list[tuple[str, str, str]] = []  # (variant, expected item, document)
    picks = [("gsm8k", i, gsm8k[i]) for i in sorted(rng.sample(range(len(gsm8k)),
                                                                GSM8K_PLANTED))]
    picks += [("humaneval", i, item) for i, item in enumerate(humaneval)]
    for kind, number, item in picks:
        expected = f"{kind}:{item['task_id'] if kind == 'humaneval' else number}"
        for variant, text in variants(kind, item, rng).items():
            planted.append((variant, expected, plant(rng.choice(pages), text, rng)))

    found: dict[str, list[int]] = {}
    for lo in range(0, len(planted), BATCH):
        chunk = planted[lo:lo + BATCH]
        out = stage.process(pa.table({"text": [d for _, _, d in chunk]}))
        for (variant, expected, _), hits in zip(chunk, out.table["contamination"].to_pylist()):
            tally = found.setdefault(variant, [0, 0])
            tally[0] += expected in hits
            tally[1] += 1
    for variant, (ok, total) in found.items():
        aim = AIMS["verbatim"] if variant == "verbatim" else AIMS["reformatted"]
        print(f"recall {variant:<13} {ok / total:.4f}  ({ok}/{total}; aim >= {aim})")

    # redact mode on the verbatim plants: what is left must be clean, and most of the host kept
    redactor = Decontam(config.model_copy(update={"mode": "redact"}))
    redactor.prepared = index
    redactor.setup()
    verbatim = [d for v, _, d in planted if v == "verbatim"]
    out = redactor.process(pa.table({"text": verbatim}))
    kept = [t for t, r in zip(out.table["text"].to_pylist(), out.reasons.to_pylist()
                              if out.reasons is not None else [None] * len(verbatim))
            if r is None]
    again = stage.process(pa.table({"text": kept}))
    residual = sum(bool(h) for h in again.table["contamination"].to_pylist())
    share = sum(map(len, kept)) / sum(len(d) for d, r in zip(verbatim, out.reasons.to_pylist()
                                                            if out.reasons is not None
                                                            else [None] * len(verbatim))
                                      if r is None)
    print(f"redact verbatim plants: {len(kept)}/{len(verbatim)} documents kept, "
          f"{residual} still contaminated after redaction, {share:.1%} of their text kept")

    for label, docs in (("pages", pages), ("5KB windows", windows(pages, DOC_CHARS))):
        out = stage.process(pa.table({"text": docs}))
        flagged = [h for h in out.table["contamination"].to_pylist() if h]
        print(f"false positives on clean {label}: {len(flagged) / len(docs):.4%}  "
              f"({len(flagged)}/{len(docs)}; aim <= {AIMS['fp']:.1%})"
              + (f"  hits: {flagged[:5]}" if flagged else ""))

    docs = windows(pages, DOC_CHARS)
    docs = (docs * (THROUGHPUT_DOCS // len(docs) + 1))[:THROUGHPUT_DOCS]
    batches = [pa.table({"text": docs[i:i + BATCH]}) for i in range(0, len(docs), BATCH)]
    stage.process(batches[0])  # warm-up: first-touch of buffers
    cpu, wall = time.process_time(), time.perf_counter()
    for batch in batches:
        stage.process(batch)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    mean_kb = sum(len(d.encode()) for d in docs) / len(docs) / 1024
    print(f"throughput: {len(docs) / cpu:,.0f} docs/s per core (CPU time; "
          f"{len(docs) / wall:,.0f} docs/s wall) on {mean_kb:.1f} KB documents, "
          f"{len(docs) * mean_kb / 1024 / cpu:.1f} MB/s; aim >= {AIMS['docs_per_s']:,} "
          f"-> ratio {len(docs) / cpu / AIMS['docs_per_s']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
