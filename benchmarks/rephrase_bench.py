"""Rephrase overhead: output tokens/s through the `rephrase` stage vs a raw loop of the same
engine on the same prompts, in one invocation.

The model is a small GPT-2 with random weights, built here (nothing is downloaded); the engine
is `transformers` on the CPU. The raw loop hands the engine the prompts the stage would make
(same chunks, same template, same seed), batch by batch, and does nothing else; the stage
also chunks, renders prompts, runs the post-checks (fastText language check included) and
builds its output table. Both produce the same generations, so the token counts match.
Runs alternate (raw, stage, raw, stage, ...) and the best of each is reported, to damp noise
from other processes on the machine. `--runner` adds the whole job through `run_job` (Ray
workers, model load per worker, Parquet out), whose start-up dominates at this size.

    python benchmarks/rephrase_bench.py [--docs 48] [--max-tokens 48] [--repeats 3] [--runner]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("RAY_AUTH_MODE", "disabled")

from stages._rephrase.chunking import Chunker  # noqa: E402
from stages._rephrase.engines import Sampling  # noqa: E402
from stages._rephrase.engines.transformers import TransformersEngine  # noqa: E402
from stages._rephrase.prompts import STYLES  # noqa: E402
from stages.rephrase import Rephrase, RephraseConfig  # noqa: E402
from tests.conftest import WORDS, make_text  # noqa: E402
from tests.tiny_lm import build_tiny_lm  # noqa: E402


def corpus(docs: int) -> pa.Table:
    texts = [". ".join(make_text(i * 5 + k, 12 + (i + k) % 9) for k in range(6)) + "."
             for i in range(docs)]
    return pa.table({"id": [f"d{i}" for i in range(docs)], "text": texts,
                     "lang": ["en"] * docs})


def batches(table: pa.Table, rows: int) -> list[pa.Table]:
    return [table.slice(start, rows) for start in range(0, table.num_rows, rows)]


def raw_loop(engine, tables, config: RephraseConfig) -> tuple[int, float]:
    """The engine alone, on the prompts the stage makes (prepared before the clock starts)."""
    chunker = Chunker(config.chunk_tokens, engine.chunking_tokenizer())
    template = STYLES[config.style]
    sampling = Sampling(config.temperature, config.top_p, config.max_tokens, config.seed)
    prompts = [[template.chat(chunk, {}) for chunks in chunker.split(t["text"].to_pylist())
                for chunk in chunks] for t in tables]
    started = time.perf_counter()
    tokens = sum(g.n_tokens for batch in prompts for g in engine.generate(batch, sampling))
    return tokens, time.perf_counter() - started


def through_stage(stage: Rephrase, tables) -> tuple[int, float]:
    started = time.perf_counter()
    outputs = [stage.process(t) for t in tables]
    seconds = time.perf_counter() - started
    tokens = sum(v or 0 for out in outputs for v in out.table["rephrase_tokens"].to_pylist())
    return tokens, seconds


def through_runner(folder: Path, table: pa.Table, options: str, batch_rows: int):
    from pipeline.runner import run_job
    from pipeline.spec import parse_spec

    pq.write_table(table, folder / "in.parquet")
    spec = parse_spec(f"""\
name: rephrase-bench
input: {{format: parquet, paths: [in.parquet], shard_rows: {table.num_rows}}}
output: {{path: out}}
batch_rows: {batch_rows}
stages:
  - rephrase: {options}
""", base_dir=str(folder))
    started = time.perf_counter()
    run_job(spec, progress=False, overwrite=True)
    seconds = time.perf_counter() - started
    out = pa.concat_tables([pq.read_table(p, columns=["rephrase_tokens"])
                            for d in ("data", "rejected")
                            for p in sorted((folder / "out" / d).glob("*.parquet"))])
    return sum(v or 0 for v in out["rephrase_tokens"].to_pylist()), seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=48)
    parser.add_argument("--batch-rows", type=int, default=16)
    parser.add_argument("--max-tokens", type=int, default=48)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--runner", action="store_true", help="also time the job via run_job")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="rephrase-bench-") as tmp:
        folder = Path(tmp)
        model = build_tiny_lm(folder / "model", [" ".join(WORDS), "the a of and is . ,"],
                              eos_logit=0.0, hidden=args.hidden, layers=args.layers)
        options = (f"{{engine: transformers, model: {model}, style: wikipedia, chunk_tokens: "
                   f"64, max_tokens: {args.max_tokens}, temperature: 1.0, seed: 1, "
                   "transformers: {batch_size: 8}}")
        config = RephraseConfig.model_validate({
            "engine": "transformers", "model": str(model), "style": "wikipedia",
            "chunk_tokens": 64, "max_tokens": args.max_tokens, "temperature": 1.0, "seed": 1,
            "transformers": {"batch_size": 8}})
        engine = TransformersEngine(str(model), config.transformers)
        stage = Rephrase(config)
        stage.setup()
        tables = batches(corpus(args.docs), args.batch_rows)
        raw_runs, stage_runs = [], []
        for _ in range(args.repeats):
            raw_runs.append(raw_loop(engine, tables, config))
            stage_runs.append(through_stage(stage, tables))
        raw_tokens, raw_s = min(raw_runs, key=lambda r: r[1])
        stage_tokens, stage_s = min(stage_runs, key=lambda r: r[1])
        raw_rate, stage_rate = raw_tokens / raw_s, stage_tokens / stage_s
        print(f"model: GPT-2 {args.layers} layers x {args.hidden} hidden, random weights, CPU, "
              f"torch threads {engine.torch.get_num_threads()}")
        print(f"prompts: {args.docs} docs, chunk_tokens 64, max_tokens {args.max_tokens}, "
              f"batches of {args.batch_rows} rows, best of {args.repeats}")
        print(f"output tokens: raw {raw_tokens}, stage {stage_tokens} "
              f"({'same' if raw_tokens == stage_tokens else 'DIFFERENT'})")
        print(f"raw engine loop:  {raw_rate:8.1f} tok/s ({raw_s:.2f} s)")
        print(f"rephrase stage:   {stage_rate:8.1f} tok/s ({stage_s:.2f} s)  "
              f"ratio {stage_rate / raw_rate:.3f} (baseline raw engine loop)")
        if args.runner:
            tokens, seconds = through_runner(folder, corpus(args.docs), options,
                                             args.batch_rows)
            print(f"run_job (Ray):    {tokens / seconds:8.1f} tok/s ({seconds:.2f} s, worker "
                  f"start-up and model load included)  ratio {tokens / seconds / raw_rate:.3f}")


if __name__ == "__main__":
    main()
