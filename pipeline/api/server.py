"""`pipeline serve`: start the control plane.

With no Ray address configured (flag, PIPELINE_RAY_ADDRESS, RAY_API_SERVER_ADDRESS or
RAY_ADDRESS) the service starts a local Ray head with the dashboard and job server, or adopts
the one it started before (its record is in the state folder), so it works on one machine out
of the box. When the service stops, it stops that head too unless jobs are still active
(they go on, and the next start adopts the head and follows them) or --keep-ray is given.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from contextlib import contextmanager
from pathlib import Path

from pipeline.api import config as cfg
from pipeline.api.config import ConfigError, ServiceConfig
from pipeline.api.ray_head import LocalRayHead, RayHeadError

log = logging.getLogger("pipeline.api")


def connect_ray(config: ServiceConfig) -> LocalRayHead | None:
    """Fill in `config.ray_address`; returns the local head when the service owns one."""
    if config.ray_address:
        return None
    head = LocalRayHead(config.state_dir, num_cpus=config.ray_num_cpus, port=config.ray_port,
                        dashboard_port=config.dashboard_port)
    config.ray_address = head.ensure().dashboard_url
    return head


def serve(host: str = "127.0.0.1", port: int = 8000, *, config: ServiceConfig | None = None,
          log_level: str = "info", **settings) -> None:
    """Run the service until interrupted. `settings` are ServiceConfig fields, used when no
    `config` is given (`storage_roots` defaults to the current folder)."""
    import uvicorn

    from pipeline.api.app import create_app

    if config is None:
        settings.setdefault("state_dir", Path(os.environ.get(cfg.STATE_DIR_ENV,
                                                             ".pipeline-service")))
        settings.setdefault("storage_roots", cfg.roots_from_env() or [os.getcwd()])
        settings.setdefault("token", cfg.read_token())
        settings.setdefault("ray_address", cfg.ray_address_from_env())
        config = ServiceConfig(**settings)
    with _sigterm_as_exit():  # so a stop during the head's start still tidies it up
        head = connect_ray(config)
    app = create_app(config, owned_head=head)
    # The app's shutdown stops an owned head: uvicorn re-raises SIGTERM once it has shut
    # down, so code after run() would not get to do it.
    uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=False,
                timeout_graceful_shutdown=5)


@contextmanager
def _sigterm_as_exit():
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def leave(signum, _frame):
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, leave)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pipeline serve", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--state-dir", default=os.environ.get(cfg.STATE_DIR_ENV,
                                                              ".pipeline-service"),
                        help="stored specs, saved logs, the local Ray head's record "
                             f"(env {cfg.STATE_DIR_ENV}; default: ./.pipeline-service)")
    parser.add_argument("--db", default=os.environ.get(cfg.DB_ENV),
                        help=f"SQLite job store (env {cfg.DB_ENV}; default: "
                             "<state-dir>/jobs.sqlite3)")
    parser.add_argument("--storage-root", action="append", dest="storage_roots",
                        help="a folder (or URL prefix) specs may read and write; repeatable "
                             f"(env {cfg.ROOTS_ENV}, separated by '{os.pathsep}'; default: "
                             "the current folder)")
    parser.add_argument("--token-file", help=f"file holding the API token (or env "
                        f"{cfg.TOKEN_FILE_ENV}; or the token itself in {cfg.TOKEN_ENV}); "
                        "without one the API is open")
    parser.add_argument("--ray-address", help="Ray cluster (dashboard URL http://HOST:8265 or "
                        "GCS address); default: start and own a local head")
    parser.add_argument("--ray-num-cpus", type=int, help="CPUs of the local head (default: all)")
    parser.add_argument("--ray-port", type=int, default=0, help="local head's GCS port")
    parser.add_argument("--dashboard-port", type=int, default=0,
                        help="local head's dashboard / job server port")
    parser.add_argument("--keep-ray", action="store_true",
                        help="leave the local head running when the service stops")
    parser.add_argument("--job-python", help="interpreter that runs `-m pipeline run` on the "
                        "cluster (default: this service's own, right for a local head and for "
                        "a cluster running the same image)")
    parser.add_argument("--reserve-driver-gpus", action="store_true",
                        help="pass resources.gpus as entrypoint_num_gpus (reserves GPUs for "
                             "the driver in addition to the stages' own)")
    parser.add_argument("--max-request-bytes", type=int, default=1 << 20)
    parser.add_argument("--poll-interval", type=float, default=1.0,
                        help="seconds between reconciliations with Ray")
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s %(name)s: "
                        "%(message)s")
    try:
        ray_address = args.ray_address or cfg.ray_address_from_env()
        config = ServiceConfig(
            state_dir=Path(args.state_dir), db_path=Path(args.db) if args.db else None,
            storage_roots=args.storage_roots or cfg.roots_from_env() or [os.getcwd()],
            token=cfg.read_token(token_file=args.token_file), ray_address=ray_address,
            ray_num_cpus=args.ray_num_cpus, ray_port=args.ray_port,
            dashboard_port=args.dashboard_port, keep_ray=args.keep_ray,
            job_python=args.job_python or sys.executable,
            reserve_driver_gpus=args.reserve_driver_gpus,
            max_request_bytes=args.max_request_bytes, poll_interval=args.poll_interval)
        if config.token is None:
            log.warning("no API token configured: anyone who can reach %s:%d can submit jobs",
                        args.host, args.port)
        serve(args.host, args.port, config=config, log_level=args.log_level)
    except (ConfigError, RayHeadError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
