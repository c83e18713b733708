"""What the driver keeps as a corpus grows, measured on the real code paths without the
documents: planning and resuming 100k shards, and the global stages' bookkeeping at 10M
documents. docs/scaling.md builds its capacity model on these figures.

1. `plan`: N tiny JSONL files (N = 10k and 100k), one shard each (a Common Crawl snapshot is ~90k WARC files):
   `load_spec` (validation and glob) and the reader's `plan_shards`, as `pipeline run` does
   them: seconds, the memory the plan holds (tracemalloc), and plan.json bytes per shard.
2. `resume`: the same N-shard job with every shard committed (synthetic: one real shard's
   data, rejected and manifest files, from a real run of the same stages, cloned N times;
   the files are hard links) and `run_job` run on it: the plan, the resume scan, the pools and
   the report over N shards, with the driver process's peak RSS; then `pipeline report` alone
   (the report's share). (A run that does the work commits the same files; the driver holds
   the same per-shard records.)
3. `global`: the bookkeeping `dedup_exact` and `dedup_minhash` keep on the driver for a
   corpus of D documents (default 10M) in S shards: each phase unit's result (`Written.parts`,
   the partitions it wrote), `holders` (for each partition, the units that hold it), the task
   arguments of the next phase (pickled `PartitionUnit`s), the commit markers and the
   `decisions.json` that `apply` reads, built by the real functions of
   stages/_shared/partitioned.py from results of the shape a run of that size returns (a unit
   writes every partition it has rows for: all of them once a shard has more documents than
   there are partitions). None of it depends on D except through the number of partitions.
4. `shuffle`: bytes each global stage writes between its phases, per document, and its
   docs/s, from real runs of `dedup_exact` and of `dedup_minhash` (verify on), each a job of
   its own over minhash_scale.py's synthetic corpus (~1.3 KB documents).

    python benchmarks/scale_sim.py [--shards 10000,100000] [--docs 10000000]
        [--global-shards 1000,10000] [--shuffle-docs 100000] [--only plan,resume,...]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
os.environ.setdefault("RAY_AUTH_MODE", "disabled")

from _memory import ProcessSampler  # noqa: E402
from pipeline.io import formats  # noqa: E402
from pipeline.io.layout import JobLayout, shard_name  # noqa: E402
from pipeline.ray_env import ensure_ray, shutdown_embedded  # noqa: E402
from pipeline.runner import run_job  # noqa: E402
from pipeline.spec import load_spec  # noqa: E402
from stages._shared.partitioned import (MAX_AUTO_PARTITIONS, PartitionUnit, Written,  # noqa: E402
                                        holders, shard_partitions, unit_file,
                                        write_shard_sources)
from stages.dedup_minhash import DOCS_PER_PARTITION  # noqa: E402

MiB = 2**20
LINKS_PER_FILE = 50_000
STAGES = """stages:
  - length_filter: {min_words: 5}
  - quality: {rules: [gopher, c4, fineweb]}
"""


def rss() -> int:
    return psutil.Process().memory_info().rss


def this_process() -> list[psutil.Process]:
    return [psutil.Process()]


# -- 1. planning ---------------------------------------------------------------------------------
def write_inputs(folder: Path, count: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    line = json.dumps({"text": "river bridge library harvest orchestra ferry museum"}) + "\n"
    for i in range(count):
        (folder / f"f{i:06d}.jsonl").write_text(line)


def write_spec(folder: Path, inputs: str, out: Path) -> Path:
    path = folder / "job.yaml"
    path.write_text(f"name: scale-sim\ninput: {{format: jsonl, paths: ['{inputs}']}}\n"
                    f"output: {{path: '{out}'}}\n{STAGES}")
    return path


def measure_plan(spec_path: Path, shards: int) -> dict:
    """Seconds to validate and to plan, and the Python memory the plan takes (what the
    runner holds for the whole job: `_Run.shards`)."""
    load_spec(spec_path)  # imports the stages once, so that they are not counted
    tracemalloc.start()
    started = time.perf_counter()
    spec = load_spec(spec_path)
    validated = time.perf_counter()
    plan = formats.get(spec.input.format).plan_shards(spec.input, spec.input_files)
    planned = time.perf_counter()
    del spec
    held, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert len(plan) == shards, (len(plan), shards)
    text = json.dumps({"fingerprint": "x" * 16, "shards": plan})
    return {"shards": shards, "validate_s": round(validated - started, 2),
            "plan_s": round(planned - validated, 2), "peak_mib": round(peak / MiB, 1),
            "plan_held_bytes_per_shard": round(held / shards),
            "plan_json_bytes_per_shard": round(len(text) / shards, 1)}


# -- 2. resuming a job whose shards are all committed ---------------------------------------------
def template_shard(folder: Path) -> JobLayout:
    """One real shard of the same stages, to clone: a run over one small file."""
    inputs = folder / "template-in" / "t.jsonl"
    inputs.parent.mkdir(parents=True)
    words = "river bridge library harvest orchestra ferry museum volunteer battery weather"
    inputs.write_text("".join(json.dumps({"text": " ".join(words.split()[: 3 + i % 8] * 6)})
                              + "\n" for i in range(40)))
    out = folder / "template-out"
    run_job(load_spec(write_spec(inputs.parent, str(inputs), out)), progress=False)
    return JobLayout(str(out))


def commit_clones(template: JobLayout, out: Path, plan: list[dict]) -> None:
    """Every shard of `plan` committed under `out`, as a finished run leaves them."""
    manifest = json.loads(Path(template.manifest(shard_name(0))).read_text())
    layout = JobLayout(str(out))
    for folder in ("data", "rejected", "manifests", "_work/originals"):
        (out / folder).mkdir(parents=True, exist_ok=True)
    for i, source in enumerate(plan):
        name = shard_name(i)
        if i % LINKS_PER_FILE == 0:  # a fresh copy to link to: ext4 allows 65,000 links
            originals = [shutil.copy(template.data(shard_name(0)),
                                     out / "_work" / "originals" / f"data-{i}.parquet"),
                         shutil.copy(template.rejected(shard_name(0)),
                                     out / "_work" / "originals" / f"rejected-{i}.parquet")]
        os.link(originals[0], layout.data(name))
        os.link(originals[1], layout.rejected(name))
        Path(layout.manifest(name)).write_text(json.dumps(dict(manifest, shard=name,
                                                               source=source)))


def measure_resume(spec_path: Path, out: Path, template: JobLayout) -> dict:
    spec = load_spec(spec_path)
    plan = formats.get(spec.input.format).plan_shards(spec.input, spec.input_files)
    commit_clones(template, out, plan)
    before = rss()
    with ProcessSampler(this_process, interval_s=0.05) as sampled:
        started = time.perf_counter()
        result = run_job(spec, progress=False)
        seconds = time.perf_counter() - started
    assert (result.shards, result.skipped, result.failed) == (len(plan), len(plan), [])
    report = measure_report(out)
    return {"shards": len(plan), "run_job_s": round(seconds, 1),
            "driver_rss_before_mib": round(before / MiB), "driver_rss_peak_mib":
            round(sampled.rss_peak / MiB), "manifest_bytes": Path(
                JobLayout(str(out)).manifest(shard_name(0))).stat().st_size, **report}


def measure_report(out: Path) -> dict:
    """`pipeline report OUT` alone, in a process of its own: the share of the driver's time
    and memory that rebuilding the report (DuckDB over every shard's files) takes."""
    started = time.perf_counter()
    proc = psutil.Popen([sys.executable, "-m", "pipeline", "report", str(out)], cwd=ROOT,
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with ProcessSampler(lambda: [proc] if proc.is_running() else [], interval_s=0.05) as sampled:
        code = proc.wait()
    assert code == 0, code
    return {"report_s": round(time.perf_counter() - started, 1),
            "report_rss_peak_mib": round(sampled.rss_peak / MiB)}


# -- 3. the global stages' bookkeeping -----------------------------------------------------------
def minhash_partitions(docs: int) -> int:
    return min(MAX_AUTO_PARTITIONS, max(1, math.ceil(docs / DOCS_PER_PARTITION)))


def measure_bookkeeping(docs: int, shards: int, partitions: int, scratch: Path) -> dict:
    """A shuffle of `shards` units into `partitions` and back to shards: what the driver
    holds and sends, from the real functions, with dense results (every unit writes every
    partition it can: all of them once a shard has more documents than partitions)."""
    per_shard = docs // shards
    written = min(partitions, per_shard)  # partitions a shard's rows land in
    folder = str(scratch / "phase")
    tracemalloc.start()
    started = time.perf_counter()
    # phase 1 (per shard): results as the runner rebuilds them from JSON (`run_phase`)
    first = [Written(**json.loads(json.dumps({"parts": [(i + k) % partitions
                                                        for k in range(written)]})))
             for i in range(shards)]
    sources = holders(first, folder, partitions)
    units = [PartitionUnit(p, sources[p], unit_file(folder, p)) for p in range(partitions)]
    # phase 2 (per partition) answers with the shards it wrote decisions for: at most those
    # whose rows it read
    second = [Written(parts=list(source.units)) for source in sources]
    decisions = holders(second, folder, shards)
    seconds = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    markers = sum(len(json.dumps({"result": dataclasses.asdict(r)})) for r in first + second)
    task_args = sum(len(pickle.dumps(u)) for u in units)
    path = scratch / "decisions.json"
    write_shard_sources(str(path), [shard_name(i) for i in range(shards)], decisions)
    return {"docs": docs, "shards": shards, "partitions": partitions,
            "docs_per_shard": per_shard, "driver_peak_mib": round(peak / MiB, 1),
            "driver_bytes_per_shard": round(peak / shards), "seconds": round(seconds, 2),
            "marker_mib": round(markers / MiB, 1), "task_args_mib": round(task_args / MiB, 1),
            "decisions_json_mib": round(path.stat().st_size / MiB, 2)}


# -- 4. bytes between the phases, per document ---------------------------------------------------
def measure_shuffle(docs: int, scratch: Path) -> list[dict]:
    """Each global stage as a job of its own over the same corpus (read -> stage -> write,
    2 workers): its wall time and docs/s, and the bytes of each phase's files per document."""
    from minhash_scale import write_corpus

    corpus = scratch / "shuffle-in"
    write_corpus(corpus, docs)
    ensure_ray()  # started before the clock: neither job pays Ray's start-up
    rows = []
    for stage in ("dedup_exact: {}", "dedup_minhash: {verify: true}"):
        name = stage.split(":")[0]
        out = scratch / f"shuffle-{name}"
        spec = scratch / f"{name}.yaml"
        spec.write_text(f"name: {name.replace('_', '-')}\n"
                        f"input: {{format: parquet, paths: ['{corpus}/*.parquet']}}\n"
                        f"output: {{path: '{out}'}}\nstages:\n  - {stage}\n")
        started = time.perf_counter()
        run_job(load_spec(spec), progress=False, keep_work=True)
        seconds = time.perf_counter() - started
        phases: dict[str, int] = {}
        for path in (out / "_work" / "global").rglob("*.parquet"):
            phases[path.parent.name] = phases.get(path.parent.name, 0) + path.stat().st_size
        rows.append({"stage": stage, "docs": docs, "job_s": round(seconds, 1),
                     "docs_per_s": round(docs / seconds),
                     "bytes_per_doc": {k: round(v / docs, 1) for k, v in sorted(phases.items())},
                     "total_bytes_per_doc": round(sum(phases.values()) / docs, 1)})
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    # two sizes: what grows with the shards is the difference
    parser.add_argument("--shards", default="10000,100000")
    parser.add_argument("--docs", type=int, default=10_000_000)
    # 100k shards x 1024 partitions would hold ~10^8 list entries: extrapolated (linear), not run
    parser.add_argument("--global-shards", default="1000,10000")
    parser.add_argument("--shuffle-docs", type=int, default=100_000)
    parser.add_argument("--only", default="plan,resume,global,shuffle")
    args = parser.parse_args(argv)
    parts = set(args.only.split(","))
    scratch = Path(tempfile.mkdtemp(prefix="scale-sim-"))
    try:
        template = template_shard(scratch) if "resume" in parts else None
        for shards in [int(n) for n in args.shards.split(",")] if parts & {"plan", "resume"} \
                else []:
            folder = scratch / f"shards-{shards}"
            started = time.perf_counter()
            write_inputs(folder / "in", shards)
            print(f"# {shards} input files written in {time.perf_counter() - started:.1f}s",
                  flush=True)
            spec_path = write_spec(folder, f"{folder}/in/*.jsonl", folder / "out")
            if "plan" in parts:
                print("plan", json.dumps(measure_plan(spec_path, shards)), flush=True)
            if "resume" in parts:
                print("resume", json.dumps(measure_resume(spec_path, folder / "out", template)),
                      flush=True)
            shutil.rmtree(folder)
        if "global" in parts:
            for shards in [int(s) for s in args.global_shards.split(",")]:
                for stage, partitions in (
                        ("dedup_exact", shard_partitions(None, shards)),
                        ("dedup_minhash", minhash_partitions(args.docs))):
                    figures = measure_bookkeeping(args.docs, shards, partitions, scratch)
                    print("global", stage, json.dumps(figures), flush=True)
        if "shuffle" in parts:
            for row in measure_shuffle(args.shuffle_docs, scratch):
                print("shuffle", json.dumps(row), flush=True)
    finally:
        shutdown_embedded()
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
