"""A global stage's small decision file (edges, thresholds): written whole or not at all, on
local disk or object storage, and read back by `apply` on any worker."""

from __future__ import annotations

import json
import posixpath
from typing import Any

import fsspec


def write_json_whole(path: str, payload: Any) -> None:
    """Write `payload` as JSON under a temporary name, then move it into place."""
    fs, local = fsspec.core.url_to_fs(path)
    fs.makedirs(posixpath.dirname(local), exist_ok=True)
    temporary = posixpath.join(posixpath.dirname(local), ".tmp-" + posixpath.basename(local))
    with fs.open(temporary, "w") as f:
        json.dump(payload, f)
    fs.mv(temporary, local)


def read_json(path: str) -> Any:
    with fsspec.open(path, "r") as f:
        return json.load(f)
