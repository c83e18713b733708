"""Helpers for the control-plane tests: services in a thread or a subprocess, specs, polling.
The fixtures are in `tests/api_fixtures.py`."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import uvicorn
import yaml

from pipeline.api.app import create_app
from pipeline.api.config import ServiceConfig

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "test-token-3f9a"
ACTIVE = {"PENDING", "RUNNING", "CANCELLING"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_root(tmp_path: Path) -> Path:
    """A storage root holding a copy of the quickstart example."""
    root = tmp_path / "root"
    shutil.copytree(ROOT / "examples" / "data", root / "examples" / "data")
    shutil.copy(ROOT / "examples" / "quickstart.yaml", root / "examples" / "quickstart.yaml")
    return root


def quickstart_counts() -> dict[str, int]:
    """Documents in, kept and rejected by examples/quickstart.yaml, counted from its sample
    files and the word bounds its spec sets (words are whitespace-separated), so the API
    tests follow the data instead of repeating numbers."""
    spec = yaml.safe_load((ROOT / "examples" / "quickstart.yaml").read_text())
    (bounds,) = [stage["length_filter"] for stage in spec["stages"]]
    words = [len(json.loads(line)["text"].split())
             for pattern in spec["input"]["paths"]
             for path in sorted((ROOT / "examples").glob(pattern))
             for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    kept = sum(bounds["min_words"] <= n <= bounds["max_words"] for n in words)
    return {"in": len(words), "kept": kept, "rejected": len(words) - kept}


def long_job_spec(root: Path, name: str, shards: int, docs: int = 4000) -> str:
    """A spec whose input splits into `shards` small shards, so the job runs a while."""
    path = root / "long" / f"{name}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as f:
        for i in range(docs):
            f.write(json.dumps({"id": f"{name}-{i}", "text": "word " * (5 + i % 40)}) + "\n")
    shard_bytes = max(1, path.stat().st_size // shards)
    return (f"name: {name}\n"
            f"input: {{format: jsonl, paths: [long/{name}.jsonl], shard_bytes: {shard_bytes}}}\n"
            f"output: {{path: out/{name}}}\n"
            "stages:\n  - length_filter: {min_words: 20}\n")


class ServiceThread:
    """The real app served by uvicorn in a thread of the test process."""

    def __init__(self, config: ServiceConfig, reconcile: bool = True, owned_head=None):
        self.config = config
        self.app = create_app(config, reconcile=reconcile, owned_head=owned_head)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(self.app, host="127.0.0.1", port=self.port,
                                                    log_level="warning", access_log=False))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> "ServiceThread":
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the service did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)

    def client(self, token: str | None = TOKEN) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)


def service_config(tmp_path: Path, ray_head, root: Path, **overrides) -> ServiceConfig:
    settings = dict(state_dir=tmp_path / "state", storage_roots=[str(root)], token=TOKEN,
                    ray_address=ray_head.dashboard_url if ray_head else None, poll_interval=0.5)
    settings.update(overrides)
    return ServiceConfig(**settings)


def submit_yaml(client: httpx.Client, text: str, **params) -> httpx.Response:
    return client.post("/jobs", content=text, params=params,
                       headers={"Content-Type": "application/yaml"})


def wait_for(client: httpx.Client, job_id: str, predicate, timeout: float = 90,
             what: str = "the condition") -> dict:
    deadline = time.monotonic() + timeout
    while True:
        job = client.get(f"/jobs/{job_id}").json()
        if predicate(job):
            return job
        if time.monotonic() > deadline:
            raise AssertionError(f"job {job_id} did not reach {what} in {timeout}s: "
                                 f"{job.get('state')} {job.get('message')}")
        time.sleep(0.3)


def finished(job: dict) -> bool:
    return job["state"] not in ACTIVE


def start_service_process(args: list[str], log: Path, **env_vars: str) -> subprocess.Popen:
    """`python -m pipeline.api ...` as its own process (so a test can kill it)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), **env_vars)
    handle = log.open("ab")
    return subprocess.Popen([sys.executable, "-m", "pipeline.api", *args], cwd=ROOT, env=env,
                            stdout=handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


def wait_healthy(url: str, proc: subprocess.Popen, log: Path, timeout: float = 40) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the service exited ({proc.returncode}):\n{log.read_text()}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"the service did not answer in {timeout}s:\n{log.read_text()}")
