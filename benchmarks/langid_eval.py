"""Language identification: accuracy per language on held-out sentences, and the `langid`
stage's throughput against the raw fastText model, in one invocation.

    python benchmarks/langid_eval.py [DIR] [--model PATH] [--rounds 5]

DIR holds `sentences/<iso639-1>.txt` (one sentence per line), or is the eval root holding
`langid/sentences/`; default: $CURATION_EVAL_DIR or ../shared/eval. Gold labels go through
the same code mapping as the stage (e.g. lingua's `nb` is lid.176's `no`). Languages the
model cannot emit are reported apart and left out of the macro average.

Throughput: the same sentences, in batches of 2,048, through `LangId.process` (Arrow table
in, `lang`/`lang_score`/reasons out) and through `model.predict(list)`; the best of
`--rounds` alternating runs of each, on one core. One line per figure.

`--fallback` adds `fallback: lingua` (documents scored below `--below` go to lingua): macro
accuracy over all 75 languages with and without it, how many sentences it judged, and the
throughput of the stage with and without it on real pages (the main text of the HTML pages
under <eval>/extraction), where its cost is what matters.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

import pyarrow as pa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from stages._shared import fasttext_models  # noqa: E402
from stages._shared.langcodes import normalize_code  # noqa: E402
from stages.langid import LangId, LangIdConfig, default_model_path  # noqa: E402

BATCH = 2048
# Pairs a character-n-gram model is known to mix up; reported as one group as well.
CONFUSABLE = [{"bs", "hr", "sr", "sh"}, {"ms", "id"}, {"no", "nn"}]


def sentences_dir(arg: str | None) -> Path:
    base = Path(arg or os.environ.get("CURATION_EVAL_DIR") or ROOT / ".." / "shared" / "eval")
    for candidate in (base / "langid" / "sentences", base / "sentences", base):
        if candidate.is_dir() and any(candidate.glob("*.txt")):
            return candidate.resolve()
    sys.exit(f"no sentence files (<code>.txt) under {base}; pass the eval folder as DIR "
             "or set CURATION_EVAL_DIR")


def load(folder: Path) -> tuple[list[str], list[str]]:
    texts, gold = [], []
    for path in sorted(folder.glob("*.txt")):
        lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
        lines = [line for line in lines if line]
        texts += lines
        gold += [normalize_code(path.stem)] * len(lines)
    return texts, gold


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dir", nargs="?")
    parser.add_argument("--model", help="fastText LID model (default: lid.176.ftz)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--fallback", action="store_true", help="also measure fallback: lingua")
    parser.add_argument("--below", type=float, default=0.7, help="the fallback's cut")
    args = parser.parse_args(argv)

    folder = sentences_dir(args.dir)
    texts, gold = load(folder)
    stage = LangId(LangIdConfig(model=args.model, min_score=0.0))
    model = stage.loaded_model()
    model_name = os.path.basename(args.model or default_model_path())
    supported = {normalize_code(label) for label in model.labels}
    languages = sorted(set(gold))
    print(f"data: {folder} ({len(languages)} languages, {len(texts):,} sentences)")
    print(f"model: {model_name} ({len(supported)} labels)")

    tables = [pa.table({"text": texts[i:i + BATCH]}) for i in range(0, len(texts), BATCH)]
    lists = [texts[i:i + BATCH] for i in range(0, len(texts), BATCH)]
    predicted = [lang for t in tables for lang in stage.process(t).table["lang"].to_pylist()]
    raw = [normalize_code(labels[0]) for chunk in lists
           for labels in fasttext_models.predict(model, chunk)[0]]

    _accuracy(gold, predicted, raw, languages, supported, model_name)
    _throughput(stage, model, tables, lists, len(texts), args.rounds)
    if args.fallback:
        _fallback(tables, gold, predicted, languages, args)
    return 0


def _macro(gold: list[str], predicted: list[str], languages: list[str]) -> float:
    hits, totals = Counter(t for t, p in zip(gold, predicted) if t == p), Counter(gold)
    return sum(hits[lang] / totals[lang] for lang in languages) / len(languages)


def _fallback(tables, gold, predicted, languages, args) -> None:
    from benchmarks._eval_pages import eval_dir, page_texts
    options = {"engine": "lingua", "below": args.below}
    stage = LangId(LangIdConfig(min_score=0.0, fallback=options))
    outputs = [stage.process(t).table for t in tables]
    second = [lang for t in outputs for lang in t["lang"].to_pylist()]
    judged = sum(sum(t["lang_fallback"].to_pylist()) for t in outputs)
    print(f"fallback lingua below {args.below}: {judged:,} of {len(gold):,} sentences judged "
          f"by lingua ({judged / len(gold):.1%})")
    print(f"macro accuracy, all {len(languages)} languages: lid.176 alone "
          f"{_macro(gold, predicted, languages):.4f}, with fallback "
          f"{_macro(gold, second, languages):.4f} (aim >= 0.95)")
    pages = page_texts(eval_dir(args.dir if args.dir else None), min_words=1)
    page_tables = [pa.table({"text": pages[i:i + 256]}) for i in range(0, len(pages), 256)]
    alone = LangId(LangIdConfig(min_score=0.0))
    sent = sum(sum(stage.process(t).table["lang_fallback"].to_pylist()) for t in page_tables)
    best_alone = best_with = float("inf")
    for _ in range(args.rounds):  # alternate, so both see the same machine load
        started = time.perf_counter()
        for table in page_tables:
            alone.process(table)
        best_alone = min(best_alone, time.perf_counter() - started)
        started = time.perf_counter()
        for table in page_tables:
            stage.process(table)
        best_with = min(best_with, time.perf_counter() - started)
    print(f"real pages: {len(pages)} ({sum(map(len, pages)) / len(pages):,.0f} characters on "
          f"average), {sent} judged by lingua; {len(pages) / best_alone:,.0f} pages/s alone, "
          f"{len(pages) / best_with:,.0f} with fallback: ratio {best_alone / best_with:.3f} "
          "(aim >= 0.7)")


def _accuracy(gold, predicted, raw, languages, supported, model_name) -> None:
    per: dict[str, Counter] = defaultdict(Counter)
    for truth, guess in zip(gold, predicted):
        per[truth][guess] += 1
    inside = [lang for lang in languages if lang in supported]
    outside = [lang for lang in languages if lang not in supported]
    accuracy = {lang: per[lang][lang] / sum(per[lang].values()) for lang in inside}
    for lang in inside:
        print(f"accuracy {lang}: {accuracy[lang]:.3f}")
    print(f"macro accuracy ({len(inside)} languages in {model_name}): "
          f"{sum(accuracy.values()) / len(inside):.4f}")
    raw_hits = Counter(t for t, r in zip(gold, raw) if t == r)
    raw_macro = sum(raw_hits[lang] / sum(per[lang].values()) for lang in inside) / len(inside)
    print(f"macro accuracy of raw model.predict: {raw_macro:.4f} (stage and raw predictions "
          f"identical: {'yes' if predicted == raw else 'no'})")
    group_of = {code: "/".join(sorted(g)) for g in CONFUSABLE for code in g}
    grouped = {}
    for lang in inside:
        group = group_of.get(lang)
        hits = sum(n for guess, n in per[lang].items()
                   if guess == lang or (group and group_of.get(guess) == group))
        grouped[lang] = hits / sum(per[lang].values())
    print(f"macro accuracy counting {', '.join('/'.join(sorted(g)) for g in CONFUSABLE)} "
          f"as one language each: {sum(grouped.values()) / len(inside):.4f}")
    for lang in outside:
        guesses = ", ".join(f"{g} {n}" for g, n in per[lang].most_common(3))
        print(f"not in {model_name}: {lang} -> predicted as {guesses}")
    confusions = Counter()
    for lang in inside:
        for guess, n in per[lang].items():
            if guess != lang:
                confusions[(lang, guess)] += n
    for (truth, guess), n in confusions.most_common(12):
        share = n / sum(per[truth].values())
        print(f"confusion {truth} -> {guess}: {n} sentences ({share:.1%} of {truth})")
    wrong = sum(confusions.values())
    inside_total = sum(sum(per[lang].values()) for lang in inside)
    confusable = sum(n for (t, g), n in confusions.items()
                     if group_of.get(t) and group_of.get(t) == group_of.get(g))
    print(f"errors within confusable groups: {confusable} of {wrong} wrong sentences "
          f"({confusable / max(1, wrong):.1%}); error rate {wrong / inside_total:.4f}")


def _throughput(stage, model, tables, lists, total, rounds) -> None:
    best_stage = best_raw = float("inf")
    for _ in range(rounds):  # alternate, so both see the same machine load
        started = time.perf_counter()
        for chunk in lists:
            model.predict(chunk, k=1)
        best_raw = min(best_raw, time.perf_counter() - started)
        started = time.perf_counter()
        for table in tables:
            stage.process(table)
        best_stage = min(best_stage, time.perf_counter() - started)
    raw_rate, stage_rate = total / best_raw, total / best_stage
    print(f"throughput raw model.predict: {raw_rate:,.0f} sentences/s (one core)")
    print(f"throughput langid stage: {stage_rate:,.0f} sentences/s (one core)")
    print(f"ratio stage / raw: {stage_rate / raw_rate:.3f} (aim >= 0.85)")


if __name__ == "__main__":
    sys.exit(main())
