"""Annotate overhead: documents/s through the `annotate` stage vs a raw generate loop of the
same engine, model and prompts, in one invocation.

The model is a small GPT-2 with random weights built here (nothing is downloaded); the engine
is `transformers` on the CPU. The raw loop hands the engine the exact prompts the stage makes
(built before its clock starts: same truncation, template, format instructions and sampling)
and does nothing else; the stage also picks the rows, cuts them to `max_input_tokens`, builds
the prompts, parses every answer and builds its typed columns. Runs alternate (raw, stage,
raw, stage, ...) batch by batch and the best time of each batch is kept, to damp noise from
other processes; CPU seconds of this process are reported beside wall seconds, since on a
shared machine they move less with the load.

    python benchmarks/annotate_bench.py [--docs 48] [--max-tokens 48] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("RAY_AUTH_MODE", "disabled")

from stages._annotate.answer import parse_answer  # noqa: E402
from stages.annotate import Annotate, AnnotateConfig  # noqa: E402
from tests.conftest import WORDS, make_text  # noqa: E402
from tests.tiny_lm import build_tiny_lm  # noqa: E402


def corpus(docs: int) -> pa.Table:
    """Pages of 60 to 400 words: some past the token budget, most within it."""
    texts = [". ".join(make_text(i * 5 + k, 10 + (i + k) % 9) for k in range(4 + i % 30)) + "."
             for i in range(docs)]
    return pa.table({"id": [f"d{i}" for i in range(docs)], "text": texts})


def batches(table: pa.Table, rows: int) -> list[pa.Table]:
    return [table.slice(start, rows) for start in range(0, table.num_rows, rows)]


def stage_prompts(stage: Annotate, table: pa.Table) -> list:
    """The prompts `stage.process` sends for this batch (every row has text here)."""
    rows = np.arange(table.num_rows)
    texts, _ = stage.truncator.cut(table["text"].to_pylist())
    return stage._chats(table, rows, texts)


def timed(fn) -> tuple[object, float, float]:
    """fn's result, wall seconds and this process's CPU seconds."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    return result, time.perf_counter() - wall, time.process_time() - cpu


def measure(stage: Annotate, tables, repeats: int) -> dict:
    """Per batch, the raw loop then the stage, `repeats` times; the best time of each batch
    and way, summed. Interleaving batch by batch keeps both ways under the same load."""
    prompts = [stage_prompts(stage, t) for t in tables]  # the raw loop's, before any clock
    best = {"raw": [[np.inf, np.inf] for _ in tables], "stage": [[np.inf, np.inf] for _ in tables]}
    docs = {"raw": 0, "stage": 0}
    tokens, same = 0, True
    for repeat in range(repeats):
        for i, (table, batch) in enumerate(zip(tables, prompts)):
            generations, wall, cpu = timed(lambda: stage.engine.generate(batch, stage.sampling))
            best["raw"][i] = [min(best["raw"][i][0], wall), min(best["raw"][i][1], cpu)]
            out, wall, cpu = timed(lambda: stage.process(table))
            best["stage"][i] = [min(best["stage"][i][0], wall), min(best["stage"][i][1], cpu)]
            if repeat == 0:
                docs["raw"] += len(generations)
                docs["stage"] += out.counters["annotated"]
                tokens += sum(g.n_tokens for g in generations)
                parsed = [parse_answer(g.text, g.finish_reason, stage.fields, stage.prefix)[1]
                          for g in generations]  # the same answers, read the same way?
                same &= parsed == out.table["annotate_error"].to_pylist()
    return {way: (docs[way], sum(b[0] for b in best[way]), sum(b[1] for b in best[way]))
            for way in best} | {"tokens": tokens, "same": same}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=48)
    parser.add_argument("--batch-rows", type=int, default=16)
    parser.add_argument("--max-tokens", type=int, default=48)
    parser.add_argument("--max-input-tokens", type=int, default=256)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="annotate-bench-") as tmp:
        model = build_tiny_lm(Path(tmp) / "model", [" ".join(WORDS), "the a of and is . ,"],
                              eos_logit=0.0, hidden=args.hidden, layers=args.layers,
                              context=1024)
        stage = Annotate(AnnotateConfig.model_validate({
            "preset": "edu", "engine": "transformers", "model": str(model),
            "max_tokens": args.max_tokens, "max_input_tokens": args.max_input_tokens,
            "temperature": 1.0, "seed": 1, "transformers": {"batch_size": 8}}))
        stage.setup()
        tables = batches(corpus(args.docs), args.batch_rows)
        result = measure(stage, tables, args.repeats)
        (raw_docs, raw_s, raw_cpu), (stage_docs, stage_s, stage_cpu) = \
            result["raw"], result["stage"]
        truncated = sum(stage.truncator.cut(t["text"].to_pylist())[1] for t in tables)
        print(f"model: GPT-2 {args.layers} layers x {args.hidden} hidden, random weights, CPU, "
              f"torch threads {stage.engine.torch.get_num_threads()}")
        print(f"work: {args.docs} docs ({truncated} cut to {args.max_input_tokens} tokens), "
              f"preset edu, max_tokens {args.max_tokens}, batches of {args.batch_rows} rows, "
              f"best of {args.repeats} per batch; {result['tokens']} answer tokens per pass, "
              f"answers {'the same' if result['same'] else 'DIFFERENT'} both ways")
        print(f"raw engine loop:  {raw_docs / raw_s:7.2f} docs/s ({raw_s:.2f} s wall, "
              f"{raw_cpu:.2f} s CPU, {result['tokens'] / raw_s:.1f} tok/s)")
        print(f"annotate stage:   {stage_docs / stage_s:7.2f} docs/s ({stage_s:.2f} s wall, "
              f"{stage_cpu:.2f} s CPU)")
        print(f"ratio (stage / raw docs/s): wall {raw_s / stage_s * stage_docs / raw_docs:.3f}, "
              f"CPU {raw_cpu / stage_cpu * stage_docs / raw_docs:.3f} (baseline raw engine loop)")

if __name__ == "__main__":
    main()
