"""Settings of the control plane: where its state lives, which storage a spec may touch,
the API token, the Ray cluster, and request limits.

Every setting has a command-line flag (`pipeline serve --help`) and most an environment
variable, so the same image runs on a laptop and in a Kubernetes Deployment.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

TOKEN_ENV = "PIPELINE_API_TOKEN"
TOKEN_FILE_ENV = "PIPELINE_API_TOKEN_FILE"
ROOTS_ENV = "PIPELINE_STORAGE_ROOTS"
STATE_DIR_ENV = "PIPELINE_STATE_DIR"
DB_ENV = "PIPELINE_DB"
RAY_ADDRESS_ENVS = ("PIPELINE_RAY_ADDRESS", "RAY_API_SERVER_ADDRESS", "RAY_ADDRESS")


class ConfigError(ValueError):
    """A setting that cannot work; the message names it and what to do."""


@dataclass
class ServiceConfig:
    """What one service process needs to know."""

    state_dir: Path                      # stored specs, saved logs, local Ray head record
    storage_roots: list[str]             # folders (or URL prefixes) specs may read and write
    db_path: Path | None = None          # default: <state_dir>/jobs.sqlite3
    token: str | None = None             # bearer token; None = no auth
    ray_address: str | None = None       # None = start and own a local Ray head
    ray_num_cpus: int | None = None      # CPUs of the local head (default: all)
    ray_port: int = 0                    # local head ports; 0 = pick a free one
    dashboard_port: int = 0
    keep_ray: bool = False               # leave the local head running when the service stops
    job_python: str = field(default_factory=lambda: sys.executable)
    reserve_driver_gpus: bool = False    # see launcher.py: entrypoint_num_gpus
    max_request_bytes: int = 1 << 20
    max_spec_bytes: int = 256 << 10
    poll_interval: float = 1.0           # seconds between reconciliations with Ray

    def __post_init__(self):
        self.state_dir = Path(self.state_dir)
        if self.db_path is None:
            self.db_path = self.state_dir / "jobs.sqlite3"
        self.db_path = Path(self.db_path)
        if not self.storage_roots:
            raise ConfigError("no storage root configured; pass --storage-root DIR (or set "
                              f"{ROOTS_ENV}) so specs have somewhere to read and write")

    @property
    def specs_dir(self) -> Path:
        return self.state_dir / "specs"

    @property
    def logs_dir(self) -> Path:
        return self.state_dir / "logs"


def read_token(env: dict[str, str] | None = None, token_file: str | None = None) -> str | None:
    """The API token: from a file (flag or PIPELINE_API_TOKEN_FILE) or PIPELINE_API_TOKEN.
    A file is preferred because environment variables leak into child processes and logs."""
    env = os.environ if env is None else env
    path = token_file or env.get(TOKEN_FILE_ENV)
    if path:
        try:
            token = Path(path).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"cannot read the API token file {path}: {exc.strerror}") from None
        if not token:
            raise ConfigError(f"the API token file {path} is empty; write a token into it or "
                              "leave the setting out to run without authentication")
        return token
    return env.get(TOKEN_ENV) or None


def ray_address_from_env(env: dict[str, str] | None = None) -> str | None:
    env = os.environ if env is None else env
    for name in RAY_ADDRESS_ENVS:
        if env.get(name):
            return env[name]
    return None


def roots_from_env(env: dict[str, str] | None = None) -> list[str]:
    env = os.environ if env is None else env
    return [r for r in env.get(ROOTS_ENV, "").split(os.pathsep) if r]
