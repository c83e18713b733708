"""Ray's own token authentication (Ray >= 2.52), as the service needs it.

A Ray head accepts jobs from anyone who can reach it unless token authentication is on, so a
head the service starts for itself turns it on, as `ray.init()` does for a new local cluster:
unless RAY_AUTH_MODE says otherwise, RAY_AUTH_MODE=token is set for this process (and so for
the head and every job driver it starts) and a token is generated under ~/.ray if none
exists. Plain HTTP calls to Ray (health checks) carry the token the way Ray's SDK does.

These helpers live in Ray's private modules; on a Ray without them nothing happens.
"""

from __future__ import annotations

import logging
import os

log = logging.getLogger("pipeline.api")


def enable_for_local_head() -> None:
    if os.environ.get("RAY_AUTH_MODE") is not None:
        return  # chosen by whoever runs the service
    try:
        from ray._private.authentication.authentication_token_setup import (
            enable_token_auth_by_default, ensure_token_if_auth_enabled)
    except ImportError:
        return
    enable_token_auth_by_default()
    ensure_token_if_auth_enabled(None, create_token_if_missing=True)
    log.info("the local Ray head uses token authentication (RAY_AUTH_MODE=token)")


def http_headers() -> dict[str, str]:
    """Headers that authenticate an HTTP request to Ray, when its token auth is on."""
    try:
        from ray._private.authentication.http_token_authentication import (
            get_auth_headers_if_auth_enabled)
    except ImportError:
        return {}
    return dict(get_auth_headers_if_auth_enabled({}))
