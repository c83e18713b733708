"""`pipeline export` at 1M documents, and `tokenize` against DataTrove's DocumentTokenizer.

Part `export`: a corpus of `--docs` short documents (25..55 words drawn from a fixed list,
~250 bytes, ~55 all-MiniLM-L6-v2 tokens each; 4 Parquet files) goes through a real job
(`tokenize: {ids: true}`, all-MiniLM-L6-v2's tokenizer.json with truncation off), then through
`pipeline export` as a subprocess in several settings. Per setting: wall seconds, MB written
per second (all files under --out, manifest included), the CPU seconds of the export's
processes (start-up included) and MB per CPU second, and the peak memory of the export's
processes (RSS summed over its process tree, sampled every 0.1 s; with --ray that tree holds
the embedded Ray's raylet, GCS and workers).

Part `datatrove`: the main text of the real pages under $CURATION_EVAL_DIR/extraction
(benchmarks/_eval_pages.py), `--copies` times, as JSONL; both sides encode them with the same
tokenizer file, one encoding thread (TOKENIZERS_PARALLELISM=false), no BOS/EOS option (the
tokenizer's post-processor: [CLS] ... [SEP]):
- ours: a job with `tokenize: {ids: true}`; tokens/s per core = tokens / the stage's own
  seconds summed over shards (the manifests' per-stage time: encode, id lists, reasons);
- DataTrove 0.10.1 in its own venv (benchmarks/_datatrove_tokenize_job.py): JsonlReader ->
  DocumentTokenizer, one task; tokens / the DocumentTokenizer block's own seconds (encode and
  its .ds writes);
- and end to end, one process each, per CPU second: ours = `pipeline export --format
  megatron --reencode --local` from that job (read Parquet, encode, write .bin/.idx), theirs =
  the whole DataTrove process (read JSONL, encode, write .ds).
The token totals of the two sides must agree.

    python benchmarks/export_bench.py [--part export|datatrove|both] [--docs 1000000]
        [--work DIR] [--dt-venv /work/tmp/datatrove-0.10.1-venv] [--copies 4]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._memory import ProcessSampler, process_tree  # noqa: E402

WORDS = ("river bridge library harvest orchestra ferry museum volunteer battery weather council "
         "wheat solar bread garden teacher station market island forest committee recommended "
         "opening hours swimming pool summer local farmers reported early because unusually "
         "warm spring researchers measured growth under three irrigation schedules engineers "
         "tested prototype through thousand charging cycles").split()
EXPORTS = [  # name, extra arguments
    ("megatron, job's ids, job order", ["--format", "megatron"]),
    ("megatron, job's ids, shuffled", ["--format", "megatron", "--shuffle"]),
    ("megatron, re-encoded, shuffled", ["--format", "megatron", "--shuffle", "--reencode"]),
    ("numpy, job's ids, shuffled", ["--format", "numpy", "--shuffle"]),
    ("jsonl, shuffled", ["--format", "jsonl", "--shuffle"]),
    ("megatron, job's ids, shuffled, Ray", ["--format", "megatron", "--shuffle", "--ray"]),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=["export", "datatrove", "both"], default="both")
    parser.add_argument("--docs", type=int, default=1_000_000)
    parser.add_argument("--file-size", default="64MB")
    parser.add_argument("--work", help="scratch folder (default: a new temporary one)")
    parser.add_argument("--dt-venv", default="/work/tmp/datatrove-0.10.1-venv")
    parser.add_argument("--copies", type=int, default=4, help="times each page is repeated")
    parser.add_argument("--eval", help="eval folder (default ../shared/eval)")
    args = parser.parse_args()
    work = Path(args.work or tempfile.mkdtemp(prefix="export-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    tokenizer = whole_document_tokenizer(work)
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start "
          "(shared with other work: timings are indicative)")
    if args.part in ("export", "both"):
        export_part(work, tokenizer, args.docs, args.file_size)
    if args.part in ("datatrove", "both"):
        datatrove_part(work, tokenizer, Path(args.dt_venv), args.copies, args.eval)


def whole_document_tokenizer(work: Path) -> Path:
    """all-MiniLM-L6-v2's tokenizer.json with its 128-token truncation and padding removed,
    so that both sides (and DataTrove, which keeps a file's truncation) count whole texts."""
    from tests.tiny_models import minilm_folder

    spec = json.loads((minilm_folder() / "tokenizer.json").read_text())
    spec["truncation"], spec["padding"] = None, None
    path = work / "tokenizer.json"
    path.write_text(json.dumps(spec))
    return path


# -- part 1: export at 1M documents -------------------------------------------------------------
def export_part(work: Path, tokenizer: Path, docs: int, file_size: str) -> None:
    job = work / "job" / "out"
    if not (job / "report").exists():
        corpus(work / "job" / "in", docs)
        spec = work / "job" / "job.yaml"
        spec.write_text(f"name: export-bench\ninput: {{format: parquet, paths: [in/*.parquet], "
                        f"shard_rows: 125000}}\noutput: {{path: out}}\nstages:\n"
                        f"  - tokenize: {{tokenizer: {tokenizer}, ids: true}}\n")
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "pipeline.cli", "run", str(spec),
                        "--no-progress"], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
        print(f"job (tokenize, ids: true) on {docs:,} documents: "
              f"{time.perf_counter() - started:.0f} s")
    kept = sum(p.stat().st_size for p in (job / "data").glob("*.parquet"))
    print(f"{docs:,} documents, {kept / 2**20:.0f} MiB of kept Parquet; --file-size {file_size}")
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import pipeline.cli, pipeline.export.run"],
                   cwd=ROOT, check=True)
    print(f"process start and imports: {time.perf_counter() - started:.1f} s (in every wall "
          "time below)")
    print(f"{'export':<38}{'wall s':>8}{'CPU s':>8}{'MB/s written':>14}{'MB/CPU s':>10}"
          f"{'MB written':>12}{'peak RSS MiB':>14}{'files':>7}")
    for name, extra in EXPORTS:
        out = work / "exports" / name.replace(", ", "_").replace(" ", "-").replace("'", "")
        shutil.rmtree(out, ignore_errors=True)
        command = [sys.executable, "-m", "pipeline.cli", "export", str(job), "--tokenizer",
                   str(tokenizer), "--out", str(out), "--file-size", file_size, *extra]
        if "--ray" not in extra:
            command.append("--local")
        env = dict(os.environ, RAY_AUTH_MODE="disabled")
        started = time.perf_counter()
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True)
        # the export's processes: with --ray, its embedded Ray (raylet, GCS, workers) too
        with ProcessSampler(process_tree(psutil.Process(process.pid)), interval_s=0.1,
                            cpu_from_start=True) as sampled:
            output, _ = process.communicate()
        wall = time.perf_counter() - started
        if process.returncode:
            raise SystemExit(f"{name}: export failed\n{output}")
        written = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
        files = len(json.loads((out / "manifest.json").read_text())["files"])
        cpu = sampled.cpu_seconds
        print(f"{name:<38}{wall:>8.1f}{cpu:>8.1f}{written / 1e6 / wall:>14.1f}"
              f"{written / 1e6 / cpu:>10.1f}{written / 1e6:>12.1f}"
              f"{sampled.rss_peak / 2**20:>14.0f}{files:>7}")


def corpus(folder: Path, docs: int, files: int = 4) -> None:
    rng = random.Random(0)
    folder.mkdir(parents=True, exist_ok=True)
    per_file = -(-docs // files)
    for f in range(files):
        rows = range(f * per_file, min(docs, (f + 1) * per_file))
        texts = [" ".join(rng.choices(WORDS, k=rng.randint(25, 55))) + "." for _ in rows]
        pq.write_table(pa.table({"id": [f"d{i:08d}" for i in rows], "text": texts}),
                       folder / f"part-{f}.parquet", row_group_size=25_000)


# -- part 2: tokenize against DataTrove's DocumentTokenizer -------------------------------------
def datatrove_part(work: Path, tokenizer: Path, dt_venv: Path, copies: int,
                   eval_folder: str | None, batch: int = 1000) -> None:
    from benchmarks._eval_pages import eval_dir, page_texts

    os.environ["TOKENIZERS_PARALLELISM"] = "false"  # one encoding thread, here and below
    texts = page_texts(eval_dir(eval_folder), min_words=1) * copies
    folder = work / "pages"
    shutil.rmtree(folder, ignore_errors=True)
    (folder / "in").mkdir(parents=True)
    per_file = -(-len(texts) // 4)
    for f in range(4):
        with open(folder / "in" / f"pages-{f}.jsonl", "w") as handle:
            for i in range(f * per_file, min(len(texts), (f + 1) * per_file)):
                handle.write(json.dumps({"id": f"p{i}", "text": texts[i]}) + "\n")
    env = dict(os.environ, RAY_AUTH_MODE="disabled")

    ours_tokens, stage_cpu = stage_cpu_seconds(texts, tokenizer, batch)
    dt = json.loads(subprocess.run(
        [str(dt_venv / "bin" / "python"), str(ROOT / "benchmarks" / "_datatrove_tokenize_job.py"),
         "--input", str(folder / "in"), "--tokenizer", str(tokenizer), "--work",
         str(folder / "datatrove"), "--batch", str(batch)], env=env, check=True,
        capture_output=True, text=True).stdout.strip().splitlines()[-1])
    if not dt["block_tokens"] == dt["pipeline_tokens"] == ours_tokens:
        raise SystemExit(f"token totals differ: ours {ours_tokens}, DataTrove {dt}")

    # end to end: a job keeps the texts as Parquet, then export encodes them in one process
    spec = folder / "job.yaml"
    spec.write_text("name: pages\ninput: {format: jsonl, paths: [in/*.jsonl]}\n"
                    "output: {path: out}\nstages:\n  - length_filter: {min_words: 0}\n")
    subprocess.run([sys.executable, "-m", "pipeline.cli", "run", str(spec), "--no-progress"],
                   cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
    startup = child_cpu([sys.executable, "-c", "import pipeline.cli, pipeline.export.run, "
                         "stages.tokenize, tokenizers, ray, pyarrow.dataset"], env)
    export_cpu = child_cpu([sys.executable, "-m", "pipeline.cli", "export", str(folder / "out"),
                            "--format", "megatron", "--tokenizer", str(tokenizer), "--local",
                            "--cpus", "1", "--out", str(folder / "export")], env) - startup
    exported = json.loads((folder / "export" / "manifest.json").read_text())["tokens"]

    print(f"\n{len(texts):,} page texts ({copies} x {len(texts) // copies} pages), "
          f"{sum(map(len, texts)) / 1e6:.1f}M characters, {ours_tokens:,} tokens, batches of "
          f"{batch}, one encoding thread, CPU time")
    rows = [
        ("ours: tokenize stage, Tokenize.process (ids: true)", ours_tokens / stage_cpu),
        ("DataTrove: DocumentTokenizer.write_unshuffled (encode + .ds)",
         dt["block_tokens"] / dt["block_cpu_seconds"]),
        ("ours: pipeline export --format megatron (read, encode, write)",
         exported / export_cpu),
        ("DataTrove: JsonlReader + DocumentTokenizer (executor run)",
         dt["pipeline_tokens"] / dt["pipeline_cpu_seconds"]),
    ]
    print(f"{'side':<66}{'tokens/s per core':>18}")
    for name, rate in rows:
        print(f"{name:<66}{rate:>18,.0f}")
    print(f"(export: CPU of the process less {startup:.1f} s of start-up and imports)")


def stage_cpu_seconds(texts: list[str], tokenizer: Path, batch: int) -> tuple[int, float]:
    """Tokens and CPU seconds of `Tokenize.process` over the texts, in batches."""
    from stages.tokenize import Tokenize, TokenizeConfig

    stage = Tokenize(TokenizeConfig(tokenizer=str(tokenizer), ids=True))
    stage.setup()
    tables = [pa.table({"text": pa.array(texts[i:i + batch], pa.string())})
              for i in range(0, len(texts), batch)]
    tokens, started = 0, time.process_time()
    for table in tables:
        tokens += sum(stage.process(table).table["n_tokens"].to_pylist())
    return tokens, time.process_time() - started


def child_cpu(command: list[str], env: dict) -> float:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(command, cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)


if __name__ == "__main__":
    main()
