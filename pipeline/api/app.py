"""`create_app(config)`: the FastAPI application, wired from the service's parts."""

from __future__ import annotations

import asyncio
import logging
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from fastapi.openapi.utils import get_openapi

from pipeline.api.config import ConfigError, ServiceConfig
from pipeline.api.documents import documents_router
from pipeline.api.jobs import JobService
from pipeline.api.launcher import RayLauncher
from pipeline.api.metrics import LatencyMiddleware, Metrics
from pipeline.api.ray_head import LocalRayHead
from pipeline.api.reconciler import Reconciler
from pipeline.api.routes import api_router, install_error_handlers, public_router
from pipeline.api.security import BodySizeLimit, TokenAuth
from pipeline.api.storage import StorageRoots
from pipeline.api.store import JobStore
from pipeline.api.web import mount_static, web_router
from pipeline.api.whatif import whatif_router

log = logging.getLogger("pipeline.api")

TITLE = "curation pipeline control plane"
VERSION = "0.1.0"
DESCRIPTION = """Submit data-curation specs, follow them on Ray, read their reports.

Every route but `/healthz` needs `Authorization: Bearer <token>` when the service has a token.
Specs may only read and write under the service's storage roots. The dashboard is at `/ui/`.
"""


def create_app(config: ServiceConfig, *, reconcile: bool = True,
               owned_head: LocalRayHead | None = None) -> FastAPI:
    """The app for `config`. `config.ray_address` must name the Ray cluster (serve() fills it
    in with the local head it starts, passed as `owned_head`: the app stops it on shutdown
    unless jobs are still active or `config.keep_ray`). `reconcile=False` leaves out the
    background loop."""
    if not config.ray_address:
        raise ConfigError("no Ray address: serve() starts a local head when none is given")
    store = JobStore(config.db_path)
    launcher = RayLauncher(config.ray_address, python=config.job_python,
                           reserve_driver_gpus=config.reserve_driver_gpus)
    service = JobService(config, store, launcher, StorageRoots(config.storage_roots))
    reconciler = Reconciler(service, interval=config.poll_interval)
    metrics = Metrics(store)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if reconcile:
            reconciler.start()
        yield
        await reconciler.stop()
        if owned_head is not None and not config.keep_ray:
            active = store.active()
            if active:
                log.warning("leaving the local Ray head running: %d job(s) still active; the "
                            "next start with this state folder adopts it", len(active))
            else:
                await asyncio.to_thread(owned_head.stop)

    app = FastAPI(title=TITLE, version=VERSION, description=DESCRIPTION, lifespan=lifespan,
                  openapi_url=None, docs_url=None, redoc_url=None)
    app.state.service = service
    app.state.reconciler = reconciler
    auth = [Depends(TokenAuth(config.token))]
    app.include_router(public_router(service))
    app.include_router(api_router(service, metrics), dependencies=auth)
    app.include_router(documents_router(service), dependencies=auth)
    app.include_router(whatif_router(service), dependencies=auth)

    @app.get("/openapi.json", include_in_schema=False, dependencies=auth)
    async def openapi():
        if app.openapi_schema is None:
            app.openapi_schema = get_openapi(title=TITLE, version=VERSION,
                                             description=DESCRIPTION, routes=app.routes)
        return app.openapi_schema

    app.include_router(web_router())
    mount_static(app)
    install_error_handlers(app)
    app.add_middleware(BodySizeLimit, max_bytes=config.max_request_bytes)
    app.add_middleware(LatencyMiddleware, metrics=metrics)
    return app
