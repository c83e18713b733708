"""Shared fixtures: one real local Ray cluster per test session, and small corpus writers."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
from pathlib import Path

import psutil
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # Ray 2.60 enables token auth by default
os.environ.setdefault("PIPELINE_PROGRESS_INTERVAL", "1")

WORDS = ("river bridge library harvest orchestra ferry museum volunteer battery weather "
         "council wheat solar bread garden teacher station market island forest").split()


def pytest_configure(config):
    config.addinivalue_line("markers", "cluster: a 3-node Ray cluster on this machine "
                            "(tests/test_cluster.py); part of the normal run")


@pytest.fixture(scope="session")
def ray_cluster():
    import ray

    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, object_store_memory=256 * 2**20,
                 logging_level="WARNING")
    yield ray


def make_text(seed: int, words: int) -> str:
    return " ".join(WORDS[(seed * 7 + i * 3 + i * i) % len(WORDS)] for i in range(words))


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def write_parquet(path: Path, rows: list[dict], row_group_size: int | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), path, row_group_size=row_group_size)
    return path


def assert_accounting(out: Path) -> list[dict]:
    """Every stage of every committed shard accounts for each document:
    in + added = kept + rejected. Returns the shard manifests."""
    manifests = [json.loads(p.read_text())
                 for p in sorted((Path(out) / "manifests").glob("part-*.json"))]
    assert manifests, f"no committed shards under {out}"
    for manifest in manifests:
        for stage in manifest["stages"]:
            assert stage["in"] + stage.get("added", 0) == stage["kept"] + stage["rejected"], \
                (manifest["shard"], stage)
    return manifests


def write_spec(path: Path, body: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(body, encoding="utf-8")
    return path


def kill_tree(proc: subprocess.Popen) -> None:
    """Kill a `pipeline run` and everything it started (Ray's raylet, GCS and workers), as a
    crash of the machine would, and wait until none of them can still write."""
    family = psutil.Process(proc.pid).children(recursive=True)
    os.killpg(proc.pid, signal.SIGKILL)
    for child in family:
        try:
            child.kill()
        except (psutil.NoSuchProcess, ProcessLookupError):
            pass  # already gone with its process group
    psutil.wait_procs(family, timeout=30)
    proc.wait()


def leave_phase_half_done(out: Path, phase: str) -> Path:
    """Leave a finished job's output as a kill during its global stage's `phase` would: the
    phase's first unit committed, none after it, nothing the later steps wrote. Returns the
    stage's `_phases` folder (one sub-folder of committed unit markers per phase)."""
    phases = next((out / "_work" / "global").glob("*/*/_phases"))
    for marker in sorted((phases / phase).glob("*.json"))[1:]:
        marker.unlink()
    for folder in ("data", "rejected", "manifests", "report"):
        shutil.rmtree(out / folder)
    for segment in (out / "_work").glob("segment-1"):
        shutil.rmtree(segment)
    return phases
