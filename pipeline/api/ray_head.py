"""The local Ray head a service starts and owns when no cluster address is configured.

Why `ray start --head` in a subprocess rather than `ray.init()` in the service: a head inside
the service process would die with it, and every running job with it. A separate head keeps
running when the service is restarted (or killed); the next service adopts it from the
record in its state folder and reconciles the jobs it left behind.

The head gets its own temp folder and free ports, so it never collides with another Ray on
the machine (a test session's, another user's). It runs in its own process group, which is
how it is stopped: never with `ray stop`, which stops every Ray on the machine.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from hashlib import sha256
from pathlib import Path

import psutil
import requests

from pipeline.api import ray_auth
from pipeline.api.config import TOKEN_ENV, TOKEN_FILE_ENV

log = logging.getLogger("pipeline.api")


class RayHeadError(RuntimeError):
    """The local head could not be started; the message carries Ray's own output."""


@dataclass
class HeadRecord:
    dashboard_url: str
    gcs_address: str
    session_name: str
    temp_dir: str
    pgid: int
    started_at: float


class LocalRayHead:
    """Start, adopt and stop a Ray head whose record lives in `state_dir/ray-head.json`."""

    def __init__(self, state_dir: str | Path, num_cpus: int | None = None, port: int = 0,
                 dashboard_port: int = 0, object_store_bytes: int | None = None):
        self.state_dir = Path(state_dir)
        self.num_cpus = num_cpus
        self.port = port
        self.dashboard_port = dashboard_port
        self.object_store_bytes = object_store_bytes or _default_object_store()
        self.record_path = self.state_dir / "ray-head.json"
        # Unix socket paths live under the temp folder and must stay short (~107 bytes).
        digest = sha256(str(self.state_dir.resolve()).encode()).hexdigest()[:10]
        self.temp_dir = f"/tmp/pipeline-ray-{digest}"

    def ensure(self, timeout: float = 90) -> HeadRecord:
        """The running head of this state folder: adopted if alive, else started."""
        ray_auth.enable_for_local_head()
        record = self.adopt()
        if record is not None:
            log.info("adopted the local Ray head at %s", record.dashboard_url)
            return record
        return self.start(timeout)

    def adopt(self) -> HeadRecord | None:
        record = self.read_record()
        if record is None:
            return None
        status, version = _probe(record.dashboard_url)
        if status in (401, 403):
            raise RayHeadError(f"the local Ray head at {record.dashboard_url} refuses this "
                               "service's token; start the service with the RAY_AUTH_MODE "
                               "(and token) the head was started with")
        if version and version.get("session_name") == record.session_name:
            return record
        return None

    def read_record(self) -> HeadRecord | None:
        try:
            return HeadRecord(**json.loads(self.record_path.read_text()))
        except (OSError, ValueError, TypeError):
            return None

    def start(self, timeout: float = 90) -> HeadRecord:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        leftover = self._pgid_of_head()
        if leftover:  # ours (same temp folder), but it lost its record or stopped answering
            log.warning("stopping a leftover Ray head of %s that does not answer", self.state_dir)
            self._kill_group(leftover)
        port = self.port or _free_port()
        dashboard_port = self.dashboard_port or _free_port()
        args = [_ray_executable(), "start", "--head", "--disable-usage-stats",
                f"--port={port}", "--node-ip-address=127.0.0.1",
                "--include-dashboard=true", "--dashboard-host=127.0.0.1",
                f"--dashboard-port={dashboard_port}",
                f"--ray-client-server-port={_free_port()}",
                f"--dashboard-agent-listen-port={_free_port()}",
                f"--temp-dir={self.temp_dir}",
                f"--object-store-memory={self.object_store_bytes}"]
        if self.num_cpus is not None:
            args.append(f"--num-cpus={self.num_cpus}")
        log.info("starting a local Ray head: %s", " ".join(args))
        # Jobs inherit the head's environment, and a spec decides what a job does: the
        # service's own secrets stay out of it.
        env = {k: v for k, v in os.environ.items() if k not in (TOKEN_ENV, TOKEN_FILE_ENV)}
        try:
            done = subprocess.run(args, capture_output=True, text=True, timeout=timeout,
                                  start_new_session=True, stdin=subprocess.DEVNULL, env=env)
            if done.returncode != 0:
                raise RayHeadError(f"`ray start --head` failed (exit {done.returncode}):\n"
                                   f"{(done.stderr or done.stdout)[-3000:]}")
            url = f"http://127.0.0.1:{dashboard_port}"
            deadline = time.monotonic() + timeout
            version = None
            while time.monotonic() < deadline and not (version := _version(url)):
                time.sleep(0.3)
            if not version:
                raise RayHeadError(f"the Ray dashboard at {url} did not answer in "
                                   f"{timeout:.0f}s")
            _wait_for_job_server(url, deadline)
            pgid = self._pgid_of_head()
        except BaseException as exc:  # a half-started head must not outlive us
            self._kill_group(self._pgid_of_head())
            if isinstance(exc, subprocess.TimeoutExpired):
                raise RayHeadError(f"`ray start --head` did not finish in {timeout:.0f}s") \
                    from exc
            raise
        record = HeadRecord(dashboard_url=url, gcs_address=f"127.0.0.1:{port}",
                            session_name=version["session_name"], temp_dir=self.temp_dir,
                            pgid=pgid or 0, started_at=time.time())
        tmp = self.record_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(record), indent=1))
        tmp.replace(self.record_path)
        return record

    def stop(self, timeout: float = 8) -> bool:
        """Stop the head of this state folder (only its own processes). False if none ran."""
        record = self.read_record()
        if record is None:
            return False
        stopped = self._kill_group(record.pgid, timeout)
        self.record_path.unlink(missing_ok=True)
        return stopped

    # -- processes ---------------------------------------------------------------------------
    def _members(self, pgid: int) -> list[psutil.Process]:
        """Processes of group `pgid`, if it is this head's group: one of them must name this
        head's temp folder, so a recycled group id never makes us stop someone else's."""
        members, ours = [], False
        for proc in psutil.process_iter(["pid", "cmdline"]):
            try:
                if os.getpgid(proc.pid) == pgid:
                    members.append(proc)
                    ours = ours or self.temp_dir in " ".join(proc.info["cmdline"] or [])
            except (ProcessLookupError, psutil.Error, OSError):
                continue
        return members if ours else []

    def _pgid_of_head(self) -> int | None:
        for proc in psutil.process_iter(["pid", "cmdline"]):
            try:
                cmdline = " ".join(proc.info["cmdline"] or [])
                if "gcs_server" in cmdline and self.temp_dir in cmdline:
                    return os.getpgid(proc.pid)
            except (ProcessLookupError, psutil.Error, OSError):
                continue
        return None

    def _kill_group(self, pgid: int | None, timeout: float = 8) -> bool:
        if not pgid:
            return False
        members = self._members(pgid)
        if not members:
            return False
        # GCS lingers after SIGTERM; the cluster is being thrown away, so do not wait long.
        for sig, wait in ((signal.SIGTERM, timeout * 0.4), (signal.SIGKILL, timeout * 0.6)):
            for proc in members:
                try:
                    proc.send_signal(sig)
                except psutil.Error:
                    pass
            _, members = psutil.wait_procs(members, timeout=wait)
            if not members:
                break
        return True


def _ray_executable() -> str:
    beside = Path(sys.executable).with_name("ray")
    return str(beside) if beside.exists() else "ray"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _probe(url: str) -> tuple[int | None, dict | None]:
    """(HTTP status, version info) of a Ray dashboard; (None, None) if nothing answers."""
    try:
        response = requests.get(f"{url}/api/version", timeout=2, headers=ray_auth.http_headers())
        return response.status_code, (response.json() if response.ok else None)
    except (requests.RequestException, ValueError):
        return None, None


def _version(url: str) -> dict | None:
    return _probe(url)[1]


def _wait_for_job_server(url: str, deadline: float) -> None:
    # The dashboard answers before its job module is ready to list (and so to take) jobs.
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{url}/api/jobs/", timeout=2, headers=ray_auth.http_headers()).ok:
                return
        except requests.RequestException:
            pass
        time.sleep(0.3)


def _default_object_store() -> int:
    # Documents never travel through the object store (workers read and write shards
    # themselves), so a small store leaves the memory to the stages.
    return int(min(2 * 2**30, max(256 * 2**20, psutil.virtual_memory().total * 0.05)))
