"""Worker pools that run consecutive map segments at the same time, streaming shards on.

The runner cuts the stage list where the resources a worker needs change (a GPU `rephrase`
after CPU `extract`, `langid`, `quality`), so each kind of worker gets its own pool. Pools
of one chain (map segments not separated by a global stage) run together: a shard that one
pool commits goes straight into the next pool's queue, so the GPUs generate for the first
shards while the CPUs are still extracting the last ones.

Pool sizes: upstream pools come first (a downstream pool that took every CPU would wait
forever for input); GPU pools then take the GPUs they can use; the CPUs left are shared
between the CPU pools in turns. When a pool runs out of work its workers are released and
the pools still working grow into the room.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, NamedTuple

import ray

# One shard running and one queued, so a worker never waits for the driver; but only while
# there are more shards than workers: at the end of the queue, a shard queued behind a busy
# worker would wait while another worker sits idle.
TASKS_PER_WORKER = 2


@dataclass(frozen=True)
class ShardResult:
    """What a worker reports for one shard of a segment: committed, or failed and why."""

    error: str | None = None  # None: committed
    traceback: str | None = None  # where a stage's own exception was raised
    fatal: bool = False  # the output cannot be written: every other shard would fail too
    # committed: the per-stage counts of the segment's own steps, as its manifest holds them
    # (the driver's progress adds them up without reading the manifest back)
    stages: tuple[dict, ...] = ()

    @property
    def ok(self) -> bool:
        return self.error is None

    def record(self) -> dict:
        """The failure as `_work/failed/` and `JobResult.failed` keep it."""
        record = {"status": "failed", "error": self.error}
        if self.traceback is not None:
            record.update(traceback=self.traceback, fatal=self.fatal)
        return record


class _Submitted(NamedTuple):
    pool: int
    shard: str
    worker: int


@dataclass
class Pool:
    """The workers of one map segment and the shards waiting for them."""

    label: str
    cpus: float
    gpus: float
    start_worker: Callable[[], Any]  # an actor, or None for a slot of a task pool
    submit: Callable[[Any, str], Any]  # (worker, shard) -> ref of its ShardResult
    release: Callable[[list], None]
    queue: deque = field(default_factory=deque)
    workers: list = field(default_factory=list)
    load: list = field(default_factory=list)
    running: int = 0
    done: int = 0
    retired: bool = False

    def grow(self, size: int) -> None:
        while len(self.workers) < size:
            self.workers.append(self.start_worker())
            self.load.append(0)

    def retire(self) -> None:
        self.release(self.workers)
        self.workers, self.load, self.retired = [], [], True


def pool_sizes(pools: list[Pool], wanted: list[int], cpus: float, gpus: float) -> list[int]:
    """Workers per pool, in chain order; 0 = not started yet (waits for room)."""
    sizes = [0] * len(pools)
    for i, pool in enumerate(pools):  # one worker each, upstream first, while it fits
        if not wanted[i]:
            continue
        fits = pool.cpus <= cpus and pool.gpus <= gpus
        if not fits and i > 0 and any(sizes[:i]):
            break  # the pools before it must finish first
        sizes[i] = 1  # the first pool always starts (an autoscaler may add its node)
        cpus, gpus = cpus - pool.cpus, gpus - pool.gpus
    for i, pool in enumerate(pools):  # GPU pools take the GPUs they can use
        if sizes[i] and pool.gpus:
            extra = min(wanted[i] - sizes[i], int(gpus // pool.gpus),
                        int(cpus // pool.cpus) if pool.cpus else wanted[i])
            sizes[i] += max(0, extra)
            cpus, gpus = cpus - max(0, extra) * pool.cpus, gpus - max(0, extra) * pool.gpus
    grew = True
    while grew:  # CPU pools share the CPUs left, one worker at a time
        grew = False
        for i, pool in enumerate(pools):
            if sizes[i] and not pool.gpus and sizes[i] < wanted[i] and pool.cpus <= cpus:
                sizes[i] += 1
                cpus -= pool.cpus
                grew = True
    return sizes


def run_chain(pools: list[Pool], on_result: Callable[[int, str, ShardResult], None],
              cpus: float, gpus: float, refresh: Callable[[], None]) -> None:
    """Runs every queued shard through the chain. `on_result(i, shard, result)` records
    pool i's result for a shard, which moves on to pool i + 1 when it succeeded."""
    running: dict[Any, _Submitted] = {}

    def wanted() -> list[int]:
        # shards that may still reach each pool: its own and every upstream one's
        total, out = 0, []
        for pool in pools:
            total += len(pool.queue) + pool.running
            out.append(0 if pool.retired else total)
        return out

    def resize() -> None:
        for pool, size in zip(pools, pool_sizes(pools, wanted(), cpus, gpus)):
            if not pool.retired:
                pool.grow(size)

    resize()
    try:
        while any(not p.retired for p in pools):
            for i, pool in enumerate(pools):
                for w in range(len(pool.workers)):
                    while pool.queue and pool.load[w] < (
                            TASKS_PER_WORKER if len(pool.queue) > len(pool.workers) else 1):
                        shard = pool.queue.popleft()
                        running[pool.submit(pool.workers[w], shard)] = _Submitted(i, shard, w)
                        pool.load[w] += 1
                        pool.running += 1
            ready, _ = ray.wait(list(running), num_returns=1, timeout=0.5) if running \
                else ([], [])
            for ref in ready:
                i, shard, w = running.pop(ref)
                pools[i].load[w] -= 1
                pools[i].running -= 1
                pools[i].done += 1
                try:
                    result = ray.get(ref)
                except ray.exceptions.RayError as exc:
                    result = ShardResult(error=f"worker lost: {exc}"[:2000])
                on_result(i, shard, result)
                if result.ok and i + 1 < len(pools):
                    pools[i + 1].queue.append(shard)
            retired = False
            for i, pool in enumerate(pools):
                upstream_done = all(p.retired for p in pools[:i])
                if not pool.retired and upstream_done and not pool.queue and not pool.running:
                    pool.retire()
                    retired = True
            if retired:
                resize()
            refresh()
    finally:
        for pool in pools:
            if not pool.retired:
                pool.retire()
