"""Control-plane load: concurrent clients polling `GET /jobs/{id}` against a local service that
stores 1,000 jobs.

The service runs as `python -m pipeline.api` in its own process with its own local Ray head,
exactly as `pipeline serve` does. One real job (the quickstart) runs through it to the end;
its record, progress snapshot and spec are then copied into the SQLite store until it holds
`--jobs` jobs in all (running 1,000 real jobs would measure Ray, not the API). The clients
(asyncio + aiohttp, in this process) each poll a random stored job, waiting `--interval`
seconds between polls (0 = as fast as the service answers).

Prints requests/s, latency percentiles and errors, one line a figure, each beside its target.

    python benchmarks/api_load.py [--clients 200] [--seconds 20] [--interval 0.5] [--jobs 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import httpx
import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("RAY_AUTH_MODE", "disabled")

from pipeline.api.states import JobState  # noqa: E402
from pipeline.api.store import JobStore, NewJob  # noqa: E402

TOKEN = "bench-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
P99_TARGET_MS = 50.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_service(workdir: Path, port: int) -> subprocess.Popen:
    root = workdir / "root"
    shutil.copytree(ROOT / "examples" / "data", root / "examples" / "data")
    shutil.copy(ROOT / "examples" / "quickstart.yaml", root / "examples" / "quickstart.yaml")
    log = (workdir / "service.log").open("ab")
    env = dict(os.environ, PIPELINE_API_TOKEN=TOKEN, PYTHONPATH=str(ROOT))
    return subprocess.Popen(
        [sys.executable, "-m", "pipeline.api", "--port", str(port),
         "--state-dir", str(workdir / "state"), "--storage-root", str(root),
         "--log-level", "warning"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


def wait_until(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise SystemExit(f"timed out waiting for {what}")


def run_one_job(url: str, root_spec: Path) -> str:
    client = httpx.Client(base_url=url, headers=AUTH, timeout=30)
    response = client.post("/jobs", content=root_spec.read_text(),
                           params={"base_dir": "examples"},
                           headers={"Content-Type": "application/yaml"})
    response.raise_for_status()
    job_id = response.json()["id"]
    job = wait_until(lambda: (j := client.get(f"/jobs/{job_id}").json())["state"]
                     in ("SUCCEEDED", "FAILED") and j, 120, "the quickstart job")
    if job["state"] != "SUCCEEDED":
        raise SystemExit(f"the quickstart job failed: {job['message']}")
    return job_id


def seed(db: Path, template_id: str, total: int) -> list[str]:
    store = JobStore(db)
    template = store.get(template_id, with_progress=True)
    spec = store.spec(template_id)
    states = [JobState.SUCCEEDED] * 8 + [JobState.FAILED, JobState.CANCELLED]
    ids = [template_id]
    now = time.time()
    for i in range(total - 1):
        job_id = f"seeded-{i:05d}"
        store.create(NewJob(id=job_id, name=template.name, submitter=f"user{i % 17}",
                            client="127.0.0.1", output=f"{template.output}-{i}", gpus=0.0,
                            spec=spec, created_at=now - (total - i)))
        store.transition(job_id, JobState.RUNNING, "running", at=now - (total - i) + 1)
        store.transition(job_id, states[i % len(states)], "seeded", at=now - (total - i) + 5)
        store.save_progress(job_id, template.progress)
        ids.append(job_id)
    store.close()
    return ids


async def poll(url: str, ids: list[str], clients: int, seconds: float, interval: float):
    latencies: list[float] = []
    errors: dict[str, int] = {}
    deadline = time.monotonic() + seconds
    connector = aiohttp.TCPConnector(limit=clients)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(base_url=url, headers=AUTH, connector=connector,
                                     timeout=timeout) as session:
        async def client(n: int) -> None:
            rng = random.Random(n)
            await asyncio.sleep(rng.random() * max(interval, 0.05))  # spread the start
            while time.monotonic() < deadline:
                started = time.perf_counter()
                try:
                    async with session.get(f"/jobs/{rng.choice(ids)}") as response:
                        await response.read()
                        if response.status != 200:
                            errors[f"HTTP {response.status}"] = errors.get(
                                f"HTTP {response.status}", 0) + 1
                except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                    errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
                spent = time.perf_counter() - started
                latencies.append(spent)
                if interval:
                    await asyncio.sleep(max(0.0, interval - spent))

        began = time.monotonic()
        await asyncio.gather(*(client(n) for n in range(clients)))
        elapsed = time.monotonic() - began
    return latencies, errors, elapsed


def server_buckets(url: str) -> dict[float, float]:
    """The service's own latency histogram of GET /jobs/{id}: upper bound (s) -> count."""
    text = httpx.get(f"{url}/metrics", headers=AUTH, timeout=30).text
    buckets = {}
    for line in text.splitlines():
        if line.startswith("pipeline_api_request_duration_seconds_bucket") and \
                'method="GET"' in line and 'route="/jobs/{job_id}"' in line:
            le = line.split('le="', 1)[1].split('"', 1)[0]
            buckets[float(le)] = float(line.rsplit(" ", 1)[1])
    return buckets


def bucket_percentile(before: dict, after: dict, q: float) -> str:
    counts = {le: after[le] - before.get(le, 0.0) for le in after}
    total = counts.get(float("inf"), 0.0)
    for le in sorted(counts):
        if total and counts[le] >= q * total:
            return f"<= {le * 1000:g} ms" if le != float("inf") else "> 10 s"
    return "n/a"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--interval", type=float, action="append",
                        help="seconds between one client's polls; repeat for several runs "
                             "(default: 0.5, then 0 = as fast as answered)")
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--workdir", type=Path)
    args = parser.parse_args()
    intervals = args.interval or [0.5, 0.0]

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="api-load-"))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    service = start_service(workdir, port)
    try:
        print(f"starting the service (and its local Ray head) in {workdir} ...", flush=True)
        wait_until(lambda: httpx.get(f"{url}/healthz", timeout=1).status_code == 200
                   or service.poll() is not None, 120, "the service")
        if service.poll() is not None:
            raise SystemExit((workdir / "service.log").read_text())
        job_id = run_one_job(url, workdir / "root" / "examples" / "quickstart.yaml")
        ids = seed(workdir / "state" / "jobs.sqlite3", job_id, args.jobs)
        total = httpx.get(f"{url}/jobs", headers=AUTH, params={"limit": 1}).json()["total"]
        print(f"jobs stored: {total}; machine: {os.cpu_count()} cores, shared by the service, "
              f"its Ray head and these {args.clients} clients", flush=True)
        server = psutil.Process(service.pid)
        for interval in intervals:
            cpu_before = sum(server.cpu_times()[:2])
            buckets_before = server_buckets(url)
            latencies, errors, elapsed = asyncio.run(
                poll(url, ids, args.clients, args.seconds, interval))
            cpu = sum(server.cpu_times()[:2]) - cpu_before
            buckets_after = server_buckets(url)
            label = f"every {interval:g}s" if interval else "as fast as answered"
            ms = [v * 1000 for v in latencies]
            p99 = percentile(ms, 0.99)
            print(f"\n{args.clients} clients polling GET /jobs/{{id}} {label}, "
                  f"{elapsed:.1f}s:")
            print(f"  requests/s   {len(ms) / elapsed:9.0f}")
            print(f"  requests     {len(ms):9d}")
            print(f"  p50 latency  {percentile(ms, 0.50):9.1f} ms")
            print(f"  p90 latency  {percentile(ms, 0.90):9.1f} ms")
            print(f"  p99 latency  {p99:9.1f} ms   (target < {P99_TARGET_MS:.0f} ms: "
                  f"{'met' if p99 < P99_TARGET_MS else 'missed'}, "
                  f"{p99 / P99_TARGET_MS:.2f}x the target)")
            print(f"  max latency  {max(ms):9.1f} ms")
            print(f"  errors       {sum(errors.values()):9d}   (target 0)"
                  + (f" {errors}" if errors else ""))
            print(f"  in-service   p50 {bucket_percentile(buckets_before, buckets_after, 0.5)}, "
                  f"p99 {bucket_percentile(buckets_before, buckets_after, 0.99)}   (the "
                  "service's own histogram: request in to answer out, no client or socket "
                  "queueing)")
            print(f"  service CPU  {1000 * cpu / max(1, len(ms)):9.2f} ms per request "
                  f"({cpu / elapsed:.2f} cores busy)")
            print(f"  load average {os.getloadavg()[0]:9.2f}   (whole machine, last minute)",
                  flush=True)
    finally:
        service.terminate()
        try:
            service.wait(timeout=60)
        except subprocess.TimeoutExpired:
            service.kill()
        if not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
