"""`dedup_spans` on real pages with planted repeated paragraphs: throughput, peak memory and
precision/recall of what it cuts, beside DataTrove's SentenceDedup on the same pages.

Corpus: the main text of the real pages under DIR/extraction (benchmarks/_eval_pages.py).
`--planted-pages` of them are set aside as the source of planted spans: their paragraphs
(lines) of 120-700 characters with at least four sentence marks, found in no other page.
The other pages are the documents, each once as it is and then in copies until there are
`--docs`; a copy has 30% of the words of every line (at least one) replaced by other words
of the page, so no line of a copy repeats its original. Lines that two pages share (site
boilerplate, e.g. a blog's comment form) are dropped from the pages first. Each document
then gets 0-3 planted paragraphs (30/40/20/10%), drawn with Zipf weights (a few everywhere,
most in a handful of documents), each as a line of its own at a random place.

Truth: of the documents holding a planted paragraph, all but one should lose it.
- recall: planted occurrences cut / (occurrences - 1), per paragraph at most that many; an
  occurrence is cut in the share of its pieces (text between sentence marks, >= 20
  characters) no longer in the document, so a tool that leaves a sentence of it behind
  gets part of the credit;
- precision: characters of planted occurrences cut (each with one newline) / all characters
  cut from kept documents; whatever else is cut counts against it;
- the first copy lost: planted paragraphs of which no whole copy is left.
Measured per run, each a subprocess: wall seconds, docs/s, docs per CPU-second of the whole
process tree (Ray's processes or DataTrove's included), peak RSS summed over the tree.
Ours also in one process without Ray or I/O around it ("stage only": the `spans` phase,
`group` and `apply` called directly), CPU seconds and peak RSS above the process's start.

DataTrove 0.10.1 runs in its own venv (`--dt-venv`, as benchmarks/compare_datatrove.py
makes it) through benchmarks/_datatrove_span_job.py, with the same span length, the same
minimum words for a document that lost spans and no minimum sentence count.

    python benchmarks/span_dedup_bench.py [--eval-dir DIR] [--docs 4000] [--workers 2]
        [--unit sentence_span|paragraph] [--bloom] [--dt-venv PATH | --no-datatrove]
        [--out figures.json]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import pyarrow as pa
import pyarrow.parquet as pq

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from _eval_pages import eval_dir, page_texts  # noqa: E402
from _memory import ProcessSampler, process_tree  # noqa: E402

DEFAULT_DT_VENV = Path(tempfile.gettempdir()) / "curation-bench-datatrove-0.10.1"
SENTENCE_MARK = re.compile(r"[.!?][\"')\]]?(?:\s|$)")
PIECE_CUT = re.compile(r"(?<=[.!?])\s+")  # scoring looks for each piece of a planted paragraph
PLANTED_PER_DOC = ([0, 1, 2, 3], [0.3, 0.4, 0.2, 0.1])
COPY_CHANGE = 0.3
SPEC = """\
name: span-bench
input: {{format: jsonl, paths: ["{input}/*.jsonl"]}}
output: {{path: "{out}"}}
stages:
  - dedup_spans: {options}
resources: {{cpus: {workers}}}
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--eval-dir", default=None)
    parser.add_argument("--docs", type=int, default=4000)
    parser.add_argument("--files", type=int, default=8, help="JSONL files (shards)")
    parser.add_argument("--planted-pages", type=int, default=60)
    parser.add_argument("--planted", type=int, default=40, help="planted paragraphs")
    parser.add_argument("--unit", choices=["sentence_span", "paragraph"],
                        default="sentence_span")
    parser.add_argument("--sentences", type=int, default=3)
    parser.add_argument("--min-words", type=int, default=50)
    parser.add_argument("--bloom", action="store_true", help="also run ours in mode: bloom")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--dt-venv", default=str(DEFAULT_DT_VENV))
    parser.add_argument("--no-datatrove", action="store_true")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()

    work = Path(args.workdir or tempfile.mkdtemp(prefix="span-bench-"))
    shutil.rmtree(work / "in", ignore_errors=True)
    docs, planted, corpus = build_corpus(eval_dir(args.eval_dir), args)
    write_jsonl(work / "in", docs, args.files)
    print(f"corpus: {corpus['docs']} documents ({corpus['mib']:.1f} MiB) from "
          f"{corpus['pages']} real pages; {len(planted)} planted paragraphs, "
          f"{corpus['occurrences']} occurrences in {corpus['with_planted']} documents "
          f"(should cut {corpus['should_cut']})")
    options = ("{unit: paragraph" if args.unit == "paragraph" else
               f"{{unit: sentence_span, sentences: {args.sentences}") + \
        f", min_words: {args.min_words}}}"
    runs = {"ours": run_ours(work, options, args.workers)}
    if args.bloom:
        bloom = options[:-1] + f", mode: bloom, expected_spans: {args.docs * 150}}}"
        runs["ours-bloom"] = run_ours(work, bloom, args.workers, "ours-bloom")
    if not args.no_datatrove:
        runs["datatrove"] = run_datatrove(work, Path(args.dt_venv), args)
    stage_only = measure_stage_only(work / "in", options)
    figures = {"corpus": corpus, "workers": args.workers, "cpus": os.cpu_count(),
               "unit": args.unit, "stage_only": stage_only, "runs": {}}
    for name, run in runs.items():
        texts = run.pop("texts")
        figures["runs"][name] = run | score(docs, planted, texts)
    print_figures(figures)
    if args.out:
        Path(args.out).write_text(json.dumps(figures, indent=1))
    if not args.workdir:
        shutil.rmtree(work, ignore_errors=True)


# -- corpus --------------------------------------------------------------------------------------
def build_corpus(root: Path, args) -> tuple[list[dict], list[str], dict]:
    rng = random.Random(args.seed)
    pages = page_texts(root)
    rng.shuffle(pages)
    sources, bases = pages[:args.planted_pages], without_shared_lines(pages[args.planted_pages:])
    elsewhere = "\n".join(bases)
    planted = [line for page in sources for line in page.split("\n")
               if 120 <= len(line) <= 700 and len(SENTENCE_MARK.findall(line)) >= 4
               and line not in elsewhere]
    planted = sorted(set(planted))
    rng.shuffle(planted)
    planted = planted[:args.planted]
    weights = [1 / (j + 1) for j in range(len(planted))]
    docs = []
    for n in range(args.docs):
        page = bases[n % len(bases)]
        text = page if n < len(bases) else changed_copy(page, rng)
        lines = text.split("\n")
        count = rng.choices(*PLANTED_PER_DOC)[0]
        chosen = set()
        while len(chosen) < count:
            chosen.add(rng.choices(range(len(planted)), weights)[0])
        for j in sorted(chosen):
            lines.insert(rng.randint(0, len(lines)), planted[j])
        docs.append({"id": f"d{n:06d}", "text": "\n".join(lines), "planted": sorted(chosen)})
    occurrences = [sum(j in d["planted"] for d in docs) for j in range(len(planted))]
    return docs, planted, {
        "docs": len(docs), "pages": len(bases), "planted_source_pages": len(sources),
        "mib": sum(len(d["text"].encode()) for d in docs) / 2**20,
        "occurrences": sum(occurrences), "with_planted": sum(bool(d["planted"]) for d in docs),
        "should_cut": sum(max(0, k - 1) for k in occurrences)}


def without_shared_lines(pages: list[str]) -> list[str]:
    """The pages without the lines that another page has too (site boilerplate such as a
    blog's comment form), so that the planted spans are the only repeats by construction."""
    pages_of: dict[str, set[int]] = {}
    for n, page in enumerate(pages):
        for line in page.split("\n"):
            if line.strip():
                pages_of.setdefault(line.strip(), set()).add(n)
    return ["\n".join(line for line in page.split("\n")
                      if len(pages_of.get(line.strip(), ())) < 2) for page in pages]


def changed_copy(page: str, rng: random.Random) -> str:
    words = page.split()
    lines = []
    for line in page.split("\n"):
        tokens = line.split()
        if tokens:
            for i in rng.sample(range(len(tokens)), max(1, round(COPY_CHANGE * len(tokens)))):
                tokens[i] = other_word(tokens[i], words, rng)
            line = " ".join(tokens)
        lines.append(line)
    return "\n".join(lines)


def other_word(word: str, words: list[str], rng: random.Random) -> str:
    for _ in range(20):
        replacement = rng.choice(words)
        if replacement != word:
            return replacement
    return word + "s"


def write_jsonl(folder: Path, docs: list[dict], files: int) -> None:
    folder.mkdir(parents=True)
    handles = [open(folder / f"part-{i:02d}.jsonl", "w", encoding="utf-8") for i in range(files)]
    for n, doc in enumerate(docs):
        handles[n % files].write(json.dumps({"id": doc["id"], "text": doc["text"]}) + "\n")
    for handle in handles:
        handle.close()


# -- runs ----------------------------------------------------------------------------------------
def measured(command: list[str], env: dict, log: Path) -> dict:
    with open(log, "wb") as handle:
        started = time.perf_counter()
        process = psutil.Popen(command, stdout=handle, stderr=subprocess.STDOUT, env=env)
        with ProcessSampler(process_tree(process), 0.1, cpu_from_start=True) as meter:
            code = process.wait()
        seconds = time.perf_counter() - started
    if code:
        raise SystemExit(f"{command[0]} failed ({code}):\n{log.read_text()[-3000:]}")
    return {"seconds": seconds, "cpu_seconds": meter.cpu_seconds, "rss_peak": meter.rss_peak}


def run_ours(work: Path, options: str, workers: int, name: str = "ours") -> dict:
    folder = work / name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    spec = folder / "spec.yaml"
    spec.write_text(SPEC.format(input=work / "in", out=folder / "out", options=options,
                                workers=workers))
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env |= {"RAY_AUTH_MODE": "disabled", "RAY_worker_niceness": "0"}
    run = measured([str(Path(sys.executable).with_name("pipeline")), "run", str(spec),
                    "--no-progress"], env, folder / "log.txt")
    texts = {}
    for part in (folder / "out" / "data").glob("*.parquet"):
        table = pq.read_table(part, columns=["id", "text"])
        texts |= dict(zip(table["id"].to_pylist(), table["text"].to_pylist()))
    return run | {"texts": texts}


def run_datatrove(work: Path, venv: Path, args) -> dict:
    python = venv / "bin" / "python"
    if not python.exists():
        raise SystemExit(f"no DataTrove venv at {venv}: run benchmarks/compare_datatrove.py "
                         "once (it creates one), pass --dt-venv, or --no-datatrove")
    folder = work / "datatrove"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    command = [str(python), str(HERE / "_datatrove_span_job.py"), "--input-dir",
               str(work / "in"), "--work-dir", str(folder / "work"), "--output-dir",
               str(folder / "out"), "--sentences", str(args.sentences), "--min-doc-words",
               str(args.min_words), "--workers", str(args.workers),
               "--result", str(folder / "result.json")]
    if args.unit == "paragraph":
        command.append("--lines")
    run = measured(command, dict(os.environ, HF_HUB_OFFLINE="1"), folder / "log.txt")
    texts = {}
    for part in (folder / "out").glob("*.parquet"):
        table = pq.read_table(part, columns=["id", "text"])
        texts |= dict(zip(table["id"].to_pylist(), table["text"].to_pylist()))
    steps = json.loads((folder / "result.json").read_text())["seconds"]
    return run | {"texts": texts, "step_seconds": steps}


def measure_stage_only(folder: Path, options: str) -> dict:
    """The stage's own work in this process: the `spans` phase per shard, `group` per
    partition, `apply` per shard, with the shards already in Parquet."""
    import yaml

    from stages._dedup_spans.phases import group_exact
    from stages._shared.partitioned import ShardUnit
    from stages._shared.partitioned import PartitionUnit, holders, unit_file, \
        write_shard_sources
    from stages.dedup_spans import DedupSpans, DedupSpansConfig

    scratch = Path(tempfile.mkdtemp(prefix="span-stage-"))
    shards = []
    for i, path in enumerate(sorted(folder.glob("*.jsonl"))):
        rows = [json.loads(line) for line in path.open(encoding="utf-8")]
        shards.append(scratch / f"shard-{i}.parquet")
        pq.write_table(pa.Table.from_pylist(rows), shards[-1])
    stage = DedupSpans(DedupSpansConfig(**yaml.safe_load(options)))
    partitions = len(shards)
    with ProcessSampler(process_tree(psutil.Process()), 0.05) as meter:
        before = psutil.Process().memory_info().rss
        started = time.process_time()
        hashed = [stage._spans(ShardUnit(i, str(p), unit_file(str(scratch / "spans"), i),
                                        partitions)) for i, p in enumerate(shards)]
        spans_cpu = time.process_time() - started
        sources = holders(hashed, str(scratch / "spans"), partitions)
        grouped = [group_exact(PartitionUnit(p, sources[p], unit_file(str(scratch / "g"), p)))
                   for p in range(partitions)]
        decided = holders(grouped, str(scratch / "g"), partitions)
        group_cpu = time.process_time() - started - spans_cpu
        write_shard_sources(str(scratch / "decisions.json"), [str(i) for i in range(len(shards))],
                            decided)
        for i, path in enumerate(shards):
            table = pq.read_table(path)
            for first in range(0, table.num_rows, 1000):
                stage.apply(table.slice(first, 1000), str(i), first, str(scratch))
        cpu = time.process_time() - started
    docs = sum(h.documents for h in hashed)
    shutil.rmtree(scratch, ignore_errors=True)
    return {"docs": docs, "cpu_seconds": cpu, "docs_per_cpu_s": docs / cpu,
            "phase_cpu_seconds": {"spans": spans_cpu, "group": group_cpu,
                                  "apply": cpu - spans_cpu - group_cpu},
            "rss_above_start": max(0, meter.rss_peak - before)}


# -- scoring -------------------------------------------------------------------------------------
def score(docs: list[dict], planted: list[str], kept: dict[str, str]) -> dict:
    pieces = [[p for p in PIECE_CUT.split(text) if len(p) >= 20] or [text] for text in planted]
    occurrences = [0] * len(planted)
    left = [0.0] * len(planted)  # occurrences still there (a half-cut one counts a half)
    planted_cut_chars = cut_chars = 0.0
    for doc in docs:
        out = kept.get(doc["id"])
        for j in doc["planted"]:
            occurrences[j] += 1
            stays = 0.0 if out is None else \
                sum(piece in out for piece in pieces[j]) / len(pieces[j])
            left[j] += stays
            if out is not None:
                planted_cut_chars += (1 - stays) * (len(planted[j]) + 1)
        if out is not None:
            cut_chars += len(doc["text"]) - len(out)
    should = [max(0, k - 1) for k in occurrences]
    cut_ok = [min(k - s, want) for k, s, want in zip(occurrences, left, should)]
    return {"kept_docs": len(kept), "dropped_docs": len(docs) - len(kept),
            "recall": sum(cut_ok) / max(1, sum(should)),
            "precision": min(planted_cut_chars, cut_chars) / max(1, cut_chars),
            "cut_chars": cut_chars, "planted_cut_chars": planted_cut_chars,
            "first_copy_lost": sum(1 for k, s in zip(occurrences, left) if k and s < 1)}


def print_figures(figures: dict) -> None:
    runs = figures["runs"]
    docs = figures["corpus"]["docs"]
    for name, run in runs.items():
        run["docs_per_s"] = docs / run["seconds"]
        run["docs_per_cpu_s"] = docs / run["cpu_seconds"]
        print(f"{name:10s} wall {run['seconds']:6.1f} s  {run['docs_per_s']:7.1f} docs/s  "
              f"{run['docs_per_cpu_s']:7.1f} docs per CPU-s  peak RSS (tree) "
              f"{run['rss_peak'] / 2**30:.2f} GiB  recall {run['recall']:.3f}  precision "
              f"{run['precision']:.3f}  first copy lost {run['first_copy_lost']}  dropped "
              f"{run['dropped_docs']}  cut {run['cut_chars'] / 2**20:.2f} MiB")
    if "datatrove" in runs:
        base = runs["datatrove"]
        for name, run in runs.items():
            if name != "datatrove":
                print(f"{name} vs datatrove: docs/s {run['docs_per_s'] / base['docs_per_s']:.2f}x"
                      f", docs per CPU-s {run['docs_per_cpu_s'] / base['docs_per_cpu_s']:.2f}x, "
                      f"peak RSS {run['rss_peak'] / base['rss_peak']:.2f}x theirs "
                      "(aim >= 2x docs/s at equal removal)")
        print("datatrove step seconds: " + ", ".join(
            f"{k} {v:.1f}" for k, v in base["step_seconds"].items()))
    only = figures["stage_only"]
    print(f"ours, stage only (one process, no Ray, input already Parquet): "
          f"{only['docs_per_cpu_s']:.0f} docs per CPU-second ("
          + ", ".join(f"{k} {v:.2f} s" for k, v in only["phase_cpu_seconds"].items())
          + f"), peak RSS above start {only['rss_above_start'] / 2**20:.0f} MiB")


if __name__ == "__main__":
    main()
