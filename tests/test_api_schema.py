"""Schemathesis against the service's own OpenAPI schema: requests generated from it, valid
and invalid, never get a server error (5xx)."""

from __future__ import annotations

import os

import pytest

try:
    import schemathesis
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis.errors import Unsatisfiable
    from schemathesis import GenerationMode
    from schemathesis.checks import not_a_server_error
except ImportError:
    if os.environ.get("CI"):
        raise
    pytest.skip("schemathesis is not installed (the [dev] extra)", allow_module_level=True)

from tests.api_support import TOKEN, ServiceThread, make_root, service_config

pytest_plugins = ["tests.api_fixtures"]

AUTH = {"Authorization": f"Bearer {TOKEN}"}
EXAMPLES = 30  # per operation and mode: bounded, so this stays a few seconds


@pytest.fixture(scope="module")
def api(tmp_path_factory, ray_head):
    tmp = tmp_path_factory.mktemp("schema")
    config = service_config(tmp, ray_head, make_root(tmp))
    with ServiceThread(config) as running:
        yield running


def test_no_generated_request_gets_a_server_error(api):
    schema = schemathesis.openapi.from_url(f"{api.url}/openapi.json", headers=AUTH)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {(op.method.upper(), op.path) for op in operations} >= {
        ("POST", "/jobs"), ("GET", "/jobs"), ("GET", "/jobs/{job_id}"),
        ("DELETE", "/jobs/{job_id}"), ("POST", "/jobs/{job_id}/cancel"),
        ("GET", "/jobs/{job_id}/logs"), ("GET", "/jobs/{job_id}/report"),
        ("GET", "/metrics"), ("GET", "/healthz")}
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(max_examples=EXAMPLES, deadline=None, database=None,
                      phases=[Phase.explicit, Phase.generate],
                      suppress_health_check=list(HealthCheck))
            def call(case):
                case.call_and_validate(headers=AUTH, checks=[not_a_server_error], timeout=30)

            try:
                call()
            except Unsatisfiable:
                # Nothing to make invalid: an operation without parameters or body.
                assert mode is GenerationMode.NEGATIVE, operation.path
