"""DataTrove's side of export_bench.py's tokenizer comparison; runs with the Python of
DataTrove's own venv and imports nothing from this repository.

Two measurements, one JSON line on stdout:
- `block`: DataTrove's DocumentTokenizer encoding and writing already-read documents
  (`write_unshuffled`, its `.ds` token file and index), CPU seconds of this process around it;
- `pipeline`: JsonlReader -> DocumentTokenizer on a LocalPipelineExecutor (one task, one
  worker, no shuffle), CPU seconds of this process around the run.
The tokenizer comes from a local tokenizer.json (nothing is downloaded).

    python _datatrove_tokenize_job.py --input DIR --tokenizer FILE --work DIR [--batch 1000]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from datatrove.data import Document
from datatrove.executor import LocalPipelineExecutor
from datatrove.pipeline.readers import JsonlReader
from datatrove.pipeline.tokens import DocumentTokenizer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", required=True, help="folder of *.jsonl files")
    parser.add_argument("--tokenizer", required=True, help="local tokenizer.json")
    parser.add_argument("--work", required=True)
    parser.add_argument("--batch", type=int, default=1000)
    args = parser.parse_args()
    work = Path(args.work)

    documents = [Document(text=row["text"], id=row["id"])
                 for path in sorted(Path(args.input).glob("*.jsonl"))
                 for row in map(json.loads, path.read_text().splitlines())]
    block = DocumentTokenizer(str(work / "block"), tokenizer_name_or_path=args.tokenizer,
                              batch_size=args.batch, shuffle_documents=False)
    block.tokenizer  # loaded before the clock starts
    started = time.process_time()
    written = block.write_unshuffled(iter(documents), "block.ds")
    block_cpu = time.process_time() - started

    started = time.process_time()
    LocalPipelineExecutor(pipeline=[
        JsonlReader(args.input, glob_pattern="*.jsonl"),
        DocumentTokenizer(str(work / "tokens"), tokenizer_name_or_path=args.tokenizer,
                          batch_size=args.batch, shuffle_documents=False),
    ], tasks=1, workers=1, logging_dir=str(work / "logs")).run()
    pipeline_cpu = time.process_time() - started
    stats = next(b for b in json.loads((work / "logs" / "stats.json").read_text())
                 if "TOKENIZER" in b["name"].upper())["stats"]["tokens"]
    print(json.dumps({"block_tokens": len(written), "block_cpu_seconds": block_cpu,
                      "pipeline_tokens": stats.get("total") if isinstance(stats, dict) else stats,
                      "pipeline_cpu_seconds": pipeline_cpu}))


if __name__ == "__main__":
    main()
