"""The runner end to end on a real local Ray: layout, accounting, determinism, resume, errors."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import pyarrow.parquet as pq
import pytest

import pyarrow as pa

from pipeline.registry import register
from pipeline.runner import JobError, run_job
from pipeline.spec import load_spec
from pipeline.stage import (Resources, Stage, StageConfig, StageOutput, reasons_or_none,
                            with_column)
from tests.conftest import (assert_accounting, kill_tree, make_text, write_jsonl, write_parquet,
                            write_spec)

ROOT = Path(__file__).resolve().parents[1]


def corpus_rows(n: int, offset: int = 0) -> list[dict]:
    # every 5th document is too short for length_filter(min_words=5)
    return [{"text": make_text(i, 3 if i % 5 == 0 else 8 + i % 40), "url": f"https://x.org/{i}"}
            for i in range(offset, offset + n)]


def job_spec(tmp_path: Path, inputs: str, fmt: str, out: str = "out", extra: str = "") -> Path:
    return write_spec(tmp_path / f"{out}.yaml", f"""\
name: test-job
input: {{format: {fmt}, paths: ["{inputs}"]{extra}}}
output: {{path: {out}}}
stages:
  - length_filter: {{min_words: 5}}
""")


def read_ids(out: Path, folder: str) -> list[str]:
    files = sorted((out / folder).glob("part-*.parquet"))
    return [i for f in files for i in pq.read_table(f, columns=["id"])["id"].to_pylist()]


def manifests(out: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((out / "manifests").glob("part-*.json"))]


def run_cli(*args: str, timeout: int = 180) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipeline", *args], capture_output=True,
                          text=True, timeout=timeout, cwd=ROOT)


def test_job_writes_layout_and_accounts_for_every_document(tmp_path, ray_cluster):
    for part in range(3):
        write_jsonl(tmp_path / "in" / f"p{part}.jsonl", corpus_rows(100, part * 100))
    spec = load_spec(job_spec(tmp_path, "in/*.jsonl", "jsonl"))
    result = run_job(spec, progress=False)
    out = tmp_path / "out"
    assert (out / "spec.yaml").exists()
    assert len(list((out / "data").glob("part-*.parquet"))) == 3
    assert_accounting(out)
    kept, rejected = read_ids(out, "data"), read_ids(out, "rejected")
    assert len(kept) == 240 and len(rejected) == 60
    assert len(set(kept) | set(rejected)) == 300  # nothing lost, nothing doubled
    table = pq.read_table(out / "rejected" / "part-00000.parquet")
    assert set(table["stage"].to_pylist()) == {"length_filter"}
    assert all(r.startswith("too_short:words=") for r in table["reason"].to_pylist())
    assert pq.ParquetFile(out / "data" / "part-00000.parquet").metadata.row_group(0) \
        .column(0).compression == "ZSTD"
    assert [s["stage"] for s in result.stages] == ["read", "length_filter"]
    summary = json.loads((out / "report" / "summary.json").read_text())
    assert summary["docs"] == {"in": 300, "kept": 240, "rejected": 60}
    assert summary["reasons"][0]["reason"] == "too_short:words"
    assert "<svg" in (out / "report" / "index.html").read_text()


def test_ids_are_stable_and_runs_are_deterministic(tmp_path, ray_cluster):
    write_parquet(tmp_path / "in" / "a.parquet", corpus_rows(500), row_group_size=100)
    outputs = []
    for name in ("out1", "out2"):
        spec = load_spec(job_spec(tmp_path, "in/*.parquet", "parquet", name, ", shard_rows: 150"))
        run_job(spec, progress=False)
        files = sorted((tmp_path / name / "data").glob("*.parquet"))
        outputs.append([pq.read_table(f, columns=["id", "text"]).to_pylist() for f in files])
    assert outputs[0] == outputs[1]
    assert len(outputs[0]) == 3  # row groups of 100 gathered into shards of 200, 200, 100


def test_parquet_shards_follow_row_groups(tmp_path, ray_cluster):
    write_parquet(tmp_path / "in" / "a.parquet", corpus_rows(1000), row_group_size=100)
    spec = load_spec(job_spec(tmp_path, "in/*.parquet", "parquet", extra=", shard_rows: 300"))
    run_job(spec, progress=False)
    counts = [m["stages"][0]["in"] for m in manifests(tmp_path / "out")]
    assert counts == [300, 300, 300, 100]


def test_bad_inputs_become_file_errors_or_rejected_rows(tmp_path, ray_cluster):
    write_jsonl(tmp_path / "in" / "good.jsonl", corpus_rows(50))
    (tmp_path / "in" / "empty.jsonl").write_bytes(b"")
    with open(tmp_path / "in" / "mixed.jsonl", "wb") as f:
        f.write(json.dumps({"text": make_text(1, 20)}).encode() + b"\n")
        f.write(b'{"text": "caf\xe9 au lait and more words here"}\n')  # latin-1 byte
        f.write(b'{"text": "unterminated\n')
        f.write(b'[1, 2, 3]\n')
        f.write(b'{"text": 42}\n')
        f.write(json.dumps({"text": make_text(2, 20)}).encode() + b"\n")
    write_parquet(tmp_path / "in" / "wrong_schema.parquet", [{"body": "x"}])
    spec_path = write_spec(tmp_path / "job.yaml", """\
name: bad-input
input: {format: jsonl, paths: ["in/*.jsonl"]}
output: {path: out}
errors: {max_failed_fraction: 0.5}
stages:
  - length_filter: {min_words: 5}
""")
    result = run_job(load_spec(spec_path), progress=False)
    assert [f["error"] for f in result.failed] == [
        f"{tmp_path / 'in' / 'empty.jsonl'}: file is empty (0 bytes)"]
    rejected = pq.read_table(tmp_path / "out" / "rejected" / "part-00002.parquet").to_pylist()
    reasons = sorted(r["reason"] for r in rejected)
    assert reasons == ["bad_json:col=23", "bad_json:not_an_object", "bad_text:type=int",
                       "invalid_utf8:byte=13"]
    assert {r["stage"] for r in rejected} == {"read"}
    kept = pq.read_table(tmp_path / "out" / "data" / "part-00002.parquet")
    assert kept.num_rows == 2
    summary = json.loads((tmp_path / "out" / "report" / "summary.json").read_text())
    assert summary["shards"]["failed"] == 1 and "empty" in summary["failures"][0]["error"]

    parquet_spec = write_spec(tmp_path / "pq.yaml", """\
name: bad-parquet
input: {format: parquet, paths: ["in/*.parquet"]}
output: {path: out-pq}
""")
    with pytest.raises(JobError) as info:
        run_job(load_spec(parquet_spec), progress=False)
    message = str(info.value)
    assert "wrong_schema.parquet: no column 'text' (columns: body)" in message
    assert "set input.text_column" in message


def test_resume_after_kill_matches_uninterrupted_run(tmp_path, ray_cluster):
    write_parquet(tmp_path / "in" / "big.parquet", corpus_rows(60_000), row_group_size=1000)
    extra = ", shard_rows: 1000"
    clean = load_spec(job_spec(tmp_path, "in/*.parquet", "parquet", "clean", extra))
    run_job(clean, progress=False)

    spec_path = job_spec(tmp_path, "in/*.parquet", "parquet", "killed", extra)
    proc = subprocess.Popen([sys.executable, "-m", "pipeline", "run", str(spec_path),
                             "--no-progress"], cwd=ROOT, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    manifest_dir = tmp_path / "killed" / "manifests"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(list(manifest_dir.glob("part-*.json"))) < 8:
        time.sleep(0.02)
    # Kill the driver and everything it started (Ray's raylet, GCS and workers), as a crash
    # of the machine would, and wait until none of them can still commit a shard.
    kill_tree(proc)
    before = {p.name: p.read_text() for p in manifest_dir.glob("part-*.json")}
    assert 8 <= len(before) < 60, "the kill must land mid-way"

    result = run_cli("run", str(spec_path), "--no-progress")
    assert result.returncode == 0, result.stderr
    assert f"60 shards ({len(before)} already done)" in result.stdout
    for name, text in before.items():  # committed shards were not redone
        assert (manifest_dir / name).read_text() == text
    for folder in ("data", "rejected"):
        killed, clean_ids = read_ids(tmp_path / "killed", folder), read_ids(tmp_path / "clean",
                                                                               folder)
        assert killed == clean_ids and len(set(killed)) == len(killed)
    assert not list((tmp_path / "killed").rglob(".tmp-*"))


def test_cli_reports_missing_input_and_unwritable_output(tmp_path):
    spec_path = job_spec(tmp_path, "nowhere/*.jsonl", "jsonl")
    result = run_cli("run", str(spec_path))
    assert result.returncode == 2
    assert "no input files match" in result.stderr and "Traceback" not in result.stderr

    write_jsonl(tmp_path / "in" / "a.jsonl", corpus_rows(10))
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where the output folder should be")
    result = run_cli("run", str(job_spec(tmp_path, "in/*.jsonl", "jsonl")),
                     "--output", str(blocker / "out"))
    assert result.returncode == 1
    assert "cannot write to output path" in result.stderr and "Traceback" not in result.stderr


def test_cli_validate_prints_plan_and_stages_lists_config(tmp_path):
    write_jsonl(tmp_path / "in" / "a.jsonl", corpus_rows(10))
    result = run_cli("validate", str(job_spec(tmp_path, "in/*.jsonl", "jsonl")))
    assert result.returncode == 0, result.stderr
    assert "1 files, 1 shards" in result.stdout and "length_filter" in result.stdout
    assert "-> columns: id, text, url, source, n_words" in result.stdout
    result = run_cli("stages")
    assert "length_filter (map)" in result.stdout and "min_words: int | None = 50" in \
        result.stdout.replace("Optional[int]", "int | None")


def test_cli_output_into_a_closed_pipe_ends_quietly():
    """`pipeline stages --json | head -1`: the reader is gone; no traceback, the status a
    shell gives a writer stopped by SIGPIPE."""
    proc = subprocess.Popen([sys.executable, "-m", "pipeline", "stages", "--json"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # nobody reads: the first write fails
    stderr = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 141, stderr
    assert stderr == ""


def test_rerun_with_different_spec_is_refused(tmp_path, ray_cluster):
    write_jsonl(tmp_path / "in" / "a.jsonl", corpus_rows(10))
    run_job(load_spec(job_spec(tmp_path, "in/*.jsonl", "jsonl")), progress=False)
    changed = job_spec(tmp_path, "in/*.jsonl", "jsonl").read_text().replace("min_words: 5",
                                                                             "min_words: 10")
    spec_path = write_spec(tmp_path / "changed.yaml", changed)
    with pytest.raises(JobError, match="different spec"):
        run_job(load_spec(spec_path), progress=False)
    stale = tmp_path / "out" / "data" / "part-99999.parquet"  # no shard of either run
    shutil.copy(tmp_path / "out" / "data" / "part-00000.parquet", stale)
    result = run_job(load_spec(spec_path), progress=False, overwrite=True)
    # started again: nothing resumed, the old output gone, the new bound applied
    assert result.skipped == 0 and not stale.exists()
    assert (result.docs_in, len(read_ids(tmp_path / "out", "data"))) == (10, 7)
    reasons = pq.read_table(tmp_path / "out" / "rejected")["reason"].to_pylist()
    assert sorted(reasons) == ["too_short:words=3", "too_short:words=3", "too_short:words=9"]


class _BannedWords(Stage):
    """A real stage registered by this test: its word list is prepared once on the driver."""

    name = "test_banned_words"

    def prepare(self):
        return {"words": {"bridge", "ferry"}, "pid": os.getpid()}

    def produces(self):
        return ("prepared_pid",)

    def process(self, table):
        words = self.prepared["words"]
        reasons = reasons_or_none([next((f"banned:{w}" for w in words if w in t.split()), None)
                                   for t in table["text"].to_pylist()])
        pids = pa.array([self.prepared["pid"]] * table.num_rows, pa.int64())
        return StageOutput(table.append_column("prepared_pid", pids), reasons)


register(_BannedWords)


def test_prepared_state_is_built_once_on_the_driver_and_shared(tmp_path, ray_cluster):
    write_jsonl(tmp_path / "in" / "a.jsonl", [{"text": "a ferry crossing"},
                                              {"text": "quiet garden"}])
    write_jsonl(tmp_path / "in" / "b.jsonl", [{"text": "the old bridge"},
                                              {"text": "market day"}])
    spec_path = write_spec(tmp_path / "job.yaml", """\
name: prepared
input: {format: jsonl, paths: ["in/*.jsonl"]}
output: {path: out}
stages: [{test_banned_words: {}}]
""")
    run_job(load_spec(spec_path), progress=False)
    kept = [r for f in sorted((tmp_path / "out" / "data").glob("*.parquet"))
            for r in pq.read_table(f).to_pylist()]
    assert [r["text"] for r in kept] == ["quiet garden", "market day"]
    assert {r["prepared_pid"] for r in kept} == {os.getpid()}  # built by the driver
    reasons = sorted(r for f in (tmp_path / "out" / "rejected").glob("*.parquet")
                     for r in pq.read_table(f)["reason"].to_pylist())
    assert reasons == ["banned:bridge", "banned:ferry"]


def test_cli_run_prints_progress_lines_and_report_rebuilds(tmp_path):
    for part in range(2):
        write_jsonl(tmp_path / "in" / f"p{part}.jsonl", corpus_rows(50, part * 50))
    spec_path = job_spec(tmp_path, "in/*.jsonl", "jsonl")
    # its own Ray session folder (short: Ray's socket paths must fit in 107 bytes)
    ray_dir = tempfile.mkdtemp(prefix="r", dir="/tmp")
    result = subprocess.run([sys.executable, "-m", "pipeline", "run", str(spec_path)],
                            capture_output=True, text=True, timeout=180, cwd=ROOT,
                            env=dict(os.environ, PIPELINE_PROGRESS_INTERVAL="0",
                                     RAY_TMPDIR=ray_dir))
    assert result.returncode == 0, result.stderr
    # the embedded Ray stopped all its processes (its monitor is stopped by hand)
    assert list(Path(ray_dir).glob("ray/session_*")), "the run did not use RAY_TMPDIR"
    left = [p.info["cmdline"] for p in psutil.process_iter(["cmdline"])
            if ray_dir in " ".join(p.info["cmdline"] or [])]
    assert left == []
    shutil.rmtree(ray_dir, ignore_errors=True)
    assert "[progress] segment 0 (length_filter): shards 2/2" in result.stderr
    assert "[progress]   1. length_filter: in=100 out=80" in result.stderr
    assert "length_filter    in        100  kept         80  rejected         20" in result.stdout

    report = tmp_path / "out" / "report"
    for path in report.iterdir():
        path.unlink()
    result = run_cli("report", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    summary = json.loads((report / "summary.json").read_text())
    assert [(f["stage"], f["in"], f["kept"]) for f in summary["funnel"]] == [
        ("read", 100, 100), ("length_filter", 100, 80)]
    assert summary["columns"]["n_words"]["kind"] == "histogram"
    assert "Why documents were rejected" in (report / "index.html").read_text()
    assert run_cli("report", str(tmp_path / "missing")).returncode == 1


class _MemoryConfig(StageConfig):
    memory_gb: float = 0.25


class _AssignedMemory(Stage):
    """Records the memory Ray reserved for the worker that ran it."""

    name = "test_assigned_memory"
    config_model = _MemoryConfig

    def resources(self):
        return Resources(memory_gb=self.config.memory_gb)

    def produces(self):
        return ("assigned_memory",)

    def process(self, table):
        import ray

        assigned = ray.get_runtime_context().get_assigned_resources().get("memory", 0.0)
        column = pa.array([assigned] * table.num_rows, pa.float64())
        return StageOutput(with_column(table, "assigned_memory", column))


register(_AssignedMemory)


def memory_spec(tmp_path: Path, memory_gb: float) -> Path:
    write_jsonl(tmp_path / "in" / "a.jsonl", corpus_rows(10))
    return write_spec(tmp_path / "memory.yaml", f"""\
name: memory
input: {{format: jsonl, paths: ["in/*.jsonl"]}}
output: {{path: out}}
stages: [{{test_assigned_memory: {{memory_gb: {memory_gb}}}}}]
""")


def test_a_stages_memory_is_requested_from_ray_and_must_fit_a_node(tmp_path, ray_cluster):
    run_job(load_spec(memory_spec(tmp_path, 0.25)), progress=False)
    assigned = pq.read_table(tmp_path / "out" / "data")["assigned_memory"].to_pylist()
    assert assigned == [0.25 * 2**30] * 10
    # more than any node has: refused before any work instead of waiting forever
    with pytest.raises(JobError, match=r"\['test_assigned_memory'\] need 100000.0 GiB of "
                                       r"memory per worker, more than the largest Ray node"):
        run_job(load_spec(memory_spec(tmp_path, 100_000)), progress=False, overwrite=True)


def test_a_job_on_its_own_ray_checks_its_gpu_stages_packages_before_starting(tmp_path):
    # validation leaves them alone (tests/test_spec.py); here the GPU workers would be local
    write_jsonl(tmp_path / "in" / "a.jsonl", corpus_rows(10))
    spec_path = write_spec(tmp_path / "gpu.yaml", """\
name: gpu-packages
input: {format: jsonl, paths: ["in/*.jsonl"]}
output: {path: out}
stages: [{test_needs_package: {package: no_such_pkg_4711, gpus: 1}}]
resources: {gpus: 1}
""")
    boot = ("import sys, tests.test_spec; from pipeline.cli import main; "
            "sys.exit(main(sys.argv[1:]))")
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    result = subprocess.run([sys.executable, "-c", boot, "run", str(spec_path)], env=env,
                            capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert result.returncode == 1, result.stderr
    assert ("stage 'test_needs_package' needs the Python package 'no_such_pkg_4711', which is "
            "not installed; install it with `pip install 'curation-pipeline[llm]'`"
            in result.stderr)
    assert not (tmp_path / "out" / "data").exists()  # refused before any work
