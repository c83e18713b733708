"""The SQLite job store: versioned schema, state history, listing, per-stage counters."""

from __future__ import annotations

import sqlite3
import threading

import pytest

from pipeline.api.states import JobState
from pipeline.api.store import (MIGRATIONS, SCHEMA_VERSION, JobStore, NewJob, SpecRecord,
                                StoreError)


def new_job(job_id: str, created_at: float = 1000.0, output: str = "/r/out") -> NewJob:
    return NewJob(id=job_id, name="q", submitter="alice", client="127.0.0.1", output=output,
                  gpus=0.0, spec=SpecRecord("name: q\n", "name: q\n", "/s/spec.yaml", "/r"),
                  created_at=created_at)


def test_opening_a_store_applies_and_records_every_migration_once(tmp_path):
    store = JobStore(tmp_path / "jobs.sqlite3")
    store.create(new_job("a"))
    store.close()
    again = JobStore(tmp_path / "jobs.sqlite3")
    rows = sqlite3.connect(tmp_path / "jobs.sqlite3").execute(
        "SELECT version, description FROM schema_migrations ORDER BY version").fetchall()
    assert [r[0] for r in rows] == [m.version for m in MIGRATIONS]
    assert again.schema_version() == SCHEMA_VERSION and again.get("a").name == "q"


def test_an_older_store_is_migrated_with_its_jobs(tmp_path):
    path = tmp_path / "old.sqlite3"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, "
                 "description TEXT NOT NULL, applied_at REAL NOT NULL)")
    for statement in MIGRATIONS[0].statements:
        conn.execute(statement)
    conn.execute("INSERT INTO schema_migrations VALUES (1, 'v1', 0)")
    conn.execute("INSERT INTO jobs (id, name, state, submitter, output, created_at, updated_at)"
                 " VALUES ('old', 'q', 'SUCCEEDED', 'bob', '/r/o', 1, 2)")
    conn.commit()
    conn.close()
    store = JobStore(path)
    job = store.get("old", with_progress=True)
    assert store.schema_version() == SCHEMA_VERSION
    assert (job.state, job.submitter, job.fraction, job.docs_in, job.progress) == \
        (JobState.SUCCEEDED, "bob", 0.0, 0, None)


def test_a_store_from_a_newer_service_is_refused(tmp_path):
    path = tmp_path / "jobs.sqlite3"
    JobStore(path).close()
    conn = sqlite3.connect(path)
    conn.execute("INSERT INTO schema_migrations VALUES (?, 'future', 0)", (SCHEMA_VERSION + 1,))
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="newer than this service"):
        JobStore(path)


def test_transitions_are_recorded_with_times_and_a_finished_state_is_final(tmp_path):
    store = JobStore(tmp_path / "jobs.sqlite3")
    store.create(new_job("a"))
    assert store.transition("a", JobState.RUNNING, "running", at=1010.0)
    assert not store.transition("a", JobState.RUNNING)  # no change, no new row
    assert store.transition("a", JobState.SUCCEEDED, "done", at=1020.0)
    assert not store.transition("a", JobState.FAILED, "late news")
    job = store.get("a")
    assert (job.state, job.started_at, job.finished_at, job.message) == \
        (JobState.SUCCEEDED, 1010.0, 1020.0, "done")
    assert [(t.state, t.at, t.message) for t in store.transitions("a")] == [
        (JobState.PENDING, 1000.0, "stored"), (JobState.RUNNING, 1010.0, "running"),
        (JobState.SUCCEEDED, 1020.0, "done")]
    assert store.spec("a").path == "/s/spec.yaml"


def test_jobs_list_newest_first_filtered_and_paginated(tmp_path):
    store = JobStore(tmp_path / "jobs.sqlite3")
    for i in range(7):
        store.create(new_job(f"j{i}", created_at=1000.0 + i))
    store.transition("j2", JobState.RUNNING)
    store.transition("j5", JobState.FAILED)
    page, total = store.list(limit=3, offset=2)
    assert [j.id for j in page] == ["j4", "j3", "j2"] and total == 7
    active, total = store.list([JobState.RUNNING, JobState.PENDING])
    assert total == 6 and "j5" not in [j.id for j in active]
    assert [j.id for j in store.list([JobState.FAILED])[0]] == ["j5"]
    assert store.counts_by_state()[JobState.PENDING] == 5


def test_docs_per_stage_only_grow_even_when_jobs_are_deleted(tmp_path):
    store = JobStore(tmp_path / "jobs.sqlite3")
    store.create(new_job("a"))
    stage = {"step": 0, "stage": "length_filter", "in": 10, "kept": 8, "rejected": 2}
    store.save_progress("a", {"fraction": 0.5, "docs": {"in": 10, "kept": 8, "rejected": 2},
                              "stages": [stage]})
    store.save_progress("a", {"fraction": 1.0, "docs": {"in": 30, "kept": 20, "rejected": 10},
                              "stages": [dict(stage, **{"in": 30, "kept": 20,
                                                        "rejected": 10})]})
    assert store.get("a", with_progress=True).progress["fraction"] == 1.0
    assert store.get("a").docs_kept == 20
    store.delete("a")
    assert store.stage_docs() == [{"stage": "length_filter", "docs_in": 30, "kept": 20,
                                   "rejected": 10}]
    assert store.get("a") is None and store.transitions("a") == []


def test_threads_share_one_store_safely(tmp_path):
    store = JobStore(tmp_path / "jobs.sqlite3")

    def work(n: int) -> None:
        for i in range(40):
            store.create(new_job(f"t{n}-{i}", created_at=float(i)))
            store.transition(f"t{n}-{i}", JobState.RUNNING)
            store.list(limit=5)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert store.counts_by_state()[JobState.RUNNING] == 240
