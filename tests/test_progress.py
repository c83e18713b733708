"""Live progress from committed manifests, and the processes an embedded Ray keeps."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from pipeline.progress import ProgressDisplay

ROOT = Path(__file__).resolve().parents[1]


def entry(step: int, stage: str, docs_in: int, kept: int) -> dict:
    return {"stage": stage, "step": step, "in": docs_in, "added": 0, "kept": kept,
            "rejected": docs_in - kept, "seconds": 0.1}


def test_display_adds_up_the_committed_units_counts_per_stage():
    stream = io.StringIO()
    display = ProgressDisplay(stream=stream)
    segment0 = (entry(-1, "read", 10, 10), entry(0, "length_filter", 10, 8))
    display.add(segment0)
    display.add(segment0)
    display.add((entry(1, "dedup_exact", 8, 6),))
    display.set_phase("segment 1 (dedup_exact)", 1, 2)
    display.refresh(force=True)
    lines = stream.getvalue().splitlines()
    assert lines[0].startswith("[progress] segment 1 (dedup_exact): shards 1/2")
    assert [line.split(" docs/s")[0] for line in lines[1:]] == [
        "[progress]   read: in=20 out=20", "[progress]   1. length_filter: in=20 out=16",
        "[progress]   2. dedup_exact: in=8 out=6"]


def test_embedded_ray_runs_no_autoscaler_monitor_or_dashboard_process():
    probe = ("import ray, psutil; from pipeline.ray_env import ensure_ray, shutdown_embedded;"
             "ensure_ray(1); kids = psutil.Process().children(recursive=True);"
             "print('|'.join(' '.join(p.cmdline()) for p in kids));"
             "print(ray.get(ray.remote(lambda: 7).remote())); shutdown_embedded()")
    ray_dir = tempfile.mkdtemp(prefix="r", dir="/tmp")  # Ray's socket paths stay short
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            timeout=180, cwd=ROOT, env=dict(os.environ, RAY_TMPDIR=ray_dir))
    shutil.rmtree(ray_dir, ignore_errors=True)
    assert result.returncode == 0, result.stderr
    children, answer = result.stdout.strip().splitlines()[-2:]
    assert answer == "7"
    assert "raylet" in children and "gcs_server" in children
    assert "autoscaler/_private/monitor.py" not in children
    assert "dashboard/dashboard.py" not in children
