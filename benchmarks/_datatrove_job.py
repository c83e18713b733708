"""DataTrove's side of compare_datatrove.py; runs with the Python of DataTrove's own venv and
imports nothing from this repository.

The recipe is FineWeb's, cut to the stages compare_datatrove.py runs on our side too:
WarcReader -> Trafilatura -> LanguageFilter(en) -> GopherRepetitionFilter ->
GopherQualityFilter -> ParquetWriter, then MinHash dedup in DataTrove's four steps
(signatures, buckets, cluster, filter -> ParquetWriter). Every step runs on a
LocalPipelineExecutor with `--workers` workers; `tasks` is `--workers` too, except for the
buckets step, which DataTrove requires to have a multiple of num_buckets tasks (14, still on
`--workers` workers), and the cluster step, which is one task by design.

Defaults are DataTrove's own (Trafilatura favour_precision=True, timeout 1 s, deduplicate;
LanguageFilter threshold 0.65; Gopher thresholds; MinhashConfig 5-grams, 14 buckets x 8
hashes, 64-bit xxhash), with one change: the language model is the local file given as
`--lid-model` instead of lid.176.bin downloaded on first use, so nothing is fetched.

    python _datatrove_job.py --warc-dir W --work-dir D --output-dir O --lid-model M
                             [--workers 2] [--result result.json]

Writes a JSON result: seconds per step and each step's stats (in/out/dropped per block).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from datatrove.executor import LocalPipelineExecutor
from datatrove.pipeline.dedup import (MinhashDedupBuckets, MinhashDedupCluster,
                                      MinhashDedupFilter, MinhashDedupSignature)
from datatrove.pipeline.dedup.minhash import MinhashConfig
from datatrove.pipeline.extractors import Trafilatura
from datatrove.pipeline.filters import (GopherQualityFilter, GopherRepetitionFilter,
                                        LanguageFilter)
from datatrove.pipeline.readers import ParquetReader, WarcReader
from datatrove.pipeline.writers import ParquetWriter
from datatrove.utils.lid import FT176LID


class LocalFT176LID(FT176LID):
    """FT176LID that loads a fastText model from a local file instead of downloading it."""

    def __init__(self, languages: list[str] | None, path: str):
        super().__init__(languages)
        self.path = path

    @property
    def model(self):
        if self._model is None:
            from fasttext.FastText import _FastText
            self._model = _FastText(self.path)
        return self._model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warc-dir", required=True)
    parser.add_argument("--work-dir", required=True, help="intermediate files and logs")
    parser.add_argument("--output-dir", required=True, help="kept documents (Parquet)")
    parser.add_argument("--lid-model", required=True, help="local lid.176 fastText model")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--tasks", type=int, default=None, help="tasks of the per-file steps "
                        "(default --workers); DataTrove hands them to the workers as they free up")
    parser.add_argument("--result", default=None, help="JSON file for timings and stats")
    args = parser.parse_args()

    work = Path(args.work_dir)
    language = LanguageFilter(languages=["en"])
    language.model = LocalFT176LID(["en"], args.lid_model)
    minhash = MinhashConfig()
    workers = args.workers
    tasks = args.tasks or workers

    steps = {
        "filter": ([
            WarcReader(args.warc_dir, glob_pattern="*.warc.gz"),
            Trafilatura(),
            language,
            GopherRepetitionFilter(),
            GopherQualityFilter(),
            ParquetWriter(str(work / "filtered")),
        ], tasks),
        "minhash_signatures": ([
            ParquetReader(str(work / "filtered")),
            MinhashDedupSignature(output_folder=str(work / "signatures"), config=minhash),
        ], workers),
        "minhash_buckets": ([
            MinhashDedupBuckets(input_folder=str(work / "signatures"),
                                output_folder=str(work / "buckets"), config=minhash),
        ], minhash.num_buckets),
        "minhash_cluster": ([
            MinhashDedupCluster(input_folder=str(work / "buckets"),
                                output_folder=str(work / "remove_ids"), config=minhash),
        ], 1),
        "minhash_filter": ([
            ParquetReader(str(work / "filtered")),
            MinhashDedupFilter(input_folder=str(work / "remove_ids")),
            ParquetWriter(args.output_dir),
        ], workers),
    }
    result = {"seconds": {}, "stats": {}}
    for name, (pipeline, tasks) in steps.items():
        logs = work / "logs" / name
        started = time.perf_counter()
        LocalPipelineExecutor(pipeline=pipeline, tasks=tasks, workers=min(tasks, workers),
                              logging_dir=str(logs)).run()
        result["seconds"][name] = time.perf_counter() - started
        result["stats"][name] = _stats(logs / "stats.json")
    if args.result:
        Path(args.result).write_text(json.dumps(result, indent=1))


def _stats(path: Path) -> list[dict]:
    """Per block: name, seconds (summed over tasks) and its counters (total, forwarded,
    dropped, dropped reasons...)."""
    if not path.exists():
        return []
    blocks = []
    for block in json.loads(path.read_text()):
        counters = {key: value.get("total", value) if isinstance(value, dict) else value
                    for key, value in block.get("stats", {}).items()
                    if not key.startswith(("doc_len", "length"))}
        time_stats = block.get("time_stats") or {}
        blocks.append({"name": block.get("name"), "seconds": time_stats.get("total"),
                       "counters": counters})
    return blocks


if __name__ == "__main__":
    main()
