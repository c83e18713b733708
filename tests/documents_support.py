"""A finished job for the documents and what-if routes: a small corpus with awkward columns
(bytes, lists holding NaN and infinity, structs, an id with slashes) run through `url_filter` and
`length_filter` by the runner, registered in a control plane's store as a finished job.
The service runs without Ray (these routes read only the job's output)."""

from __future__ import annotations

import math
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.api.states import JobState
from pipeline.api.store import NewJob, SpecRecord
from tests.api_support import ServiceThread, service_config
from tests.browse_runs import rows, run_spec
from tests.conftest import make_text, write_spec

NO_RAY = "http://127.0.0.1:9"
JOB_ID = "docs-1a2b3c4d"
MIN_WORDS, MAX_WORDS = 20, 60
SLASHED_ID = "site/a b/100%"
SPEC = f"""name: docs
input: {{format: parquet, paths: ["corpus/*.parquet"]}}
output: {{path: out/docs}}
stages:
  - url_filter: {{banned_words: [casino]}}
  - length_filter: {{min_words: {MIN_WORDS}, max_words: {MAX_WORDS}}}
"""


def corpus_rows(start: int, n: int) -> list[dict]:
    out = []
    for i in range(start, start + n):
        out.append({
            "id": SLASHED_ID if i == 7 else f"d{i:03d}",
            "text": make_text(i, 5 + (i * 37) % 90),
            "url": f"https://{'casino' if i % 11 == 0 else f'site{i % 4}'}.example/page/{i}",
            "score": i / 100,
            "vector": [i / 10, math.nan if i % 5 == 0 else -math.inf],
            "blob": bytes([i % 256, 0, 255]),
            "tags": [f"t{i % 3}", "x"] if i % 2 else [],
            "meta": {"n": i, "label": f"m{i % 4}"},
        })
    return out


def build_job_output(root: Path) -> Path:
    """The job's output under `root` (a storage root), built by the runner."""
    schema = pa.schema([("id", pa.string()), ("text", pa.string()), ("url", pa.string()),
                        ("score", pa.float64()), ("vector", pa.list_(pa.float64())),
                        ("blob", pa.binary()),
                        ("tags", pa.list_(pa.string())),
                        ("meta", pa.struct([("n", pa.int64()), ("label", pa.string())]))])
    (root / "corpus").mkdir(parents=True, exist_ok=True)
    for part, (start, n) in enumerate([(0, 90), (90, 70)]):
        pq.write_table(pa.Table.from_pylist(corpus_rows(start, n), schema),
                       root / "corpus" / f"part-{part}.parquet", row_group_size=25)
    spec = write_spec(root / "docs.yaml", SPEC)
    return run_spec(spec, root / "out" / "docs")


def register_finished_job(service, output: Path, job_id: str = JOB_ID) -> str:
    """A SUCCEEDED job writing to `output` in the service's own store, with its progress read
    from the output as the service reads it."""
    store = service.app.state.service.store
    store.create(NewJob(id=job_id, name="docs", submitter="tests", client=None,
                        output=str(output), gpus=0,
                        spec=SpecRecord(text=SPEC, resolved=SPEC, path="", base_dir="")))
    store.transition(job_id, JobState.RUNNING, "running")
    service.app.state.service.refresh_progress(store.get(job_id))
    store.transition(job_id, JobState.SUCCEEDED, "done")
    return job_id


def start_service(tmp: Path, root: Path) -> ServiceThread:
    return ServiceThread(service_config(tmp, None, root, ray_address=NO_RAY), reconcile=False)


def all_rows(output: Path) -> list[dict]:
    """Every document, kept ones first, in file order, by plain DuckDB queries."""
    return [r | {"kept": True} for r in rows(output, "data")] + \
        [r | {"kept": False} for r in rows(output, "rejected")]
