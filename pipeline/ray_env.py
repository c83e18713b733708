"""Connect to Ray: the cluster in RAY_ADDRESS, or an embedded local one using all cores."""

from __future__ import annotations

import logging
import os

import psutil
import ray


_embedded = False  # whether ensure_ray started the Ray this process uses


def ensure_ray(cpus: int | None = None) -> None:
    global _embedded
    if ray.is_initialized():
        return
    address = os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(address=address, logging_level=logging.WARNING)
        return
    # Ray runs its workers at nice 15 by default: on a machine shared with anything else they
    # would get the leftovers. An embedded Ray runs the user's job, so at normal priority.
    os.environ.setdefault("RAY_worker_niceness", "0")
    # Our data never travels through the object store (workers read and write shards
    # themselves), so a small store leaves the memory to the stages.
    store = int(min(2 * 2**30, max(128 * 2**20, psutil.virtual_memory().total * 0.05)))
    ray.init(num_cpus=cpus or os.cpu_count(), include_dashboard=False,
             object_store_memory=store, logging_level=logging.WARNING,
             configure_logging=True)
    _embedded = True
    # Start the worker processes (and their imports) while the driver plans the job; the
    # shards' tasks then run in them. Not waited for.
    for _ in range(int(cluster_cpus())):
        _warm_up.remote()


@ray.remote(num_cpus=1)
def _warm_up() -> None:
    import pipeline.runner  # noqa: F401


def shutdown_embedded() -> None:
    """Stops the Ray that ensure_ray started (a connected or caller's Ray is left alone).
    Called explicitly, it skips the half second Ray's exit hook sleeps for its logs."""
    global _embedded
    if _embedded and ray.is_initialized():
        ray.shutdown()
    _embedded = False


def cluster_cpus() -> int:
    return max(1, int(ray.cluster_resources().get("CPU", 1)))


def cluster_gpus() -> float:
    return float(ray.cluster_resources().get("GPU", 0))
