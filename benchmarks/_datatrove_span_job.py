"""DataTrove's side of span_dedup_bench.py: its SentenceDedup (C4's n-sentence spans) in its
three steps, run with the Python of DataTrove's own venv; imports nothing from this
repository.

    JsonlReader -> SentenceDedupSignature        (one task per input file)
    SentenceFindDedups                           (one task: DataTrove's design)
    JsonlReader -> SentenceDedupFilter -> ParquetWriter   (one task per input file)

Options as the benchmark sets ours: `--sentences` per span (`--lines` splits on newlines
instead, DataTrove's paragraph mode), `--min-doc-words` for a document that lost spans, no
minimum sentence count (ours has none). Sentences come from DataTrove's English tokenizer
(spaCy's blank "en" pipeline with its rule-based sentencizer: no model is fetched).

    python _datatrove_span_job.py --input-dir I --work-dir D --output-dir O
        [--sentences 3] [--lines] [--min-doc-words 50] [--workers 2] [--result result.json]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from datatrove.executor import LocalPipelineExecutor
from datatrove.pipeline.dedup.sentence_dedup import (SentDedupConfig, SentenceDedupFilter,
                                                     SentenceDedupSignature,
                                                     SentenceFindDedups)
from datatrove.pipeline.readers import JsonlReader
from datatrove.pipeline.writers import ParquetWriter


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input-dir", required=True, help="JSONL files (id, text)")
    parser.add_argument("--work-dir", required=True)
    parser.add_argument("--output-dir", required=True)
    parser.add_argument("--sentences", type=int, default=3)
    parser.add_argument("--lines", action="store_true", help="spans are lines, not sentences")
    parser.add_argument("--min-doc-words", type=int, default=50)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--result", default=None)
    args = parser.parse_args()

    work = Path(args.work_dir)
    files = len(list(Path(args.input_dir).glob("*.jsonl")))
    config = SentDedupConfig(n_sentences=1 if args.lines else args.sentences,
                             split_sentences=not args.lines, min_doc_words=args.min_doc_words,
                             min_num_sentences=0)
    steps = {
        "signatures": ([JsonlReader(args.input_dir, glob_pattern="*.jsonl"),
                        SentenceDedupSignature(output_folder=str(work / "sigs"),
                                               config=config)], files),
        "find_dedups": ([SentenceFindDedups(data_folder=str(work / "sigs"),
                                            output_folder=str(work / "dups"), config=config)],
                        1),
        "filter": ([JsonlReader(args.input_dir, glob_pattern="*.jsonl"),
                    SentenceDedupFilter(data_folder=str(work / "dups"), config=config),
                    ParquetWriter(args.output_dir)], files),
    }
    result = {"seconds": {}}
    for name, (pipeline, tasks) in steps.items():
        started = time.perf_counter()
        LocalPipelineExecutor(pipeline=pipeline, tasks=tasks, workers=min(tasks, args.workers),
                              logging_dir=str(work / "logs" / name)).run()
        result["seconds"][name] = time.perf_counter() - started
    if args.result:
        Path(args.result).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
