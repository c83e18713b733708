"""Where a job's files live (docs/architecture.md, "Data layout"). Everything that reads
or writes a job's output asks this module for paths, so the layout is written down once."""

from __future__ import annotations

import json
import posixpath
from dataclasses import dataclass
from typing import Any, NamedTuple

import fsspec
import pyarrow as pa
from fsspec.implementations.local import LocalFileSystem


def open_for_arrow(fs, path: str, mode: str):
    """A file for pyarrow: native (no Python file object between Arrow and the disk) when
    the path is local, an fsspec file otherwise. `mode` is "rb" or "wb"."""
    if isinstance(fs, LocalFileSystem):
        return pa.OSFile(path, mode)
    return fs.open(path, mode)


def storage_url(fs, path: str) -> str:
    """The fsspec URL of `path` on `fs` (a path as `url_to_fs` returns it, protocol stripped):
    what another process opens to reach the same file."""
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    return path if protocol in ("file", "local") else f"{protocol}://{path}"


def shard_name(index: int) -> str:
    return f"{index:05d}"


class ShardFiles(NamedTuple):
    """A shard's output after one segment; the manifest, written last, commits it."""

    data: str
    rejected: str
    manifest: str


@dataclass
class JobLayout:
    root: str

    def __post_init__(self):
        # No cached listings: workers (other processes) commit shards while the driver looks
        # for them, and an object store's cached listing would hide them (docs/architecture.md,
        # "Object storage").
        self.fs, self.base = fsspec.core.url_to_fs(self.root, use_listings_cache=False)

    def path(self, *parts: str) -> str:
        return posixpath.join(self.base, *parts)

    # final, user-facing outputs
    def data(self, shard: str) -> str:
        return self.path("data", f"part-{shard}.parquet")

    def rejected(self, shard: str) -> str:
        return self.path("rejected", f"part-{shard}.parquet")

    def manifest(self, shard: str) -> str:
        return self.path("manifests", f"part-{shard}.json")

    def spec(self) -> str:
        return self.path("spec.yaml")

    def report_dir(self) -> str:
        return self.path("report")

    # intermediate state: segment outputs of multi-segment jobs, global stage scratch, plan
    def plan(self) -> str:
        return self.path("_work", "plan.json")

    def segment_dir(self, segment: int) -> str:
        return self.path("_work", f"segment-{segment}")

    def unit(self, segment: int, shard: str, final: bool) -> ShardFiles:
        """A shard's files after `segment`. The last segment writes the user-facing files;
        earlier ones write under _work/."""
        if final:
            return ShardFiles(self.data(shard), self.rejected(shard), self.manifest(shard))
        folder = self.segment_dir(segment)
        return ShardFiles(posixpath.join(folder, "data", f"part-{shard}.parquet"),
                          posixpath.join(folder, "rejected", f"part-{shard}.parquet"),
                          posixpath.join(folder, "manifests", f"part-{shard}.json"))

    def url(self, path: str) -> str:
        """An fsspec URL for a path of this layout (what stages and readers open)."""
        return storage_url(self.fs, path)

    def failure(self, segment: int, shard: str) -> str:
        return self.path("_work", "failed", f"segment-{segment}", f"part-{shard}.json")

    def global_dir(self, step_index: int, name: str) -> str:
        return self.path("_work", "global", f"{step_index:02d}-{name}")

    # small JSON helpers with an atomic rename, so a reader never sees half a file
    def write_json(self, path: str, payload: Any) -> None:
        self.fs.makedirs(posixpath.dirname(path), exist_ok=True)
        tmp = posixpath.join(posixpath.dirname(path), f".tmp-{posixpath.basename(path)}")
        with self.fs.open(tmp, "w") as f:
            json.dump(payload, f, indent=1, sort_keys=True)
        self.fs.mv(tmp, path)

    def read_json(self, path: str) -> Any:
        with self.fs.open(path, "r") as f:
            return json.load(f)

    def exists(self, path: str) -> bool:
        return self.fs.exists(path)
