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
    # The raylet connects to its own object store, which its other thread is still starting,
    # and retries once a second: about one start in two waited a whole second for it. Ten
    # times more often and ten times more attempts keep Ray's 10 s window.
    os.environ.setdefault("RAY_raylet_client_connect_timeout_milliseconds", "100")
    os.environ.setdefault("RAY_raylet_client_num_connect_attempts", "100")
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
        _stop_autoscaler_monitor()
        ray.shutdown()
    _embedded = False


def _stop_autoscaler_monitor() -> None:
    """Kill the embedded node's autoscaler monitor before Ray stops the rest.

    ray.shutdown() stops the GCS first; the monitor then ignores SIGTERM until Ray's one
    second grace period ends (1.0 of the 1.35 s shutdown, on every `pipeline run`). A
    one-node embedded cluster has nothing for it to scale, so nothing is lost. Ray keeps its
    processes in a private table: if that changes, shutdown is just a second slower."""
    try:
        node = ray._private.worker._global_node
        for info in node.all_processes.get("monitor", []):
            info.process.kill()
            info.process.wait(timeout=5)
    except Exception:  # noqa: BLE001 - only a speed-up; ray.shutdown() still stops it
        pass


def cluster_cpus() -> int:
    return max(1, int(ray.cluster_resources().get("CPU", 1)))


def cluster_gpus() -> float:
    return float(ray.cluster_resources().get("GPU", 0))
