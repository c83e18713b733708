"""Connect to Ray: the cluster in RAY_ADDRESS, or an embedded local one using all cores."""

from __future__ import annotations

import ctypes
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
    # The raylet connects to its own object store, which its other thread is still starting,
    # and retries once a second: about one start in two waited a whole second for it. Ten
    # times more often and ten times more attempts keep Ray's 10 s window.
    os.environ.setdefault("RAY_raylet_client_connect_timeout_milliseconds", "100")
    os.environ.setdefault("RAY_raylet_client_num_connect_attempts", "100")
    # Our data never travels through the object store (workers read and write shards
    # themselves), so a small store leaves the memory to the stages.
    store = int(min(2 * 2**30, max(128 * 2**20, psutil.virtual_memory().total * 0.05)))
    # Arrow's default pool (mimalloc) keeps what a shard freed for itself; glibc's hands it
    # back (with the trim after each shard, runner._run_shard): 40-60 MiB less per worker
    # at its peak on benchmarks/compare_datatrove.py's recipe. Workers inherit it from here.
    os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")
    ray.init(num_cpus=cpus or os.cpu_count(), include_dashboard=False,
             object_store_memory=store, logging_level=logging.WARNING,
             configure_logging=True)
    _embedded = True
    _stop_unneeded_head_processes()
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


# Head processes a one-node embedded Ray starts that its job never uses (PSS measured on the
# WARC recipe of benchmarks/compare_datatrove.py):
# - "monitor": the autoscaler's (~50 MiB); one node has nothing to scale. Left running, it
#   also ignored SIGTERM at shutdown for Ray's one-second grace period.
# - "dashboard": with include_dashboard=False still started, for Ray's usage-stats module
#   only (~75 MiB); nothing of ours reads it (`pipeline serve` runs its own `ray start`).
# ray.init() has no option for either (RayParams.no_monitor exists, ray.init does not pass
# it; the api server is started unconditionally), so they are stopped once Ray is up. Ray
# keeps its processes in a private table: if that changes, they just keep running.
# The raylet's dashboard agent and runtime-env agent stay: the raylet restarts the first and
# exits with the second. The log monitor stays too: it brings the workers' output to the
# terminal.
UNNEEDED_HEAD_PROCESSES = ("monitor", "dashboard")


def _stop_unneeded_head_processes() -> None:
    try:
        node = ray._private.worker._global_node
        for kind in UNNEEDED_HEAD_PROCESSES:
            for info in node.all_processes.get(kind, []):
                info.process.kill()
                info.process.wait(timeout=5)
    except Exception:  # noqa: BLE001 - only memory: the run works with them running
        pass


def cluster_cpus() -> int:
    return max(1, int(ray.cluster_resources().get("CPU", 1)))


def cluster_gpus() -> float:
    return float(ray.cluster_resources().get("GPU", 0))


def release_freed_memory() -> None:
    """Hands memory the process freed back to the OS (glibc keeps it in its arenas, ~50 MiB
    after a WARC shard's extraction): called by workers after each shard, so that what one
    shard needed is not held through the next or through a global stage's phases."""
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):  # not glibc (macOS, musl): nothing to do
        pass
