"""A real multi-node Ray cluster: examples/common_crawl.yaml (its global stages included) run
through `RAY_ADDRESS`, with worker nodes removed without grace mid-map and mid-global-phase,
and submitted by `pipeline serve`; each time the output must equal the embedded run's.

The cluster is `ray.cluster_utils.Cluster` on this machine: a head without CPUs (so every task
runs on a worker node) and two worker nodes of one CPU each. Each worker node is started in
its own empty working directory, and the driver of the first run reads its spec and the
decontamination benchmarks from a folder that only it can see (a tmpfs in its own mount
namespace): a task that opened a file existing only on the driver, or resolved a relative
path against its own working directory, would fail. Inputs and output live on the job's
storage (here a folder every node sees, as S3 or NFS would be on a real cluster).

Jobs run as `pipeline run` subprocesses with `RAY_ADDRESS` set, so the test process's own Ray
(conftest's `ray_cluster`, used for the embedded reference run) never meets this cluster.
A node is removed at a deterministic moment: in the map, while one of its workers is running
a shard's task (Ray titles the process `ray::_run_shard`) and the shards are not all
committed; in the global stage, while one of its workers holds a `dedup_minhash` phase unit
(tests/test_chaos.py's hold, reached through the driver).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import psutil
import pyarrow.parquet as pq
import pytest
import yaml

from pipeline.runner import run_job
from pipeline.spec import load_spec
from tests.api_support import ACTIVE, TOKEN, free_port, submit_yaml, wait_healthy
from tests.conftest import assert_accounting, kill_tree

pytestmark = pytest.mark.cluster

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "common_crawl.yaml"
WARC = ROOT / "examples" / "data" / "common-crawl-sample.warc.gz"
BENCH = ROOT / "examples" / "data" / "bench"
SHARD_BYTES = 16384  # the 78 KB sample in 5 shards, so that both worker nodes get some
SHARDS, RECORDS, KEPT = 5, 51, 25  # docs/common_crawl.md: 25 of the 51 records are kept
JOB_TIMEOUT = 180


# -- the cluster -------------------------------------------------------------------------------
@dataclass
class ThreeNodes:
    """The cluster and where its worker nodes were started."""

    cluster: object  # ray.cluster_utils.Cluster
    folder: Path
    temp_dirs: list[str]  # Ray's folder of each node, the head's first
    dashboard_url: str
    node_dirs: dict[int, Path] = field(default_factory=dict)  # raylet pid -> its cwd

    @property
    def address(self) -> str:
        return self.cluster.address

    def workers(self) -> list:
        return list(self.cluster.worker_nodes)

    def add_worker(self):
        """A 1-CPU worker node whose processes start in a folder of their own (a node's
        workers inherit its raylet's working directory), with Ray's files in a folder of its
        own too, as on a machine of its own: nodes sharing one would share the unpacked
        `working_dir` of a submitted job, which each node deletes when its workers are done
        with it, under the driver's feet."""
        home = self.folder / f"node-{len(self.node_dirs)}"
        home.mkdir()
        self.temp_dirs.append(tempfile.mkdtemp(prefix="pipeline-node-", dir="/tmp"))
        previous = os.getcwd()
        os.chdir(home)
        try:
            node = self.cluster.add_node(num_cpus=1, temp_dir=self.temp_dirs[-1])
        finally:
            os.chdir(previous)
        self.node_dirs[_raylet_pid(node)] = home
        return node

    def with_two_workers(self) -> "ThreeNodes":
        """Two live worker nodes again (a test before may have removed one)."""
        while len(self.workers()) < 2:
            self.add_worker()
        self.cluster.wait_for_nodes()
        return self

    def node_of(self, pid: int):
        """The worker node whose raylet started process `pid`, or None."""
        for node in self.workers():
            raylet = psutil.Process(_raylet_pid(node))
            if any(p.pid == pid for p in raylet.children(recursive=True)):
                return node
        return None

    def running(self, title: str):
        """A worker node with a process running a task titled `title`, or None."""
        for node in self.workers():
            for proc in psutil.Process(_raylet_pid(node)).children(recursive=True):
                try:
                    if proc.cmdline()[:1] == [title]:
                        return node
                except (psutil.NoSuchProcess, psutil.AccessDenied, IndexError):
                    continue
        return None

    @contextmanager
    def watch(self) -> Iterator[dict[int, tuple[int, Path]]]:
        """While in the block, records every Ray worker process of the worker nodes as
        pid -> (its node's raylet pid, its working directory): a job's worker processes end
        with its driver, so they are looked up while it runs."""
        seen: dict[int, tuple[int, Path]] = {}
        stop = threading.Event()

        def look():
            while not stop.is_set():
                for node in self.workers():
                    try:
                        raylet = psutil.Process(_raylet_pid(node))
                        for proc in raylet.children(recursive=True):
                            if proc.pid not in seen and proc.cmdline()[:1] != [""] and \
                                    proc.cmdline()[0].startswith("ray::"):
                                seen[proc.pid] = (raylet.pid, Path(proc.cwd()))
                    except (psutil.NoSuchProcess, psutil.AccessDenied, IndexError):
                        continue
                stop.wait(0.05)

        thread = threading.Thread(target=look, daemon=True)
        thread.start()
        try:
            yield seen
        finally:
            stop.set()
            thread.join(timeout=10)

    def env(self, **extra: str) -> dict[str, str]:
        env = dict(os.environ, RAY_ADDRESS=self.address)
        env.update(extra)
        return env


def _raylet_pid(node) -> int:
    return node.all_processes["raylet"][0].process.pid


@pytest.fixture(scope="module")
def three_nodes(tmp_path_factory):
    from ray import _private
    from ray.cluster_utils import Cluster

    folder = tmp_path_factory.mktemp("cluster")
    dashboard_port = free_port()
    # Its own temp folder (short: Unix socket paths live there), where it records its address.
    # Ray's job supervisor finds the cluster a submitted driver joins by that record; in
    # /tmp/ray, the default, any plain ray.init() on this machine would attach to it too.
    temp_dir = tempfile.mkdtemp(prefix="pipeline-cluster-", dir="/tmp")
    record = _private.utils.write_ray_address
    _private.utils.write_ray_address = lambda *args, **kwargs: None
    try:
        cluster = Cluster(initialize_head=True, head_node_args=dict(
            num_cpus=0, temp_dir=temp_dir, include_dashboard=True,
            dashboard_host="127.0.0.1", dashboard_port=dashboard_port,
            dashboard_agent_listen_port=free_port(),  # Ray's default may be another's
            # a node killed without grace is declared dead in ~1.5 s, not Ray's ~30 s
            _system_config={"health_check_period_ms": 500,
                            "health_check_failure_threshold": 3}))
    finally:
        _private.utils.write_ray_address = record
    record(cluster.address, temp_dir)
    nodes = ThreeNodes(cluster, folder, [temp_dir], f"http://127.0.0.1:{dashboard_port}")
    try:
        for _ in range(2):
            nodes.add_worker()
        cluster.wait_for_nodes()
        yield nodes
    finally:
        cluster.shutdown()
        for path in nodes.temp_dirs:
            shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def two_workers(three_nodes) -> ThreeNodes:
    return three_nodes.with_two_workers()


# -- the job -----------------------------------------------------------------------------------
def write_job(folder: Path, storage: Path) -> Path:
    """The example spec in `folder` with the benchmarks it reads on the driver beside it
    (its relative paths start there); the WARC input is read from the job's storage."""
    spec = yaml.safe_load(EXAMPLE.read_text())
    spec["input"]["paths"] = [str(storage / WARC.name)]
    spec["input"]["shard_bytes"] = SHARD_BYTES
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copytree(BENCH, folder / "data" / "bench")
    path = folder / "common_crawl.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def storage(tmp_path_factory) -> Path:
    """The job's storage: the input, and every run's output."""
    folder = tmp_path_factory.mktemp("storage")
    shutil.copy(WARC, folder / WARC.name)
    return folder


@pytest.fixture(scope="module")
def embedded(storage, ray_cluster) -> Path:
    """The reference: the same spec run on the test process's own one-node Ray."""
    out = storage / "embedded"
    result = run_job(load_spec(write_job(storage / "embedded-spec", storage),
                               output_override=str(out)), progress=False)
    assert (result.shards, result.failed) == (SHARDS, [])
    return out


def all_rows(out: Path, folder: str) -> list[dict]:
    """Every row of every committed shard of `folder` (data or rejected), in id order."""
    rows = [row for f in sorted((out / folder).glob("part-*.parquet"))
            for row in pq.read_table(f).to_pylist()]
    return sorted(rows, key=lambda r: r["id"])


def assert_same_output(out: Path, reference: Path) -> None:
    """Kept and rejected documents equal the reference's, every column (the rejected ones'
    stage and reason included), and each stage's counts do too."""
    for folder in ("data", "rejected"):
        got = all_rows(out, folder)
        assert got == all_rows(reference, folder), folder
        assert len({r["id"] for r in got}) == len(got), f"duplicate ids in {folder}"
    counts = [[(s["stage"], s["in"], s["kept"], s["rejected"]) for s in json.loads(
        (o / "report" / "summary.json").read_text())["funnel"]] for o in (out, reference)]
    assert counts[0] == counts[1]
    assert len(assert_accounting(out)) == SHARDS
    assert sum(pq.read_metadata(f).num_rows for f in (out / "data").glob("*.parquet")) == KEPT


def start_run(nodes: ThreeNodes, spec: Path, out: Path, log: Path, boot: str | None = None,
              home: Path | None = None) -> subprocess.Popen:
    """`pipeline run SPEC` on the cluster, from a working directory of its own (or `home`);
    `boot` is Python run in the driver first (a hold for the chaos test)."""
    if home is None:
        home = log.parent / "driver"
        home.mkdir(exist_ok=True)
    code = f"{boot or ''}\nimport sys; from pipeline.cli import main; sys.exit(main(sys.argv[1:]))"
    with open(log, "w") as handle:
        return subprocess.Popen([sys.executable, "-c", code, "run", str(spec), "--output",
                                 str(out), "--no-progress"], cwd=home, env=nodes.env(),
                                start_new_session=True, stdout=handle, stderr=handle)


def finish(proc: subprocess.Popen, log: Path) -> None:
    try:
        code = proc.wait(timeout=JOB_TIMEOUT)
    except subprocess.TimeoutExpired:
        kill_tree(proc)
        raise AssertionError(f"the job did not finish in {JOB_TIMEOUT}s:\n"
                             f"{log.read_text()[-3000:]}") from None
    assert code == 0, log.read_text()[-3000:]


def wait_until(condition: Callable[[], object], what: str, proc: subprocess.Popen,
               log: Path, timeout: float = 90):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        if proc.poll() is not None:
            raise AssertionError(f"the job ended before {what}:\n{log.read_text()[-3000:]}")
        time.sleep(0.02)
    kill_tree(proc)
    raise AssertionError(f"no {what} within {timeout}s:\n{log.read_text()[-3000:]}")


def holder(hold_file: Path) -> int | None:
    """The pid tests/test_chaos.py's hold_once wrote, once it is whole (ends in a newline)."""
    text = hold_file.read_text() if hold_file.exists() else ""
    return int(text) if text.endswith("\n") else None


def committed_map_shards(out: Path) -> int:
    return len(list(out.glob("_work/segment-0/manifests/part-*.json")))


def manifest_pids(out: Path) -> set[int]:
    """The worker processes that committed the job's shards (manifests say host:pid)."""
    manifests = [json.loads(p.read_text()) for p in (out / "manifests").glob("part-*.json")]
    return {int(m["worker"].rsplit(":", 1)[1]) for m in manifests}


# -- 1. the example on the cluster, the driver's files its own ---------------------------------
PRIVATE_DRIVER = ('mount -t tmpfs tmpfs "$1" && cp -R "$2"/. "$1" && rm -r "$2" && cd "$1" && '
                  'exec "$3" -m pipeline run "$1/common_crawl.yaml" --output "$4" --no-progress')


@dataclass
class ClusterRun:
    out: Path
    private: Path  # the driver's spec folder (in its own namespace when `hidden`)
    hidden: bool  # whether the workers could not see it
    # the processes that committed the shards: pid -> (their node's raylet pid, cwd)
    workers: dict[int, tuple[int, Path] | None]


@pytest.fixture(scope="module")
def cluster_run(three_nodes, storage, tmp_path_factory) -> ClusterRun:
    """The example on the cluster. Where mount namespaces are available (unprivileged user
    namespaces, or root), the driver runs in its own, on a tmpfs mounted over `private`
    and holding its spec and benchmarks: outside, on the worker nodes, `private` is empty."""
    folder = tmp_path_factory.mktemp("cluster-run")
    private, out, log = folder / "private", storage / "cluster", folder / "driver.log"
    private.mkdir()
    write_job(folder / "staging", storage)
    env = three_nodes.with_two_workers().env()
    # user + mount namespaces (no privilege needed), or as root where those are off, a mount
    # namespace alone (unshare makes its mounts private)
    namespaces = [["unshare", "--user", "--map-root-user", "--mount"]]
    if os.geteuid() == 0:
        namespaces.append(["unshare", "--mount"])
    with three_nodes.watch() as seen, open(log, "w") as handle:
        for unshare in namespaces:
            done = subprocess.run([*unshare, "sh", "-c", PRIVATE_DRIVER, "sh", str(private),
                                   str(folder / "staging"), sys.executable, str(out)],
                                  cwd=folder, env=env, stdout=handle, stderr=handle,
                                  timeout=JOB_TIMEOUT)
            if done.returncode == 0 or out.exists():  # ran (and passed or failed)
                break
        hidden = done.returncode == 0
        if not hidden and not out.exists():  # no namespace here: the driver reads the staging
            private = folder / "staging"
            done = subprocess.run([sys.executable, "-m", "pipeline", "run",
                                   str(private / "common_crawl.yaml"), "--output", str(out),
                                   "--no-progress"], cwd=folder, env=env, stdout=handle,
                                  stderr=handle, timeout=JOB_TIMEOUT)
    assert done.returncode == 0, log.read_text()[-3000:]
    workers = {pid: seen.get(pid) for pid in manifest_pids(out)}
    return ClusterRun(out, private, hidden, workers)


def test_cluster_run_of_the_example_equals_the_embedded_run(cluster_run, embedded):
    assert_same_output(cluster_run.out, embedded)


def test_shards_ran_on_both_worker_nodes_each_in_its_own_working_directory(
        cluster_run, three_nodes):
    workers = cluster_run.workers
    assert None not in workers.values(), workers  # each on a worker node
    assert len({raylet for raylet, _ in workers.values()}) == 2, workers
    for raylet, cwd in workers.values():
        assert cwd == three_nodes.node_dirs[raylet]


def test_workers_need_no_file_that_only_the_driver_has(cluster_run):
    if not cluster_run.hidden:
        pytest.skip("no mount namespace here for a driver-only folder")
    # The driver resolved the spec's relative benchmark paths into its private folder and
    # shipped the index through the object store: the workers never saw those files...
    assert list(cluster_run.private.iterdir()) == []
    spec = yaml.safe_load((cluster_run.out / "spec.yaml").read_text())
    decontam = next(s["decontam"] for s in spec["stages"] if "decontam" in s)
    assert all(b["path"].startswith(str(cluster_run.private)) for b in decontam["benchmarks"])
    # ...and the stage still dropped the two pages quoting them
    reasons = [r["reason"] for r in all_rows(cluster_run.out, "rejected")
               if r["stage"] == "decontam"]
    assert sorted(reasons) == ["contaminated:gsm8k", "contaminated:humaneval"]


# -- 2. `pipeline serve` with RAY_ADDRESS ------------------------------------------------------
def test_serve_with_ray_address_runs_the_job_on_the_cluster_and_reports_progress(
        two_workers, storage, tmp_path):
    from ray.job_submission import JobSubmissionClient

    root = tmp_path / "root"
    spec = yaml.safe_load(write_job(root / "examples", storage).read_text())
    spec["input"]["paths"] = ["data/input/" + WARC.name]  # inside the storage root
    (root / "examples" / "data" / "input").mkdir()
    shutil.copy(WARC, root / "examples" / "data" / "input" / WARC.name)
    port, log = free_port(), tmp_path / "serve.log"
    env = two_workers.env(RAY_ADDRESS=two_workers.dashboard_url, PIPELINE_API_TOKEN=TOKEN)
    with two_workers.watch() as seen_workers:
        serve = subprocess.Popen(
            [sys.executable, "-m", "pipeline", "serve", "--storage-root", str(root), "--port",
             str(port), "--state-dir", str(tmp_path / "state"), "--poll-interval", "0.3"],
            cwd=tmp_path, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT,
            start_new_session=True)
        try:
            job_id, seen, job_log = _submit_and_follow(f"http://127.0.0.1:{port}", serve, log,
                                              yaml.safe_dump(spec, sort_keys=False))
        finally:
            serve.terminate()
            serve.wait(timeout=30)
    job = seen[-1][1]
    assert job["state"] == "SUCCEEDED", (job.get("message"), job_log)
    # progress came while it ran: some, not all, of the work done
    assert any(state == "RUNNING" and 0 < (j.get("progress") or {}).get("fraction", 0) < 1
               for state, j in seen), [(state, j.get("progress")) for state, j in seen]
    progress = job["progress"]
    assert progress["shards"] == {"planned": SHARDS, "done": SHARDS, "failed": 0}
    assert progress["docs"] == {"in": RECORDS, "kept": KEPT, "rejected": RECORDS - KEPT}
    # the cluster ran it: Ray's job record, and shards committed by its worker nodes' processes
    info = JobSubmissionClient(two_workers.dashboard_url).get_job_info(job_id)
    assert str(getattr(info.status, "value", info.status)) == "SUCCEEDED"
    out = root / "out" / "common-crawl"
    assert manifest_pids(out) <= set(seen_workers)


def _submit_and_follow(url: str, serve: subprocess.Popen, log: Path,
                       spec: str) -> tuple[str, list[tuple[str, dict]], str]:
    """Submit `spec` (relative paths from `examples/`) and poll the job until it ends;
    returns its id, every (state, job) seen and the end of its log."""
    import httpx

    wait_healthy(url, serve, log)
    client = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"},
                          timeout=30)
    deadline = time.monotonic() + 60
    # 503 until the head's dashboard agent has registered (a freshly started cluster)
    while (response := submit_yaml(client, spec, base_dir="examples")).status_code == 503 \
            and time.monotonic() < deadline:
        time.sleep(0.5)
    assert response.status_code == 201, response.text
    job_id, seen = response.json()["id"], []
    deadline = time.monotonic() + JOB_TIMEOUT
    while time.monotonic() < deadline:
        job = client.get(f"/jobs/{job_id}").json()
        seen.append((job["state"], job))
        if job["state"] not in ACTIVE:
            break
        time.sleep(0.2)
    return job_id, seen, client.get(f"/jobs/{job_id}/logs", params={"tail": 40}).text


# -- 3. a worker node removed without grace ----------------------------------------------------
def test_worker_node_removed_mid_map_gives_the_embedded_output(two_workers, storage, embedded,
                                                               tmp_path):
    spec, out, log = write_job(tmp_path / "spec", storage), tmp_path / "out", tmp_path / "log"
    proc = start_run(two_workers, spec, out, log)
    try:
        # a shard committed, and a node running another's task
        victim = wait_until(lambda: committed_map_shards(out) and
                            two_workers.running("ray::_run_shard"),
                            "map task running after a first commit", proc, log)
        committed = committed_map_shards(out)
        two_workers.cluster.remove_node(victim, allow_graceful=False)
    except BaseException:
        kill_tree(proc)
        raise
    assert 1 <= committed < SHARDS, "the node must go mid-map"
    finish(proc, log)
    assert len(two_workers.workers()) == 1
    assert_same_output(out, embedded)


def test_worker_node_removed_mid_global_phase_gives_the_embedded_output(
        two_workers, storage, embedded, tmp_path):
    spec, out, log = write_job(tmp_path / "spec", storage), tmp_path / "out", tmp_path / "log"
    hold_file = tmp_path / "held"
    # dedup_minhash's `members` phase: its first unit runs, then holds until killed (a retry
    # passes); by then the map and dedup_exact are done.
    boot = ("from tests.test_chaos import hold_phase; "
            f"hold_phase('stages.dedup_minhash', '_members', {str(hold_file)!r})")
    # from the repository: Ray puts the driver's working directory on the workers' sys.path,
    # which is how they find the hold in tests/
    proc = start_run(two_workers, spec, out, log, boot=boot, home=ROOT)
    try:
        pid = wait_until(lambda: holder(hold_file), "a held members unit", proc, log,
                         timeout=JOB_TIMEOUT)
        victim = two_workers.node_of(pid)
        assert victim is not None, "the held unit must run on a worker node"
        two_workers.cluster.remove_node(victim, allow_graceful=False)
    except BaseException:
        kill_tree(proc)
        raise
    assert committed_map_shards(out) == SHARDS
    assert not list(out.glob("manifests/part-*.json")), "the node must go inside the phases"
    finish(proc, log)
    assert len(two_workers.workers()) == 1
    assert_same_output(out, embedded)
