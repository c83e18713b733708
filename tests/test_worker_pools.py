"""Pools of one chain share the cluster and stream shards from one to the next."""

from __future__ import annotations

import time
from dataclasses import dataclass

import ray

from pipeline.worker_pools import Pool, ShardResult, pool_sizes, run_chain


def pool(cpus: float, gpus: float = 0.0, start=None) -> Pool:
    return Pool(label="p", cpus=cpus, gpus=gpus, start_worker=start or (lambda: None),
                submit=lambda worker, shard: worker.run.remote(shard),
                release=lambda workers: None)


def test_upstream_pools_start_first_and_cpus_are_shared_in_turns():
    cpu, gpu = pool(1), pool(2, gpus=1)
    # a GPU node with 8 CPUs: one vLLM replica (2 CPUs), the CPU pool takes the rest
    assert pool_sizes([cpu, gpu], [40, 40], cpus=8, gpus=1) == [6, 1]
    # two GPUs: two replicas, four CPU workers
    assert pool_sizes([cpu, gpu], [40, 40], cpus=8, gpus=2) == [4, 2]
    # the GPU worker does not fit beside the CPU pool on 2 CPUs: it waits for it
    assert pool_sizes([cpu, gpu], [40, 40], cpus=2, gpus=1) == [2, 0]
    # ... and gets the node once the CPU pool has no work left
    assert pool_sizes([cpu, gpu], [0, 12], cpus=2, gpus=1) == [0, 1]
    # two CPU pools share 2 CPUs; never more workers than shards
    assert pool_sizes([pool(1), pool(0.5)], [8, 8], cpus=2, gpus=0) == [1, 2]
    assert pool_sizes([pool(1), pool(1)], [1, 1], cpus=8, gpus=0) == [1, 1]
    # no GPU in the cluster (an autoscaler may add one): the first pool with work starts
    assert pool_sizes([cpu, gpu], [0, 3], cpus=4, gpus=0) == [0, 1]


@dataclass(frozen=True)
class TimedResult(ShardResult):
    started: float = 0.0
    ended: float = 0.0


@ray.remote(num_cpus=0)
class SlowWorker:
    def __init__(self, seconds: float):
        self.seconds = seconds

    def run(self, shard: str) -> TimedResult:
        started = time.time()
        time.sleep(self.seconds)
        return TimedResult(error="bad file" if shard == "bad" else None, started=started,
                           ended=time.time())


def test_the_second_pool_works_on_early_shards_while_the_first_is_still_busy(ray_cluster):
    pools = [pool(1, start=lambda: SlowWorker.remote(0.3)),
             pool(1, start=lambda: SlowWorker.remote(0.05))]
    shards = [f"{i:02d}" for i in range(8)] + ["bad"]
    pools[0].queue.extend(shards)
    seen: list[tuple[int, str, TimedResult]] = []
    run_chain(pools, lambda i, shard, result: seen.append((i, shard, result)), cpus=2, gpus=0,
              refresh=lambda: None)
    first = {s: r for i, s, r in seen if i == 0}
    second = {s: r for i, s, r in seen if i == 1}
    assert sorted(first) == sorted(shards)
    assert sorted(second) == sorted(shards[:-1])  # a failed shard goes no further
    assert min(r.started for r in second.values()) < max(r.ended for r in first.values())
    assert all(p.retired and not p.workers for p in pools)
