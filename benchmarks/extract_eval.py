"""Extraction quality and throughput: the `extract` stage through `pipeline run` vs direct
library calls, on real pages with ground truth, in one invocation.

For each engine (trafilatura, resiliparse, auto) the eval pages go into a WARC, through the
real runner (`run_job`, WARC reader -> extract, 2 workers on 2 CPUs), and the texts that come
out are scored. Beside them: a single-process loop calling the libraries directly on the same
pages (trafilatura.extract() with its defaults; resiliparse's extract_plain_text with
main_content=True), scored the same way. Scores are defined in _extraction_pages.py.

Timing: the pages are written `--copies` times so that the job runs long enough for its
start-up (actors, imports) to matter as little as it would on a real crawl; Ray itself is
started before the clock starts. docs/s of a job = documents / wall time of `run_job`.
Because wall time on a machine shared with other work says as much about the neighbours as
about us, three more figures: the direct loops' speed per CPU-second (their speed with a core
to themselves, the harder baseline for the ratio), the same loop in 2 plain forked processes
(the ceiling for any framework on this machine, measured next to the pipeline), and the
CPU the whole job (driver, Ray, workers) spends per document against the direct loop's.

    python benchmarks/extract_eval.py [DIR] [--copies 4] [--engines trafilatura,resiliparse,auto]

`--direct` instead: no Ray, no WARC. Each engine's page function (the stage's own, decoding
and time limit included) runs on every page in this process, timed with CPU time
(time.process_time), so that the figure does not depend on what else the machine runs;
trafilatura's default engine is measured in the same run as the baseline, the engines
taking turns page by page. Per set and per half (`tune`: even pages, `held-out`: odd pages,
`all`) it prints F1, CPU per page, docs per CPU-second and the ratio to the baseline:

    python benchmarks/extract_eval.py --direct
        [--engines trafilatura,trafilatura-fast,resiliparse,auto,hybrid]
        [--sets mozilla-readability,dragnet,trafilatura-eval] [--cache DIR --reuse ENGINES]

DIR defaults to $CURATION_EVAL_DIR or ../shared/eval.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("RAY_AUTH_MODE", "disabled")

from _extraction_pages import SETS, load_pages, page_of, score, split, write_warc  # noqa: E402
from _memory import ProcessSampler, process_tree  # noqa: E402

from pipeline.ray_env import ensure_ray  # noqa: E402
from pipeline.runner import run_job  # noqa: E402
from pipeline.spec import parse_spec  # noqa: E402
from stages.extract import Extract, ExtractConfig  # noqa: E402

WORKERS = 2
BASELINE = "trafilatura"
FAST_ENGINES = ("resiliparse", "auto")  # timed on --fast-copies
# --direct: engine labels beyond the stage's engine names -> the extract options they stand for
VARIANTS = {"trafilatura-fast": dict(engine="trafilatura", fallbacks=False)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dir", nargs="?", default=os.environ.get(
        "CURATION_EVAL_DIR", str(Path(__file__).resolve().parents[2] / "shared" / "eval")))
    parser.add_argument("--copies", type=int, default=4,
                        help="times each page is written for the timed pipeline runs")
    parser.add_argument("--fast-copies", type=int, default=None,
                        help="copies for the resiliparse and auto runs (default 4x --copies), "
                        "so that their jobs last about as long as trafilatura's and start-up "
                        "weighs the same in each")
    parser.add_argument("--engines", default="trafilatura,resiliparse,auto,hybrid")
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--direct", action="store_true",
                        help="engines' page functions in this process, CPU-timed, no Ray")
    parser.add_argument("--sets", default=",".join(SETS))
    parser.add_argument("--cache", default=None,
                        help="--direct: folder where each engine's texts and times are kept")
    parser.add_argument("--reuse", default="",
                        help="--direct: engines whose kept results are read back, not re-run")
    parser.add_argument("--only", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.direct:
        _direct_mode(args)
        return
    pages = load_pages(Path(args.dir))
    counts = {s: sum(p.set == s for p in pages) for s in SETS}
    print(f"pages: {counts['mozilla-readability']} mozilla-readability (readerable) and "
          f"{counts['dragnet']} dragnet (token P/R/F1 averaged over pages), "
          f"{counts['trafilatura-eval']} trafilatura-eval "
          f"(with/without snippets); timed runs use x{args.copies} = "
          f"{len(pages) * args.copies} docs")

    direct = {"trafilatura.extract()": _direct_trafilatura,
              "trafilatura.extract(include_comments=False)": _direct_trafilatura_no_comments,
              "resiliparse extract_plain_text()": _direct_resiliparse}
    rates, cpu_rates = {}, {}
    for label, fn in direct.items():
        texts, seconds, cpu_seconds = _timed_loop(fn, pages)
        rates[label], cpu_rates[label] = len(pages) / seconds, len(pages) / cpu_seconds
        _print_quality(f"direct {label}, 1 process", pages, texts, rates[label])
        print(f"direct {label}, 1 process: {cpu_rates[label]:.1f} docs per CPU-second "
              "(its speed on an idle core)")

    docs = len(pages) * args.copies
    seconds, cpu_seconds = _two_processes(pages * args.copies)
    rates["2 processes"], cpu_rates["2 processes"] = docs / seconds, docs / cpu_seconds
    print(f"direct trafilatura.extract(include_comments=False), {WORKERS} processes, no "
          f"framework (this machine's ceiling): {rates['2 processes']:.1f} docs/s = "
          f"{rates['2 processes'] / rates['trafilatura.extract(include_comments=False)']:.2f}x"
          f" one process; {cpu_rates['2 processes']:.1f} docs per CPU-second")
    for engine in args.engines.split(","):
        seconds = _stage_cpu_seconds(engine, pages)
        print(f"stage engine={engine} in-process (Extract.process, 1 process): "
              f"{len(pages) / seconds:.1f} docs per CPU-second")

    work = Path(args.workdir or tempfile.mkdtemp(prefix="extract-eval-"))
    work.mkdir(parents=True, exist_ok=True)
    fast_copies = args.fast_copies or 4 * args.copies
    warcs = {args.copies: work / "pages.warc.gz", fast_copies: work / "pages-fast.warc.gz"}
    for copies, path in warcs.items():
        write_warc(path, pages, copies)
    ensure_ray(WORKERS)
    # `trafilatura-bare`: the stage doing exactly what the direct call does (no title and
    # date lookup, ~10% of trafilatura's CPU): the like-for-like overhead figure.
    runs = [e for e in args.engines.split(",")]
    if "trafilatura" in runs:
        runs.insert(runs.index("trafilatura") + 1, "trafilatura-bare")
    for engine in runs:
        copies = fast_copies if engine in FAST_ENGINES else args.copies
        texts, seconds, stage_seconds, cpu_seconds = _pipeline_run(work, warcs[copies],
                                                                   engine, pages)
        docs = len(pages) * copies
        rates[engine], cpu_rates[engine] = docs / seconds, docs / cpu_seconds
        _print_quality(f"pipeline run engine={engine}, {WORKERS} workers", pages, texts,
                       rates[engine])
        print(f"pipeline run engine={engine}: {cpu_rates[engine]:.1f} docs per CPU-second "
              f"(all of the job's processes: driver, Ray, workers); job wall {seconds:.1f}s "
              f"for {docs} docs; extract stage {1000 * stage_seconds / docs:.2f} ms/doc")

    if "trafilatura" in rates:
        single = "trafilatura.extract(include_comments=False)"
        print(f"throughput pipeline engine=trafilatura ({WORKERS} workers) vs direct "
              f"{single} (1 process): {rates['trafilatura']:.1f} vs {rates[single]:.1f} "
              f"docs/s = {rates['trafilatura'] / rates[single]:.2f}x wall (aim >= 1.7x); "
              f"vs its speed per CPU-second {cpu_rates[single]:.1f}: "
              f"{rates['trafilatura'] / cpu_rates[single]:.2f}x")
        if "trafilatura-bare" in rates:
            print(f"throughput pipeline engine=trafilatura, metadata: false (the direct "
                  f"call's work) vs direct {single} (1 process): "
                  f"{rates['trafilatura-bare']:.1f} vs {rates[single]:.1f} docs/s = "
                  f"{rates['trafilatura-bare'] / rates[single]:.2f}x wall (aim >= 1.7x); "
                  f"vs {WORKERS} plain processes: "
                  f"{rates['trafilatura-bare'] / rates['2 processes']:.2f}x")
        print(f"throughput pipeline engine=trafilatura vs {WORKERS} plain processes (no "
              f"framework): {rates['trafilatura']:.1f} vs {rates['2 processes']:.1f} docs/s = "
              f"{rates['trafilatura'] / rates['2 processes']:.2f}x")
        print(f"CPU per doc pipeline engine=trafilatura (whole job) vs {WORKERS} plain "
              f"processes: {1000 / cpu_rates['trafilatura']:.1f} vs "
              f"{1000 / cpu_rates['2 processes']:.1f} ms = "
              f"{cpu_rates['2 processes'] / cpu_rates['trafilatura']:.2f}x (1.00: no overhead)")
    for engine in ("resiliparse", "auto", "hybrid"):
        if engine in rates and "trafilatura" in rates:
            copies = fast_copies if engine in FAST_ENGINES else args.copies
            print(f"throughput pipeline engine={engine} vs engine=trafilatura: "
                  f"{rates[engine]:.1f} vs {rates['trafilatura']:.1f} docs/s = "
                  f"{rates[engine] / rates['trafilatura']:.2f}x wall, "
                  f"{cpu_rates[engine] / cpu_rates['trafilatura']:.2f}x per CPU-second "
                  f"({len(pages) * copies} vs {len(pages) * args.copies} docs)")
    if not args.workdir:
        shutil.rmtree(work, ignore_errors=True)


def _direct_mode(args) -> None:
    """Every engine's page function on every page, CPU-timed, in this process."""
    import pickle

    pages = load_pages(Path(args.dir), tuple(args.sets.split(",")))
    engines = args.engines.split(",")
    if BASELINE not in engines:  # the baseline of the ratios, measured in the same run
        engines.insert(0, BASELINE)
    if args.only:  # only run and keep these (filling a --cache by parts)
        engines = args.only.split(",")
    cache = Path(args.cache) if args.cache else None
    kept = {engine: cache / f"{engine}.pkl" for engine in engines} if cache else {}
    reused = {engine: pickle.loads(kept[engine].read_bytes()) for engine in engines
              if engine in args.reuse.split(",") and engine in kept and kept[engine].exists()}
    fresh = _page_by_page([e for e in engines if e not in reused], pages)
    for engine, result in fresh.items():
        if engine in kept:
            kept[engine].parent.mkdir(parents=True, exist_ok=True)
            kept[engine].write_bytes(pickle.dumps(result))
    results = {engine: reused.get(engine) or fresh[engine] for engine in engines}
    if args.only:
        return
    base_texts, base_times = results[BASELINE]
    for part in ("tune", "held-out", "all"):
        for name in args.sets.split(","):
            halves = {id(p) for p in split(pages, part)}
            chosen = [i for i, p in enumerate(pages) if p.set == name and id(p) in halves]
            if not chosen:
                continue
            print(f"-- {name}, {part} ({len(chosen)} pages)")
            base_cpu = sum(base_times[i] for i in chosen)
            for engine, (texts, times) in results.items():
                precision, recall, f1 = score([pages[i] for i in chosen],
                                              [texts[i] for i in chosen])
                cpu = sum(times[i] for i in chosen)
                print(f"{engine:>24}: F1 {f1:.3f} (P {precision:.3f} R {recall:.3f})  "
                      f"{1000 * cpu / len(chosen):6.2f} ms CPU/page  "
                      f"{len(chosen) / cpu:7.1f} docs per CPU-second  "
                      f"{base_cpu / cpu:5.2f}x {BASELINE}")


def _page_by_page(engines: list[str], pages) -> dict[str, tuple[list, list]]:
    """{engine: (texts, CPU seconds per page)} of the stage's page function. The engines take
    turns page by page, so that a busier or quieter spell of a shared machine (which moves
    even CPU time: caches, hyper-threads) weighs on each of them alike."""
    stages = {}
    for engine in engines:
        stages[engine] = Extract(ExtractConfig(**VARIANTS.get(engine, dict(engine=engine))))
        stages[engine].setup()
        stages[engine]._one(pages[0].html, None, pages[0].url)  # lazy set-up off the clock
    results = {engine: ([], []) for engine in engines}
    for page in pages:
        for engine, stage in stages.items():
            started = time.process_time()
            found, why = stage._one(page.html, None, page.url)
            results[engine][1].append(time.process_time() - started)
            results[engine][0].append(found.text if why is None else None)
    return results


def _direct_trafilatura(html: bytes) -> str | None:
    import trafilatura
    return trafilatura.extract(html)


def _direct_trafilatura_no_comments(html: bytes) -> str | None:
    """The stage's default options (comments left out), without its title and date."""
    import trafilatura
    return trafilatura.extract(html, include_comments=False)


def _direct_resiliparse(html: bytes) -> str:
    from resiliparse.extract.html2text import extract_plain_text
    from resiliparse.parse.encoding import bytes_to_str, detect_encoding
    return extract_plain_text(bytes_to_str(html, detect_encoding(html)), main_content=True)


def _timed_loop(fn, pages) -> tuple[list, float, float]:
    """(texts, wall seconds, CPU seconds). CPU seconds give the loop's speed as if it had a
    core to itself: on a shared machine that is the baseline the pipeline must beat."""
    fn(pages[0].html)  # imports and lazy initialisation outside the clock
    started, cpu_started = time.perf_counter(), time.process_time()
    texts = [fn(page.html) for page in pages]
    return texts, time.perf_counter() - started, time.process_time() - cpu_started


def _two_processes(pages) -> tuple[float, float]:
    """(wall, CPU seconds) for WORKERS forked processes, each running the direct loop on its
    share of the pages: what perfect parallelism without any framework gives here."""
    global _SHARED
    _SHARED = [page.html for page in pages]  # forked children inherit it, nothing is copied
    with multiprocessing.get_context("fork").Pool(WORKERS) as pool:
        pool.map(_extract_share, [-1] * WORKERS)  # start and warm up outside the clock
        started = time.perf_counter()
        with ProcessSampler(process_tree(), interval_s=0.1) as meter:  # CPU of the tree
            pool.map(_extract_share, range(WORKERS))
        return time.perf_counter() - started, meter.cpu_seconds


_SHARED: list[bytes] = []


def _extract_share(index: int) -> int:
    share = _SHARED[index::WORKERS] if index >= 0 else _SHARED[:1]
    for html in share:
        _direct_trafilatura_no_comments(html)
    return len(share)


def _stage_cpu_seconds(engine: str, pages) -> float:
    """CPU seconds of the stage's own batch function on the pages (no Ray, no I/O)."""
    stage = Extract(ExtractConfig(engine=engine))
    stage.setup()
    table = pa.table({"html": pa.array([page.html for page in pages], pa.binary())})
    stage.process(table.slice(0, 1))
    started = time.process_time()
    stage.process(table)
    return time.process_time() - started


def _pipeline_run(work: Path, warc: Path, engine: str, pages):
    out = work / f"out-{engine}"
    shutil.rmtree(out, ignore_errors=True)
    name, metadata = engine.split("-")[0], "false" if engine.endswith("-bare") else "true"
    spec = parse_spec(f"""
name: extract-eval-{engine}
input: {{format: warc, paths: ["{warc}"], shard_bytes: {max(1, warc.stat().st_size // 16)}}}
output: {{path: "{out}"}}
stages:
  - extract: {{engine: {name}, metadata: {metadata}}}
resources: {{cpus: {WORKERS}}}
""")
    started = time.perf_counter()
    with ProcessSampler(process_tree(), interval_s=0.1) as meter:  # this process, Ray's too
        result = run_job(spec, progress=False)
    seconds = time.perf_counter() - started
    texts: list[str | None] = [None] * len(pages)
    for part in sorted((out / "data").glob("part-*.parquet")):
        if "text" not in pq.read_schema(part).names:
            continue  # a shard whose byte range held no record start
        table = pq.read_table(part, columns=["id", "text"])
        for record_id, text in zip(table["id"].to_pylist(), table["text"].to_pylist()):
            copy, index = page_of(record_id)
            if copy == 0:
                texts[index] = text
    stage = next(s for s in result.stages if s["stage"] == "extract")
    return texts, seconds, stage["seconds"], meter.cpu_seconds


def _print_quality(label: str, pages, texts, rate: float) -> None:
    for name in SETS:
        chosen = [(p, t) for p, t in zip(pages, texts) if p.set == name]
        if not chosen:
            continue
        precision, recall, f1 = score([p for p, _ in chosen], [t for _, t in chosen])
        print(f"{label}: {name} P {precision:.3f} R {recall:.3f} F1 {f1:.3f}")
    print(f"{label}: {rate:.1f} docs/s")


if __name__ == "__main__":
    main()
