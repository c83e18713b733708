"""Fixtures for the control-plane tests (loaded with `pytest_plugins`).

One real Ray head with the dashboard and job server for the whole session, started by the
service's own `LocalRayHead` in a temp folder with free ports, so it never meets the
in-process cluster of the runner tests. Services run in a thread of the test process (uvicorn)
or, where a test kills one, in a subprocess.
"""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace

import pytest

from pipeline.api.ray_head import LocalRayHead
from tests.api_support import ServiceThread, make_root, service_config


@pytest.fixture(scope="session")
def ray_head(tmp_path_factory):
    """The session's Ray head: `.dashboard_url`, `.state_dir` (its record), `.head`."""
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # as the Makefile runs the tests
    head = LocalRayHead(tmp_path_factory.mktemp("ray-head"), num_cpus=2)
    record = head.ensure()
    yield SimpleNamespace(head=head, dashboard_url=record.dashboard_url,
                          state_dir=head.state_dir, record=record)
    head.stop()


@pytest.fixture
def storage_root(tmp_path) -> Path:
    return make_root(tmp_path)


@pytest.fixture
def service(tmp_path, ray_head, storage_root):
    with ServiceThread(service_config(tmp_path, ray_head, storage_root)) as running:
        yield running
