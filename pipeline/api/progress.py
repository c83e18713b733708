"""A job's progress, read from what the runner commits: `_work/plan.json` (the shards) and
one manifest per finished shard (docs/architecture.md, "Data layout").

Manifests are written once and renamed into place, so a tracker reads each file once and
afterwards only lists folders. A shard's final manifest (`manifests/`) carries the counts of
every stage; until it exists, the manifests of earlier segments (`_work/segment-N/`) carry
the counts of the stages before each global stage.

Per stage: shards done / planned, documents in, kept, rejected and stage seconds. For the
job: the fraction done (mean over stages of shards done / planned), documents per second of
wall-clock time, an ETA from that fraction, and documents finished over time (from the
manifests' commit times).
"""

from __future__ import annotations

import posixpath
import time
from dataclasses import dataclass, field

from pipeline.io.layout import JobLayout

READ_STAGE = "read"
TIMELINE_POINTS = 60


@dataclass
class _Shard:
    final: dict | None = None
    segments: dict[int, dict] = field(default_factory=dict)  # segment index -> manifest

    def entries(self) -> list[dict]:
        if self.final is not None:
            return self.final["stages"]
        entries: dict[int, dict] = {}
        for manifest in self.segments.values():
            for entry in manifest["stages"]:
                entries.setdefault(entry["step"], entry)
        return list(entries.values())


class JobProgress:
    """Progress of one job output folder; `snapshot()` re-reads only what is new."""

    def __init__(self, output: str, stage_names: list[str]):
        self.layout = JobLayout(output)
        self.stage_names = stage_names
        self.planned = 0
        self._shards: dict[str, _Shard] = {}
        self._seen: set[str] = set()

    def snapshot(self, started_at: float | None, finished_at: float | None = None,
                 now: float | None = None) -> dict:
        self._read_new()
        failed = self._failed()
        now = now if now is not None else time.time()
        elapsed = max(0.0, (finished_at or now) - started_at) if started_at else 0.0
        stages = self._stages()
        done = sum(1 for s in self._shards.values() if s.final is not None)
        fraction = (sum(min(s["shards_done"], self.planned) for s in stages)
                    / (len(stages) * self.planned)) if self.planned and stages else 0.0
        if finished_at is None and fraction >= 1:
            fraction = 0.999  # counts are in; the report is still being written
        first = stages[0] if stages else {"in": 0}
        last_kept = stages[-1]["kept"] if stages else 0
        docs = {"in": first["in"], "kept": last_kept, "rejected": sum(s["rejected"]
                                                                     for s in stages)}
        eta = elapsed * (1 - fraction) / fraction if 0 < fraction < 1 and finished_at is None \
            else None
        return {
            "shards": {"planned": self.planned, "done": done, "failed": failed},
            "fraction": round(fraction, 4),
            "docs": docs,
            "elapsed_s": round(elapsed, 1),
            "docs_per_s": round(docs["in"] / elapsed, 1) if elapsed > 0 else None,
            "eta_s": round(eta, 1) if eta is not None else None,
            "stages": stages,
            "timeline": self._timeline(started_at),
            "read_at": now,
        }

    # -- reading -----------------------------------------------------------------------------
    def _read_new(self) -> None:
        layout = self.layout
        if not self.planned and layout.exists(layout.plan()):
            self.planned = len(layout.read_json(layout.plan()).get("shards", []))
        finals = layout.fs.glob(layout.path("manifests", "part-*.json"))
        segments = layout.fs.glob(layout.path("_work", "segment-*", "manifests",
                                              "part-*.json"))
        for path in finals + segments:
            if path in self._seen:
                continue
            try:
                manifest = layout.read_json(path)
            except (OSError, ValueError):
                continue  # removed (a finished job cleans _work/) or being replaced
            self._seen.add(path)
            manifest = _trim(manifest)
            shard = self._shards.setdefault(posixpath.basename(path)[5:-5], _Shard())
            if "/_work/" in path:
                shard.segments[manifest["segment"]] = manifest
            else:
                shard.final = manifest
                shard.segments.clear()

    def _failed(self) -> int:
        return len(self.layout.fs.glob(self.layout.path("_work", "failed", "*", "part-*.json")))

    # -- summing -----------------------------------------------------------------------------
    def _stages(self) -> list[dict]:
        totals: dict[int, dict] = {-1: _entry(-1, READ_STAGE)}
        for step, name in enumerate(self.stage_names):
            totals[step] = _entry(step, name)
        # A shard with no documents left has a manifest without entries: which steps it has
        # passed is known from its segment (whose steps other shards' manifests show).
        segment_steps: dict[int, set[int]] = {}
        for shard in self._shards.values():
            for index, manifest in shard.segments.items():
                segment_steps.setdefault(index, set()).update(
                    e["step"] for e in manifest["stages"])
        for shard in self._shards.values():
            entries = shard.entries()
            for entry in entries:
                total = totals.setdefault(entry["step"], _entry(entry["step"], entry["stage"]))
                for key in ("in", "kept", "rejected", "seconds"):
                    total[key] += entry[key]
            if shard.final is not None:
                passed = set(totals)
            else:
                passed = {e["step"] for e in entries}.union(
                    *(segment_steps.get(k, set()) for k in shard.segments))
            for step in passed:
                totals[step]["shards_done"] += 1
        out = []
        for step in sorted(totals):
            total = totals[step]
            total["shards_planned"] = self.planned
            total["seconds"] = round(total["seconds"], 3)
            total["docs_per_s"] = round(total["in"] / total["seconds"], 1) \
                if total["seconds"] else None
            out.append(total)
        return out

    def _timeline(self, started_at: float | None) -> list[dict]:
        """Documents finished per interval: [{t: seconds since start, docs_per_s}]."""
        events = sorted((m.final["started"] + m.final["seconds"], m.final["stages"][0]["in"])
                        for m in self._shards.values()
                        if m.final is not None and m.final.get("stages"))
        if not events:
            return []
        start = started_at or events[0][0]
        span = max(events[-1][0] - start, 1e-6)
        width = max(span / TIMELINE_POINTS, 1.0)
        buckets: dict[int, int] = {}
        for at, docs in events:
            index = int(max(0.0, at - start) // width)
            buckets[index] = buckets.get(index, 0) + docs
        last = max(buckets)
        return [{"t": round((i + 1) * width, 2), "docs_per_s": round(buckets.get(i, 0) / width, 1)}
                for i in range(last + 1)]


def _trim(manifest: dict) -> dict:
    """What progress needs of a manifest (a big job has one per shard, all kept in memory)."""
    keys = ("step", "stage", "in", "kept", "rejected", "seconds")
    return {"segment": manifest.get("segment", 0), "started": manifest.get("started", 0.0),
            "seconds": manifest.get("seconds", 0.0),
            "stages": [{k: e[k] for k in keys} for e in manifest.get("stages", [])]}


def _entry(step: int, stage: str) -> dict:
    return {"step": step, "stage": stage, "shards_done": 0, "shards_planned": 0, "in": 0,
            "kept": 0, "rejected": 0, "seconds": 0.0}
