"""Chaos: a worker killed inside a map stage or a global phase, a driver killed inside a
global stage, an output disk that fills up. Each job must either finish with exactly the
output of an uninterrupted run, or fail with a message that names the problem and then
resume, on the same command, to that output.

What the runner does: a killed worker is restarted by Ray and its shard or phase unit
retried, so the job completes; a killed driver leaves committed shards and phase units that
a re-run keeps; a full disk fails the shards (or the phase) that hit it, and a re-run after
space is freed keeps what was committed.

Kills are deterministic: a hook holds one unit of work (a stage batch, a phase unit) once,
says which process holds it, and the test SIGKILLs that process while it is held. The hook
reaches Ray workers by reference (`tests.test_chaos` is importable there), so the code
under test is unchanged. The full disk is a small tmpfs, mounted in a user + mount namespace
(no root needed; as root without user namespaces, mounted in place). A bad file fixed
between two runs shows a failed shard retried.
"""

from __future__ import annotations

import importlib
import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pyarrow.parquet as pq
import pytest
from pydantic import Field

from pipeline.registry import register
from pipeline.runner import JobError, run_job
from pipeline.spec import load_spec
from pipeline.stage import GlobalStage, Stage, StageConfig, StageOutput
from tests.conftest import assert_accounting, kill_tree, write_jsonl, write_spec

pytestmark = pytest.mark.chaos

ROOT = Path(__file__).resolve().parents[1]
SYLLABLES = [c + v for c in "bdfgklmnprstvz" for v in "aeiou"]
HOLD_SECONDS = 60  # a held unit gives up after this (then the test fails, it never hangs)


# -- holding one unit of work until the test kills its process ---------------------------------
def hold_once(hold_file: str) -> None:
    """The first caller (of any process) writes its pid to `hold_file` and waits to be
    killed; every later caller, such as the retry of the killed one, passes straight on."""
    try:
        fd = os.open(hold_file, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return
    os.write(fd, f"{os.getpid()}\n".encode())  # the newline says the pid is complete
    os.close(fd)
    time.sleep(HOLD_SECONDS)
    raise RuntimeError(f"held past {HOLD_SECONDS}s: nobody killed pid {os.getpid()}")


class HeldPhase:
    """Stands in for a global stage's phase function (`module.name`): runs it, so its unit
    file is written, then holds before the result is reported and committed."""

    def __init__(self, module: str, name: str, hold_file: str):
        self.module, self.name, self.hold_file = module, name, hold_file

    def __call__(self, item):
        result = getattr(importlib.import_module(self.module), self.name)(item)
        hold_once(self.hold_file)
        return result


def hold_phase(module: str, name: str, hold_file: str) -> None:
    """Replace `module.name` in this process; workers unpickle the stand-in by reference
    and call the real function of their own, unpatched, module."""
    setattr(importlib.import_module(module), name, HeldPhase(module, name, hold_file))


def held_pid(hold_file: Path, timeout: float = 90, log: Path | None = None) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if hold_file.exists() and hold_file.read_text().endswith("\n"):
            return int(hold_file.read_text())
        time.sleep(0.02)
    output = log.read_text()[-3000:] if log else ""
    raise AssertionError(f"nothing was held within {timeout}s ({hold_file})\n{output}")


def kill_when_held(hold_file: Path) -> tuple[threading.Thread, dict]:
    """SIGKILL the holder from a thread, while the test's own thread runs the job."""
    killed: dict = {}

    def kill():
        try:
            pid = held_pid(hold_file)
        except AssertionError as exc:
            killed["error"] = str(exc)
            return
        killed["pid"] = pid
        os.kill(pid, signal.SIGKILL)

    thread = threading.Thread(target=kill, daemon=True)
    thread.start()
    return thread, killed


class HoldConfig(StageConfig):
    hold_file: str | None = Field(None, description="hold here once (see hold_once)")


@register
class HoldStage(Stage):
    """Passes rows through; with `hold_file`, the second batch a worker sees is held once
    (the first batch of its shard is then already in the shard's temporary files)."""

    name = "test_chaos_hold"
    config_model = HoldConfig

    def setup(self):
        self.batches = 0

    def process(self, table):
        self.batches += 1
        if self.config.hold_file and self.batches == 2:
            hold_once(self.config.hold_file)
        return StageOutput(table)


# -- corpora and outputs -----------------------------------------------------------------------
def words(rng: random.Random, count: int) -> list[str]:
    return ["".join(rng.choice(SYLLABLES) for _ in range(3)) for _ in range(count)]


def write_corpus(folder: Path, files: int, rows: int, seed: int = 3) -> None:
    """Distinct documents, with every 5th too short for length_filter(min_words: 5), every
    7th an exact copy and every 4th a near copy (two words changed) of an earlier one."""
    rng = random.Random(seed)
    texts: list[str] = []
    for n in range(files * rows):
        if n % 5 == 0:
            text = " ".join(words(rng, 3))
        elif n % 7 == 0 and texts:
            text = rng.choice(texts)
        elif n % 4 == 0 and texts:
            copy = rng.choice(texts).split()
            for position in rng.sample(range(len(copy)), 2):
                copy[position] = words(rng, 1)[0]
            text = " ".join(copy)
        else:
            text = " ".join(words(rng, rng.randint(60, 120)))
        texts.append(text)
    for f in range(files):
        write_jsonl(folder / "in" / f"p{f:02d}.jsonl",
                    [{"id": f"d{f * rows + r:05d}", "text": texts[f * rows + r]}
                     for r in range(rows)])


def job(folder: Path, out: str, stages: str, extra: str = "", name: str | None = None) -> Path:
    return write_spec(folder / f"{name or out}.yaml", f"""\
name: chaos
input: {{format: jsonl, paths: ["in/*.jsonl"]}}
output: {{path: {out}}}
stages:
{stages}{extra}""")


def documents(out: Path, folder: str) -> list[tuple[str, str]]:
    """(id, text) of every committed shard file of `folder` (data or rejected), sorted."""
    rows = [row for f in sorted((out / folder).glob("part-*.parquet"))
            for row in pq.read_table(f, columns=["id", "text"]).to_pylist()]
    return sorted((r["id"], r["text"]) for r in rows)


def assert_same_output(out: Path, clean: Path) -> None:
    for folder in ("data", "rejected"):
        got = documents(out, folder)
        assert got == documents(clean, folder), folder
        assert len({i for i, _ in got}) == len(got), f"duplicate ids in {folder}"
    assert len(assert_accounting(out)) == len(assert_accounting(clean))


def temporaries(out: Path) -> list[str]:
    return sorted(str(p.relative_to(out)) for p in out.rglob(".tmp-*"))


def committed_state(out: Path) -> dict[str, tuple[int, int]]:
    """(inode, mtime) of every commit marker under _work/: segment manifests and global
    phase markers. A unit that is redone gets a new file (written, then renamed)."""
    paths = list(out.glob("_work/segment-*/manifests/part-*.json"))
    paths += [p for p in out.glob("_work/global/**/_phases/*/*.json")
              if not p.name.startswith(".")]
    return {str(p.relative_to(out)): (p.stat().st_ino, p.stat().st_mtime_ns) for p in paths}


# -- 1. a worker killed inside a map stage -----------------------------------------------------
MAP_STAGES = "  - test_chaos_hold: {{{hold}}}\n  - length_filter: {{min_words: 5}}\n"


@pytest.fixture(scope="module")
def killed_map_worker(tmp_path_factory, ray_cluster):
    folder = tmp_path_factory.mktemp("map")
    write_corpus(folder, files=8, rows=60)
    clean = job(folder, "clean", MAP_STAGES.format(hold=""), "batch_rows: 20\n")
    run_job(load_spec(clean), progress=False)
    hold_file = folder / "held"
    spec = job(folder, "killed", MAP_STAGES.format(hold=f"hold_file: '{hold_file}'"),
               "batch_rows: 20\n")
    thread, killed = kill_when_held(hold_file)
    result = run_job(load_spec(spec), progress=False)
    thread.join(timeout=5)
    assert "pid" in killed, killed.get("error", "the job finished before a batch was held")
    return folder, result


def test_worker_killed_in_map_stage_job_completes_as_clean_run(killed_map_worker):
    folder, result = killed_map_worker
    assert result.failed == [] and result.shards == 8
    assert_same_output(folder / "killed", folder / "clean")


def test_worker_killed_in_map_stage_leaves_no_partial_file_among_the_shards(
        killed_map_worker):
    # The killed attempt had written a batch; its retry committed the shard. A half file
    # beside the shards would break `read_parquet('data/*.parquet')` (DuckDB and fsspec
    # globs match dot files) on a job that reported success.
    folder, _ = killed_map_worker
    out = folder / "killed"
    assert [p for d in ("data", "rejected", "manifests") for p in temporaries(out / d)] == []


# -- 2. and 3. global stages: a worker, then the driver, killed inside a phase ---------------
TWO_GLOBALS = ("  - length_filter: {min_words: 5}\n  - dedup_exact: {}\n"
               "  - dedup_minhash: {partitions: 3}\n")


@pytest.fixture(scope="module")
def two_globals(tmp_path_factory, ray_cluster) -> Path:
    """A corpus and its uninterrupted run through both dedup stages (`clean/`)."""
    folder = tmp_path_factory.mktemp("globals")
    write_corpus(folder, files=4, rows=50)
    run_job(load_spec(job(folder, "clean", TWO_GLOBALS)), progress=False)
    reasons = {r for f in (folder / "clean" / "rejected").glob("*.parquet")
               for r in pq.read_table(f, columns=["reason"])["reason"].to_pylist()}
    assert {"duplicate", "near_duplicate"} <= reasons, "the corpus must hold both kinds"
    return folder


def test_worker_killed_in_minhash_component_phase_job_completes_as_clean_run(
        two_globals, monkeypatch):
    folder = two_globals
    hold_file = folder / "held-worker"
    # The unit's output file is written, its result not yet returned nor committed.
    monkeypatch.setattr("stages._shared.components.large_star",
                        HeldPhase("stages._shared.components", "large_star", str(hold_file)))
    thread, killed = kill_when_held(hold_file)
    result = run_job(load_spec(job(folder, "killed-worker", TWO_GLOBALS)), progress=False)
    thread.join(timeout=5)
    assert "pid" in killed, killed.get("error", "the job finished before a unit was held")
    assert result.failed == []
    assert_same_output(folder / "killed-worker", folder / "clean")
    assert temporaries(folder / "killed-worker") == []


def test_driver_killed_in_global_phase_resumes_without_redoing_committed_work(two_globals):
    folder = two_globals
    spec, out, hold_file = job(folder, "killed-driver", TWO_GLOBALS), \
        folder / "killed-driver", folder / "held-driver"
    # `pipeline run`, with the first unit of MinHash's first component phase held: by then
    # both map segments and all of dedup_exact have committed their work.
    boot = ("import sys; from tests.test_chaos import hold_phase; "
            "hold_phase('stages._shared.components', 'large_star', sys.argv[1]); "
            "from pipeline.cli import main; sys.exit(main(sys.argv[2:]))")
    with open(folder / "driver.log", "w") as log:
        proc = subprocess.Popen([sys.executable, "-c", boot, str(hold_file), "run",
                                 str(spec), "--no-progress"], cwd=ROOT,
                                start_new_session=True, stdout=log, stderr=log)
    try:
        held_pid(hold_file, log=folder / "driver.log")
    finally:
        kill_tree(proc)
    assert not list(out.glob("manifests/part-*.json")), "the kill must land in the phases"
    before = committed_state(out)
    assert {p.split("/")[1] for p in before} >= {"segment-0", "segment-1", "global"}
    assert any("-dedup_exact/" in p for p in before)

    run_job(load_spec(spec), progress=False, keep_work=True)
    after = committed_state(out)
    assert {p: after.get(p) for p in before} == before, "committed work was redone"
    assert_same_output(out, folder / "clean")
    assert temporaries(out) == []


def _phase_unit(item: int) -> int:
    """A global phase's unit: unit 0 fails at once, the others finish a second later."""
    if item == 0:
        raise ValueError("unit 0 is bad")
    time.sleep(1.0)
    return item


@register
class FailingPhaseStage(GlobalStage):
    name = "test_chaos_failing_phase"
    config_model = StageConfig

    def plan(self, ctx):
        ctx.map("work", _phase_unit, [0, 1, 2], ["u0", "u1", "u2"])

    def apply(self, table, shard_id, first_row, work_dir):
        return StageOutput(table)


def test_failed_unit_fails_its_phase_once_the_running_units_finish(tmp_path, ray_cluster):
    """The running units are waited for, not cancelled (cancelling a task as it finishes
    can abort Ray's driver), and what they finished is committed for the next run."""
    write_corpus(tmp_path, files=1, rows=5)
    spec = job(tmp_path, "out", "  - test_chaos_failing_phase: {}\n")
    with pytest.raises(JobError, match=r"phase 'work', unit u0: ValueError: unit 0 is bad"):
        run_job(load_spec(spec), progress=False)
    kept = sorted(p.stem for p in (tmp_path / "out").glob("_work/global/**/_phases/work/*"))
    assert "u0" not in kept and "u1" in kept, kept  # u2 too where two units run at once


def _hung_unit(item: tuple[str, str]) -> str:
    """Fails at once, or (`hang`) runs until `release` exists."""
    kind, release = item
    if kind == "fail":
        raise ValueError("unit fail is bad")
    deadline = time.monotonic() + 120
    while not os.path.exists(release) and time.monotonic() < deadline:
        time.sleep(0.05)
    return kind


class HangConfig(StageConfig):
    release: str = ""


@register
class HungPhaseStage(GlobalStage):
    name = "test_chaos_hung_phase"
    config_model = HangConfig

    def plan(self, ctx):
        ctx.map("work", _hung_unit, [("fail", ""), ("hang", self.config.release)],
                ["fail", "hang"])

    def apply(self, table, shard_id, first_row, work_dir):
        return StageOutput(table)


def test_failed_phase_waits_for_a_hung_unit_only_so_long(tmp_path, ray_cluster, monkeypatch):
    monkeypatch.setattr("pipeline.runner.FAILED_PHASE_GRACE_S", 1.0)
    write_corpus(tmp_path, files=1, rows=5)
    release = tmp_path / "release"
    spec = job(tmp_path, "out", f"  - test_chaos_hung_phase: {{release: '{release}'}}\n")
    started = time.monotonic()
    try:
        with pytest.raises(JobError, match="unit fail: ValueError: unit fail is bad"):
            run_job(load_spec(spec), progress=False)
        waited = time.monotonic() - started
    finally:
        release.touch()  # lets the hung unit end, wherever the test stands
    assert waited < 60, f"the job waited {waited:.0f}s for a unit that never ends"


# -- 4. the output disk fills up ---------------------------------------------------------------
DISK_JOBS = {
    # fills while the map shards commit
    "map": "  - length_filter: {min_words: 5}\n",
    # fills in MinHash's signatures phase (uncompressed shingle sets), after segment 0
    "global": "  - length_filter: {min_words: 5}\n  - dedup_minhash: {partitions: 2, verify: "
              "true}\n",
}


def disk_usage(folder: Path) -> int:
    """Bytes the files under `folder` take on a tmpfs (whole pages)."""
    return sum(-(-p.stat().st_size // 4096) * 4096 for p in folder.rglob("*") if p.is_file())


def shard_files(out: Path) -> dict[str, str]:
    """Manifest text of every committed shard, final or of an earlier segment, by path."""
    found = list(out.glob("manifests/part-*.json")) + list(
        out.glob("_work/segment-*/manifests/part-*.json"))
    return {str(p.relative_to(out)): p.read_text() for p in found}


@dataclass
class FullDisk:
    kind: str  # a key of DISK_JOBS
    folder: Path  # the corpus and the uninterrupted run, clean/
    spec: Path
    out: Path  # on the small disk
    ballast: Path  # what fills the disk
    failed: subprocess.CompletedProcess
    committed: dict[str, str]  # shard_files(out) after the failed run
    decided: bool  # whether the global stage had finished deciding


def _tmpfs_in_a_namespace(mount: Path, size: str) -> tuple[subprocess.Popen | None, str]:
    """A process asleep in a new user + mount namespace where a tmpfs is mounted on `mount`
    (mounting needs no privilege there), or None and why not."""
    script = 'mount -t tmpfs -o "size=$2" tmpfs "$1" && echo mounted && exec sleep 3600'
    try:
        holder = subprocess.Popen(["unshare", "--user", "--map-root-user", "--mount", "sh",
                                   "-c", script, "sh", str(mount), size],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    except OSError as exc:  # no unshare command
        return None, str(exc)
    if holder.stdout.readline().strip() == "mounted":
        return holder, ""
    holder.wait()
    return None, holder.stderr.read().strip()


@contextmanager
def small_disk(folder: Path, size: str = "4m") -> Iterator[Path]:
    """A tmpfs of `size`, as a path this process, its children and Ray's workers can write.

    The tmpfs lives in a user + mount namespace held by a sleeping process; every process of
    this user reaches it through /proc/<pid>/root (the namespace's owner may look inside).
    Where user namespaces are off, root mounts it in place; otherwise the test is skipped,
    saying why. RLIMIT_FSIZE is no substitute: a Ray started under it cannot create its
    object store (ray.init times out), and it limits files, not disks."""
    mount = folder / "disk"
    mount.mkdir()
    holder, problem = _tmpfs_in_a_namespace(mount, size)
    if holder is not None:
        try:
            yield Path(f"/proc/{holder.pid}/root{mount}")
        finally:
            holder.kill()
            holder.communicate()  # reaps it and closes its pipes
        return
    if os.geteuid() != 0:
        pytest.skip(f"no small disk: user namespaces are unavailable ({problem}) and mounting "
                    "a tmpfs in place needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    if done.returncode:
        pytest.skip(f"no small disk: unshare failed ({problem}), mount failed "
                    f"({done.stderr.strip()})")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.fixture(scope="module", params=sorted(DISK_JOBS))
def full_disk(request, tmp_path_factory, ray_cluster):
    """A `pipeline run` whose output disk (a 4 MiB tmpfs, filled with ballast) runs out of
    space mid-way."""
    kind, stages = request.param, DISK_JOBS[request.param]
    folder = tmp_path_factory.mktemp(f"disk-{kind}")
    with small_disk(folder) as mount:
        write_corpus(folder, files=12, rows=60)
        run_job(load_spec(job(folder, "clean", stages)), progress=False, keep_work=True)
        if kind == "map":  # room for about four of the twelve shards
            free = sum(disk_usage(folder / "clean" / d) for d in ("data", "rejected",
                                                                   "manifests")) // 3
        else:  # room for segment 0 and a third of it more
            free = disk_usage(folder / "clean" / "_work" / "segment-0") * 4 // 3 + 16384
        stat = os.statvfs(mount)
        ballast = mount / "ballast"
        ballast.write_bytes(b"\0" * (stat.f_bavail * stat.f_frsize - free))
        spec, out = job(folder, str(mount / "out"), stages, name="disk"), mount / "out"
        failed = subprocess.run([sys.executable, "-m", "pipeline", "run", str(spec),
                                 "--no-progress"], cwd=ROOT, capture_output=True, text=True,
                                timeout=120)
        yield FullDisk(kind, folder, spec, out, ballast, failed, shard_files(out),
                       bool(list(out.glob("_work/global/*/*/decisions.json"))))


def assert_filled_mid_way(disk: FullDisk) -> None:
    final = [p for p in disk.committed if p.startswith("manifests/")]
    if disk.kind == "map":
        assert 0 < len(final) < 12, "the disk must fill up while shards commit"
    else:
        assert len(disk.committed) == 12 and not final and not disk.decided, \
            "the disk must fill up inside the global stage, after segment 0"


def assert_clear_failure(disk: FullDisk) -> None:
    assert_filled_mid_way(disk)
    stderr = disk.failed.stderr
    assert disk.failed.returncode == 1, stderr
    assert "No space left on device" in stderr
    assert not re.search(r'File ".*", line \d+', stderr), stderr  # no traceback, local or remote


@pytest.mark.parametrize("full_disk", ["map"], indirect=True)
def test_full_disk_in_a_map_stage_fails_the_job_with_a_clear_message(full_disk):
    assert_clear_failure(full_disk)


@pytest.mark.parametrize("full_disk", ["global"], indirect=True)
def test_full_disk_in_a_global_phase_fails_the_job_with_a_clear_message(full_disk):
    assert_clear_failure(full_disk)


def test_full_disk_commits_only_whole_shards_and_resumes_once_space_is_freed(full_disk):
    disk, out = full_disk, full_disk.out
    assert disk.failed.returncode != 0
    assert_filled_mid_way(disk)
    for path, text in disk.committed.items():  # what was committed is whole
        manifest, segment, name = json.loads(text), Path(path).parent.parent, Path(path).stem
        kept, rejected = (out / segment / f / f"{name}.parquet" for f in ("data", "rejected"))
        assert pq.read_table(kept).num_rows == manifest["rows_kept"]
        assert pq.read_table(rejected).num_rows == manifest["rows_rejected"]

    disk.ballast.unlink()
    run_job(load_spec(disk.spec), progress=False, keep_work=True)
    after = shard_files(out)
    assert {p: after.get(p) for p in disk.committed} == disk.committed, \
        "committed shards were redone"
    assert_same_output(out, disk.folder / "clean")
    assert temporaries(out) == []


# -- 5. a bad file, fixed between two runs --------------------------------------------------------
def test_failed_shard_is_retried_on_the_next_run_once_its_file_is_fixed(tmp_path, ray_cluster):
    """A file caught half-copied (empty) fails its shard; the job goes on within its error
    budget and lists the failure in the report. Once the file is whole, the same command
    retries that shard alone and ends with the output of a run that never failed."""
    write_corpus(tmp_path, files=4, rows=30)
    stages, budget = "  - length_filter: {min_words: 5}\n", "errors: {max_failed_fraction: 0.5}\n"
    run_job(load_spec(job(tmp_path, "clean", stages, budget)), progress=False)
    bad = tmp_path / "in" / "p02.jsonl"
    whole = bad.read_bytes()
    bad.write_bytes(b"")

    spec, out = job(tmp_path, "retried", stages, budget), tmp_path / "retried"
    first = run_job(load_spec(spec), progress=False)
    assert [f["error"] for f in first.failed] == [f"{bad}: file is empty (0 bytes)"]
    summary = json.loads((out / "report" / "summary.json").read_text())
    assert summary["shards"]["failed"] == 1 and str(bad) in summary["failures"][0]["error"]
    committed = shard_files(out)
    assert len(committed) == 3 and "manifests/part-00002.json" not in committed

    bad.write_bytes(whole)
    second = run_job(load_spec(spec), progress=False)
    assert second.failed == [] and (second.shards, second.skipped) == (4, 3)
    after = shard_files(out)
    assert {p: after.get(p) for p in committed} == committed, "committed shards were redone"
    assert_same_output(out, tmp_path / "clean")
    summary = json.loads((out / "report" / "summary.json").read_text())
    assert summary["shards"]["failed"] == 0 and summary["failures"] == []
