"""`/metrics` in the Prometheus text format: jobs by state, documents processed per stage
(service-wide counters kept in the store), and the API's own request latency.

A registry of our own rather than prometheus_client's global one, so two apps in one process
(tests, an embedding program) never share or collide on series.
"""

from __future__ import annotations

import time

from prometheus_client import (CollectorRegistry, Counter, Histogram, disable_created_metrics,
                               generate_latest)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.process_collector import ProcessCollector

from pipeline.api.store import JobStore

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class _StoreCollector:
    """Figures read from the job store at scrape time."""

    def __init__(self, store: JobStore):
        self.store = store

    def collect(self):
        jobs = GaugeMetricFamily("pipeline_jobs", "Jobs in the store by state",
                                 labels=["state"])
        for state, count in self.store.counts_by_state().items():
            jobs.add_metric([state.value], count)
        yield jobs
        docs = CounterMetricFamily("pipeline_stage_docs",
                                   "Documents processed per stage by this service's jobs",
                                   labels=["stage", "outcome"])
        for row in self.store.stage_docs():
            docs.add_metric([row["stage"], "in"], row["docs_in"])
            docs.add_metric([row["stage"], "kept"], row["kept"])
            docs.add_metric([row["stage"], "rejected"], row["rejected"])
        yield docs


class Metrics:
    def __init__(self, store: JobStore):
        disable_created_metrics()  # no `_created` series beside every counter and histogram
        self.registry = CollectorRegistry(auto_describe=True)
        self.registry.register(_StoreCollector(store))
        ProcessCollector(registry=self.registry)
        self.latency = Histogram("pipeline_api_request_duration_seconds",
                                 "Time to answer an API request", ["method", "route"],
                                 buckets=LATENCY_BUCKETS, registry=self.registry)
        self.requests = Counter("pipeline_api_requests", "API requests answered",
                                ["method", "route", "status"], registry=self.registry)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class LatencyMiddleware:
    """ASGI middleware timing each request, labelled by its route template (not the raw
    path, so job ids never become label values)."""

    def __init__(self, app, metrics: Metrics):
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        answered = [False]

        def observe(status: int) -> None:
            # Timed to the start of the answer, so a streamed log counts as one quick reply.
            answered[0] = True
            route = getattr(scope.get("route"), "path", None) or "(unmatched)"
            method = scope.get("method", "GET")
            self.metrics.latency.labels(method, route).observe(time.perf_counter() - started)
            self.metrics.requests.labels(method, route, str(status)).inc()

        async def timed_send(message):
            if message["type"] == "http.response.start":
                observe(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, timed_send)
        finally:
            if not answered[0]:
                observe(500)
