"""Runs a validated spec on Ray, shard by shard.

Why per-shard units on a worker pool rather than one Ray Data stream: a shard (a file, a
row-group range or a byte range) is the unit of resume, accounting and commit. Each worker
process sets a segment's stages up once, then streams a shard through them batch by batch
and commits `data/`, `rejected/` and the manifest together. The driver only hands out shard names and
collects manifests; documents never pass through it.

The stage list is cut into segments at global stages. Segment 0 reads the input; a global
stage runs its phases over every shard the previous segment committed (under `_work/`),
and the next segment applies its decisions as it streams each shard on. Segments are also
cut where the resources a worker needs change (CPU stages, then a GPU stage): those run as
separate pools at the same time, each shard moving on as soon as it is committed
(`worker_pools.py`).
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import posixpath
import time
import traceback
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Sequence

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import ray

from pipeline.io import formats
from pipeline.io.formats import InputFileError
from pipeline.io.layout import JobLayout, open_for_arrow, shard_name
from pipeline.io.shard_writer import ShardWriter
from pipeline.progress import ProgressDisplay
from pipeline.ray_env import cluster_cpus, cluster_gpus, ensure_ray, release_freed_memory
from pipeline.spec import Spec, StageStep, missing_packages
from pipeline.stage import with_column
from pipeline.worker_pools import TASKS_PER_WORKER, Pool, ShardResult, run_chain

READ_STAGE = "read"
OUT_OF_SPACE = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)  # disk full, quota, file too big
# After a unit of a global phase failed, how long its running siblings may still finish (and
# be committed) before the job fails without them.
FAILED_PHASE_GRACE_S = 60.0


class JobError(RuntimeError):
    """The job cannot run or did not finish; the message says why and what to do."""


@dataclass
class Segment:
    index: int
    global_step: StageStep | None
    steps: list[StageStep] = field(default_factory=list)

    @property
    def all_steps(self) -> list[StageStep]:
        return ([self.global_step] if self.global_step else []) + self.steps

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.all_steps]


def segments_of(spec: Spec) -> list[Segment]:
    """Cut at each global stage, and where the resources a worker needs change (a GPU stage
    after CPU stages), so that each kind of worker has its own pool."""
    segments = [Segment(0, None)]
    for step in spec.steps:
        previous = segments[-1].all_steps
        if step.is_global:
            segments.append(Segment(len(segments), step))
        elif previous and _shape(previous[-1]) != _shape(step):
            segments.append(Segment(len(segments), None, [step]))
        else:
            segments[-1].steps.append(step)
    return segments


def _shape(step: StageStep) -> tuple[float, float]:
    res = step.stage.resources()
    return res.cpus, res.gpus


def chains_of(segments: list[Segment]) -> list[list[Segment]]:
    """Runs of segments whose pools work at the same time: a chain starts at the input or at
    a global stage, which needs every shard of the segment before it."""
    chains: list[list[Segment]] = []
    for segment in segments:
        if segment.index == 0 or segment.global_step is not None:
            chains.append([segment])
        else:
            chains[-1].append(segment)
    return chains


@dataclass
class JobResult:
    output: str
    shards: int
    failed: list[dict]
    stages: list[dict]
    seconds: float
    skipped: int

    @property
    def docs_in(self) -> int:
        return self.stages[0]["in"] if self.stages else 0


def run_job(spec: Spec, *, progress: bool = True, overwrite: bool = False,
            keep_work: bool = False) -> JobResult:
    try:
        return _run_job(spec, progress, overwrite, keep_work)
    except OSError as exc:  # the driver's own writes: plan, failure records, report
        raise JobError(_write_error(spec.output.path, exc)) from None


@dataclass
class _Run:
    """What the driver's steps of one run share."""

    spec: Spec
    layout: JobLayout
    shards: list[dict]  # the plan: each shard's input range
    finished: set[str]  # shards an earlier run committed
    segments: list[Segment]
    display: ProgressDisplay
    run_id: str  # tells this run's set-up stages apart from an earlier run's in a worker

    def is_final(self, segment: Segment) -> bool:
        return segment.index == self.segments[-1].index


def _run_job(spec: Spec, progress: bool, overwrite: bool, keep_work: bool) -> JobResult:
    started = time.monotonic()
    layout = JobLayout(spec.output.path)
    _prepare_output(layout, spec, overwrite)
    shards = _load_or_make_plan(layout, spec)
    _check_resources(spec)
    ensure_ray(spec.resources.cpus if spec.resources.cpus != "auto" else None)
    segments = segments_of(spec)
    _check_cluster(segments)
    display = ProgressDisplay(enabled=progress)
    names = [shard_name(i) for i in range(len(shards))]
    run = _Run(spec, layout, shards, {s for s in names if layout.exists(layout.manifest(s))},
               segments, display, uuid.uuid4().hex)
    alive = list(names)  # shards still flowing (a failed shard stops at its segment)
    failures: dict[str, ShardResult] = {}
    try:
        for chain in chains_of(segments):
            head = chain[0]
            global_dir = _global_work_dir(layout, head, alive)
            if head.global_step is not None and not set(alive) <= run.finished:
                _run_global(run, head, alive, global_dir)
            results = _run_chain(run, chain, alive, global_dir)
            for (segment_index, shard), result in results.items():
                failure = layout.failure(segment_index, shard)
                if not result.ok:
                    failures[shard] = result
                    layout.write_json(failure, result.record())
                elif layout.exists(failure):
                    layout.fs.rm(failure)
            alive = [s for s in alive if s not in failures]
    finally:
        display.close()
    failed = [dict(failures[s].record(), shard=s, source=_source_label(shards[int(s)]))
              for s in sorted(failures)]
    from pipeline.report import write_report  # driver only: keeps duckdb out of workers
    summary = write_report(spec.output.path)
    result = JobResult(spec.output.path, len(names), failed, summary["funnel"],
                       time.monotonic() - started, skipped=len(run.finished))
    if failed and len(failed) > spec.errors.max_failed_fraction * len(names):
        raise JobError(_failure_summary(failed, len(names), spec.errors.max_failed_fraction))
    if not failed and not keep_work:
        for folder in ("segment-", "global", "failed", "tmp"):
            for path in layout.fs.glob(layout.path("_work", f"{folder}*")):
                layout.fs.rm(path, recursive=True)
    return result


# -- preparing the output ----------------------------------------------------------------------
def _prepare_output(layout: JobLayout, spec: Spec, overwrite: bool) -> None:
    try:
        if overwrite and layout.fs.exists(layout.base):
            layout.fs.rm(layout.base, recursive=True)
        layout.fs.makedirs(layout.path("_work"), exist_ok=True)
        probe = layout.path("_work", ".write-test")
        with layout.fs.open(probe, "w") as f:
            f.write("ok")
        layout.fs.rm(probe)
    except OSError as exc:
        raise JobError(f"cannot write to output path {spec.output.path}: "
                       f"{exc.strerror or exc}; choose a writable output.path "
                       "(or pass --output)") from None
    # One job owns its output folder, so temporaries found now were left by a killed run.
    for stale in layout.fs.glob(layout.path("**", ".tmp-*")):
        layout.fs.rm(stale)
    fingerprint = _fingerprint(spec)
    if layout.exists(layout.plan()):
        stored = layout.read_json(layout.plan()).get("fingerprint")
        if stored != fingerprint:
            raise JobError(f"{spec.output.path} holds a job run with a different spec or "
                           "input; resume needs the same spec. Use another output path, or "
                           "--overwrite to start again")
    with layout.fs.open(layout.spec(), "w") as f:
        f.write(spec.resolved_yaml())


def _fingerprint(spec: Spec) -> str:
    # What decides the output; where it goes and how much may fail do not.
    resolved = spec.resolved()
    for key in ("output", "errors", "resources"):
        resolved.pop(key)
    resolved["input_files"] = spec.input_files
    return hashlib.sha256(json.dumps(resolved, sort_keys=True).encode()).hexdigest()[:16]


def _load_or_make_plan(layout: JobLayout, spec: Spec) -> list[dict]:
    if layout.exists(layout.plan()):
        return layout.read_json(layout.plan())["shards"]
    reader = formats.get(spec.input.format)
    shards = reader.plan_shards(spec.input, spec.input_files)
    layout.write_json(layout.plan(), {"fingerprint": _fingerprint(spec), "shards": shards})
    return shards


def _check_resources(spec: Spec) -> None:
    gpu_steps = [s for s in spec.steps if s.stage.resources().gpus]
    if gpu_steps and spec.resources.gpus == 0:
        raise JobError(f"stages {[s.name for s in gpu_steps]} need GPUs but resources.gpus "
                       "is 0; set resources.gpus or choose a CPU engine")
    # Validation leaves a GPU stage's packages to where its workers run (on a cluster, GPU
    # workers may run another image); a job that starts its own Ray runs them here.
    if not os.environ.get("RAY_ADDRESS") and not ray.is_initialized():
        missing = [problem for s in gpu_steps for problem in missing_packages(s)]
        if missing:
            raise JobError("\n".join(missing))


def _check_cluster(segments: list[Segment]) -> None:
    """Refuses a worker the cluster has no room for: Ray would wait for it forever."""
    gpus = cluster_gpus()
    memory = max((n["Resources"].get("memory", 0) for n in ray.nodes() if n["Alive"]),
                 default=0)
    for segment in segments:
        for step in segment.all_steps:
            res = step.stage.resources()
            if res.gpus > gpus and not res.wait_for_gpus:
                raise JobError(
                    f"stage {step.name!r} needs {res.gpus:g} GPU(s) per worker but the Ray "
                    f"cluster has {gpus:g}; run on a cluster with GPU workers or choose a CPU "
                    "engine (where an autoscaler adds GPU nodes on demand, rephrase's "
                    "vllm.wait_for_gpus: true lets it wait for them)")
        needed = _worker_options(segment)["memory"]
        if needed > memory:
            raise JobError(f"stages {segment.names} need {needed / 2**30:.1f} GiB of memory "
                           f"per worker, more than the largest Ray node has "
                           f"({memory / 2**30:.1f} GiB); run on larger nodes")


# -- map segments ------------------------------------------------------------------------------
def _worker_options(segment: Segment) -> dict:
    res = [s.stage.resources() for s in segment.all_steps]
    return {"num_cpus": max([r.cpus for r in res] or [1]),
            "num_gpus": max([r.gpus for r in res] or [0]),
            # a worker keeps every stage of its segment set up at once
            "memory": int(sum(r.memory_gb for r in res) * 2**30),
            "max_restarts": 3, "max_task_retries": 3}


def _run_chain(run: _Run, chain: list[Segment], alive: list[str],
               global_dir: str | None) -> dict[tuple[int, str], ShardResult]:
    """Runs the chain's segments as pools working at the same time; each shard starts at the
    first segment it has not committed (resume). Returns results by (segment, shard)."""
    pools = [_pool(run, segment, global_dir if segment is chain[0] else None)
             for segment in chain]
    for shard in alive:
        if shard in run.finished:
            continue
        for pool, segment in zip(pools, chain):
            files = run.layout.unit(segment.index, shard, run.is_final(segment))
            if not run.layout.exists(files.manifest):
                pool.queue.append(shard)
                break
    total = len(alive)
    results: dict[tuple[int, str], ShardResult] = {}

    def refresh():
        waiting = [len(p.queue) + p.running for p in pools]
        run.display.set_phase(" | ".join(p.label for p in pools), total - sum(waiting), total)
        run.display.refresh()

    def record(i: int, shard: str, result: ShardResult) -> None:
        if result.fatal:
            raise JobError(_write_error(run.spec.output.path, result.error))
        results[(chain[i].index, shard)] = result
        if result.ok:
            run.display.add(result.stages)  # the counts the unit just committed

    run_chain(pools, record, cluster_cpus(), cluster_gpus(), refresh)
    return results


@dataclass(frozen=True)
class SegmentJob:
    """What a worker needs to run one segment of a job. Actors travel by name: handles in
    arguments would pin the constructor arguments in the object store (ray-project/ray#53727)."""

    spec: Spec
    segment: int
    final: bool  # the job's last segment: writes the user-facing files
    run_id: str
    shared_state: str | None  # the SharedState actor holding what the stages prepared
    global_dir: str | None  # scratch folder of the segment's global stage


def _pool(run: _Run, segment: Segment, global_dir: str | None) -> Pool:
    """CPU segments run as Ray tasks on Ray's pooled worker processes, which stay warm
    between segments (an actor starts a new process, ~0.5 s a pool); each process sets a
    segment's stages up once and keeps them (`_processor_for`). GPU segments run in actors,
    so that killing them hands the GPU memory back when the segment is done."""
    options = _worker_options(segment)
    shared, shared_name = _prepare_shared_state(segment)
    job = SegmentJob(run.spec, segment.index, run.is_final(segment), run.run_id,
                     shared_name, global_dir)

    def source(shard: str) -> dict | None:  # only the reading segment needs its input range
        return run.shards[int(shard)] if segment.index == 0 else None

    def release(workers: list) -> None:
        for worker in [w for w in workers if w is not None] + ([shared] if shared else []):
            ray.kill(worker)

    if options["num_gpus"]:
        def start_worker():
            return ShardWorker.options(**options).remote(job)

        def submit(worker, shard: str):
            return worker.run.remote(shard, source(shard))
    else:
        job_ref = ray.put(job)
        task = _run_shard.options(num_cpus=options["num_cpus"], memory=options["memory"],
                                  max_retries=3)

        def start_worker():
            return None  # a slot: at most as many tasks at once as the pool has slots

        def submit(worker, shard: str):
            return task.remote(job_ref, shard, source(shard))

    return Pool(label=f"segment {segment.index} ({', '.join(segment.names) or READ_STAGE})",
                cpus=options["num_cpus"], gpus=options["num_gpus"], release=release,
                start_worker=start_worker, submit=submit)


@ray.remote(num_cpus=0)
class SharedState:
    """Holds references to what stages prepared on the driver. Workers fetch them by the
    actor's name, so a restarted worker finds them again, and nothing large rides in actor
    constructor arguments (ray-project/ray#53727)."""

    def __init__(self, refs: dict[int, list]):
        self.refs = refs  # refs wrapped in lists, so Ray does not resolve them here

    def get(self) -> dict[int, list]:
        return self.refs


def _prepare_shared_state(segment: Segment):
    refs = {}
    for step in segment.all_steps:
        try:
            value = step.stage.prepare()
        except Exception as exc:
            raise JobError(f"stage {step.name!r} could not prepare: {exc}") from None
        if value is not None:
            refs[step.index] = [ray.put(value)]
    if not refs:
        return None, None
    name = f"shared-{uuid.uuid4().hex}"  # named actors resolve as soon as they are created
    return SharedState.options(name=name).remote(refs), name


@ray.remote
class ShardWorker:
    """A Ray actor around one `ShardProcessor` (GPU segments)."""

    def __init__(self, job: SegmentJob):
        self.processor = _make_processor(job)

    def run(self, shard: str, source: dict | None) -> ShardResult:
        try:
            return self.processor.run(shard, source)
        finally:
            release_freed_memory()


@ray.remote
def _run_shard(job: SegmentJob, shard: str, source: dict | None) -> ShardResult:
    try:
        return _processor_for(job).run(shard, source)
    finally:
        release_freed_memory()


# this worker process's, by (run id, segment)
_PROCESSORS: dict[tuple[str, int], "ShardProcessor"] = {}


def _processor_for(job: SegmentJob) -> "ShardProcessor":
    """The segment's processor in this worker process, set up on its first shard. Only those
    of the current job's running chain are kept, so that a finished segment's models do not
    stay in memory."""
    key = (job.run_id, job.segment)
    if key not in _PROCESSORS:
        chain = next([s.index for s in c] for c in chains_of(segments_of(job.spec))
                     if job.segment in [s.index for s in c])
        for other in list(_PROCESSORS):  # an earlier job's stages, or a finished chain's
            if other[0] != job.run_id or other[1] not in chain:
                del _PROCESSORS[other]
        _PROCESSORS[key] = _make_processor(job)
    return _PROCESSORS[key]


def _make_processor(job: SegmentJob) -> "ShardProcessor":
    refs = ray.get(ray.get_actor(job.shared_state).get.remote()) if job.shared_state else {}
    shared = {index: ray.get(ref[0]) for index, ref in refs.items()}
    return ShardProcessor(job, shared)


class ShardProcessor:
    """Streams one shard through a segment's stages and commits its output."""

    def __init__(self, job: SegmentJob, prepared: dict[int, Any]):
        self.spec, self.final = job.spec, job.final
        self.segment = segments_of(job.spec)[job.segment]
        self.layout = JobLayout(job.spec.output.path)
        # where the segment's global stage left its decisions
        self.global_dir = self.layout.url(job.global_dir) if job.global_dir else None
        for step in self.segment.all_steps:
            step.stage.prepared = prepared.get(step.index)
            step.stage.setup()

    def run(self, shard: str, source: dict | None) -> ShardResult:
        started = time.time()
        files = self.layout.unit(self.segment.index, shard, self.final)
        writer = ShardWriter(self.layout, files, self.spec.output.compression)
        counts: dict[str, dict] = {}
        global_step = self.segment.global_step
        try:
            first_row = 0
            for table in self._tables(shard, source, counts, writer):
                rows = table.num_rows
                if global_step is not None:  # its decisions for these rows of the shard
                    table = self._apply(global_step, lambda t: global_step.stage.apply(
                        t, shard, first_row, self.global_dir), table, counts, writer)
                first_row += rows
                for step in self.segment.steps:
                    table = self._apply(step, step.stage.process, table, counts, writer)
                writer.write_kept(table)
            earlier = self._earlier(shard)
            writer.commit({
                "shard": shard, "segment": self.segment.index, "source": source,
                "stages": [s for m in earlier for s in m["stages"]]
                + list(counts.values()),
                "started": started, "seconds": round(time.time() - started, 3),
                "worker": f"{os.uname().nodename}:{os.getpid()}",
            }, earlier_rejected=[self.layout.unit(m["segment"], shard, False).rejected
                                 for m in earlier])
            return ShardResult(stages=tuple(counts.values()))
        except InputFileError as exc:
            writer.abort()
            return ShardResult(error=str(exc))
        except Exception as exc:  # a stage bug must not take the whole job down
            writer.abort()
            return ShardResult(error=f"{type(exc).__name__}: {exc}",
                               traceback=traceback.format_exc(limit=8),
                               # no point trying the other shards: they would fail the same way
                               fatal=_out_of_space(exc))

    def _earlier(self, shard: str) -> list[dict]:
        """Manifests of this shard from earlier segments (their stages belong in the final
        manifest, their rejected rows in the final rejected file)."""
        if not self.final:
            return []
        return [self.layout.read_json(self.layout.unit(k, shard, False).manifest)
                for k in range(self.segment.index)]

    def _tables(self, shard, source, counts, writer) -> Iterator[pa.Table]:
        if self.segment.index > 0:
            path = self.layout.unit(self.segment.index - 1, shard, False).data
            with open_for_arrow(self.layout.fs, path, "rb") as f:
                for batch in pq.ParquetFile(f).iter_batches(batch_size=self.spec.batch_rows):
                    yield pa.Table.from_batches([batch])
            return
        reader = formats.get(self.spec.input.format)
        content = "html" if self.spec.reads_html else "text"
        for batch in reader.read(self.spec.input, source, content, self.spec.batch_rows):
            bad = batch.rejected.num_rows if batch.rejected is not None else 0
            self._count(counts, None, batch.table.num_rows + bad, batch.table.num_rows, 0)
            if bad:
                writer.write_rejected(batch.rejected, READ_STAGE, key=READ_STAGE)
            yield batch.table

    def _apply(self, step: StageStep, fn: Callable, table: pa.Table, counts,
               writer) -> pa.Table:
        if table.num_rows == 0:
            self._count(counts, step, 0, 0, 0)
            return table
        started = time.perf_counter()
        out = fn(table)
        if out.table.num_rows < table.num_rows:
            raise RuntimeError(f"stage {step.name!r} returned {out.table.num_rows} rows for "
                               f"{table.num_rows}: a stage rejects rows with a reason, it "
                               "never deletes them")
        if out.reasons is None:
            kept = out.table
        else:
            mask = pc.is_valid(out.reasons)
            kept = out.table.filter(pc.invert(mask))
            # set, not appended: an input may carry its own `reason` column
            rejected = with_column(out.table.filter(mask), "reason", out.reasons.filter(mask))
            for column, values in out.rejected_columns.items():
                rejected = with_column(rejected, column, values.filter(mask))
            writer.write_rejected(rejected, step.name, key=str(step.index))
        self._count(counts, step, table.num_rows, kept.num_rows,
                    time.perf_counter() - started, added=out.table.num_rows - table.num_rows,
                    counters=out.counters)
        return kept

    def _count(self, counts, step: StageStep | None, docs_in, kept, seconds,
               added: int = 0, counters: dict[str, int] | None = None) -> None:
        """Counts per step (`None` = the reader); a stage used twice is counted twice.

        `added` counts rows a stage created (e.g. `rephrase`'s synthetic rows), so that
        in + added = kept + rejected for every step; it is 0 for a stage that only filters."""
        stage = READ_STAGE if step is None else f"{step.index + 1}. {step.name}"
        entry = counts.setdefault(stage, {
            "stage": READ_STAGE if step is None else step.name,
            "step": -1 if step is None else step.index,
            "in": 0, "added": 0, "kept": 0, "rejected": 0, "seconds": 0.0})
        entry["in"] += docs_in
        entry["added"] += added
        entry["kept"] += kept
        entry["rejected"] += docs_in + added - kept
        entry["seconds"] = round(entry["seconds"] + seconds, 4)
        if counters:  # a stage's own totals (`StageOutput.counters`); absent when it has none
            totals = entry.setdefault("counters", {})
            for name, value in counters.items():
                totals[name] = totals.get(name, 0) + int(value)


# -- global stages -----------------------------------------------------------------------------
class _GlobalRun:
    """The `GlobalContext` a global stage's `plan` receives."""

    def __init__(self, layout: JobLayout, step: StageStep, shard_ids: list[str],
                 previous_segment: int, work_dir: str, display: ProgressDisplay):
        self.layout, self.step, self.display = layout, step, display
        self.shard_ids = list(shard_ids)
        self._previous = previous_segment
        self._dir = work_dir
        layout.fs.makedirs(self._dir, exist_ok=True)
        self.work_dir = layout.url(self._dir)

    def shard_path(self, shard_id: str) -> str:
        return self.layout.url(self.layout.unit(self._previous, shard_id, False).data)

    def map(self, phase: str, fn: Callable[[Any], Any], items: Sequence[Any],
            keys: Sequence[str]) -> list[Any]:
        markers = {k: posixpath.join(self._dir, "_phases", phase, f"{k}.json") for k in keys}
        results = {k: self.layout.read_json(p)["result"] for k, p in markers.items()
                   if self.layout.exists(p)}
        todo = deque((k, item) for k, item in zip(keys, items) if k not in results)
        task = ray.remote(num_cpus=1, max_retries=3)(_call)
        limit = TASKS_PER_WORKER * cluster_cpus()
        running: dict[Any, str] = {}
        label = f"{self.step.name}: {phase}"
        failure: str | None = None
        give_up_at = float("inf")  # once a unit failed: when to stop waiting for the others
        while (todo and failure is None) or (running and time.monotonic() < give_up_at):
            while todo and failure is None and len(running) < limit:
                key, item = todo.popleft()
                running[task.remote(fn, item)] = key
            ready, _ = ray.wait(list(running), num_returns=1, timeout=0.5)
            for ref in ready:
                key = running.pop(ref)
                try:
                    results[key] = ray.get(ref)
                except ray.exceptions.RayError as exc:
                    # The first failure fails the phase. The units already running are
                    # waited for (up to FAILED_PHASE_GRACE_S), not cancelled: ray.cancel of
                    # a task whose reply is arriving can abort the driver (Ray 2.60,
                    # task_manager.cc "Tried to complete task that was not pending"); those
                    # that finish are kept. Any still running end with the driver.
                    if failure is None:
                        failure = self._unit_error(phase, key, exc)
                        give_up_at = time.monotonic() + FAILED_PHASE_GRACE_S
                    continue
                try:
                    self.layout.write_json(markers[key], {"result": results[key]})
                except OSError:  # after a failure, a full disk must not hide its message
                    if failure is None:
                        raise
            self.display.set_phase(label, len(results), len(keys))
            self.display.refresh()
        if failure is not None:
            raise JobError(failure)
        return [results[k] for k in keys]


    def _unit_error(self, phase: str, key: str, exc: ray.exceptions.RayError) -> str:
        # the task's own exception, not Ray's wrapper with the remote traceback
        cause = getattr(exc, "cause", None) or exc
        if _out_of_space(cause):
            return _write_error(self.layout.base, cause)
        text = str(cause).splitlines()[0] if str(cause) else ""
        return (f"stage {self.step.name!r}, phase {phase!r}, unit {key}: "
                f"{type(cause).__name__}: {text}")


def _call(fn, item):
    return fn(item)


def _global_work_dir(layout: JobLayout, segment: Segment, shards: list[str]) -> str | None:
    """Scratch folder of a global stage, keyed by the shards it sees: if that set changes
    between runs (a failed shard now reads), committed phase results are not reused."""
    step = segment.global_step
    if step is None:
        return None
    key = hashlib.sha256(",".join(shards).encode()).hexdigest()[:12]
    return posixpath.join(layout.global_dir(step.index, step.name), key)


def _run_global(run: _Run, segment: Segment, alive: list[str], work_dir: str) -> None:
    step = segment.global_step
    stats = step.stage.plan(_GlobalRun(run.layout, step, alive, segment.index - 1, work_dir,
                                       run.display))
    if stats:  # what the stage decided overall (pairs, clusters, ...), kept for the report
        name = f"global-{step.index:02d}-{step.name}.json"
        run.layout.write_json(run.layout.path("manifests", name),
                              {"stage": step.name, "step": step.index, "stats": stats})


# -- summaries ---------------------------------------------------------------------------------
def _out_of_space(error) -> bool:
    # Arrow's writers raise OSError without an errno; their message carries strerror
    return getattr(error, "errno", None) in OUT_OF_SPACE or any(
        os.strerror(code) in str(error) for code in OUT_OF_SPACE)


def _write_error(output: str, error) -> str:
    reason = getattr(error, "strerror", None) or str(error)
    if _out_of_space(error):
        return (f"cannot write to {output}: {reason}. Free space (or raise the quota) and "
                "run the same command again: committed shards are kept")
    return f"cannot write to {output}: {reason}"


def _source_label(source: dict) -> str:
    """The input file of a shard, with its part when the file was split."""
    path = source.get("path") or source.get("name") or "?"
    ranges = [f"{k}={source[k]}" for k in ("start", "end", "row_groups") if source.get(k)]
    return f"{path}{' ' + ', '.join(ranges) if ranges else ''}"


def _failure_summary(failed: list[dict], total: int, budget: float) -> str:
    lines = [f"{len(failed)} of {total} shards failed, more than the error budget "
             f"(errors.max_failed_fraction = {budget}):"]
    lines += [f"  shard {f['shard']} ({f['source']}): {f['error'].splitlines()[0]}"
              for f in failed[:20]]
    if len(failed) > 20:
        lines.append(f"  ... and {len(failed) - 20} more (see _work/failed/)")
    lines.append("Fix or remove the bad files and run the same command again: finished shards "
                 "are kept, only failed ones are redone.")
    return "\n".join(lines)
