"""The job store: one SQLite file holding jobs, their specs, every state transition with its
time, and the progress last read from each job's manifests.

The schema is versioned: `schema_migrations` records each applied migration, and opening a
store applies the missing ones in order inside one transaction. A file written by a newer
version of the service is refused rather than guessed at.

Why one connection per thread: sqlite3 connections must not be shared between threads while
a statement runs, and the service reads from the event loop, from worker threads and from the
reconciler. WAL mode lets those readers run beside the one writer.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from pipeline.api.states import ACTIVE, JobState


class StoreError(RuntimeError):
    """The store file cannot be used (newer schema, unreadable); the message says why."""


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    statements: tuple[str, ...]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "jobs, specs and state transitions", (
        """CREATE TABLE jobs (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            state TEXT NOT NULL,
            submitter TEXT NOT NULL,
            client TEXT,
            output TEXT NOT NULL,
            gpus REAL NOT NULL DEFAULT 0,
            message TEXT,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            submitted_at REAL,
            started_at REAL,
            finished_at REAL)""",
        "CREATE INDEX jobs_by_created ON jobs (created_at DESC, id)",
        "CREATE INDEX jobs_by_state ON jobs (state, created_at DESC)",
        """CREATE TABLE specs (
            job_id TEXT PRIMARY KEY REFERENCES jobs (id) ON DELETE CASCADE,
            text TEXT NOT NULL,
            resolved TEXT NOT NULL,
            path TEXT NOT NULL,
            base_dir TEXT NOT NULL)""",
        """CREATE TABLE transitions (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            job_id TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
            state TEXT NOT NULL,
            at REAL NOT NULL,
            message TEXT)""",
        "CREATE INDEX transitions_by_job ON transitions (job_id, id)",
    )),
    Migration(2, "progress snapshots and docs processed per stage", (
        "ALTER TABLE jobs ADD COLUMN fraction REAL NOT NULL DEFAULT 0",
        "ALTER TABLE jobs ADD COLUMN docs_in INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE jobs ADD COLUMN docs_kept INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE jobs ADD COLUMN docs_rejected INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE jobs ADD COLUMN progress TEXT",
        # Bumped by every change of a job, so a rendered view of it can be reused until then.
        "ALTER TABLE jobs ADD COLUMN version INTEGER NOT NULL DEFAULT 0",
        # Per job and step, the counts already added to stage_docs: /metrics exposes
        # monotonic counters, so a job's growth is added once and deleting it subtracts nothing.
        """CREATE TABLE job_stage_docs (
            job_id TEXT NOT NULL, step INTEGER NOT NULL, stage TEXT NOT NULL,
            docs_in INTEGER NOT NULL, kept INTEGER NOT NULL, rejected INTEGER NOT NULL,
            PRIMARY KEY (job_id, step))""",
        """CREATE TABLE stage_docs (
            stage TEXT PRIMARY KEY, docs_in INTEGER NOT NULL, kept INTEGER NOT NULL,
            rejected INTEGER NOT NULL)""",
    )),
)
SCHEMA_VERSION = MIGRATIONS[-1].version

_SUMMARY_COLUMNS = ("id, name, state, submitter, client, output, gpus, message, created_at, "
                    "updated_at, submitted_at, started_at, finished_at, fraction, docs_in, "
                    "docs_kept, docs_rejected, version")


@dataclass
class JobRecord:
    id: str
    name: str
    state: JobState
    submitter: str
    client: str | None
    output: str
    gpus: float
    message: str | None
    created_at: float
    updated_at: float
    submitted_at: float | None
    started_at: float | None
    finished_at: float | None
    fraction: float = 0.0
    docs_in: int = 0
    docs_kept: int = 0
    docs_rejected: int = 0
    version: int = 0
    progress: dict | None = None

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> "JobRecord":
        values = dict(row)
        values["state"] = JobState(values["state"])
        if "progress" in values:
            values["progress"] = json.loads(values["progress"]) if values["progress"] else None
        return cls(**values)


@dataclass
class SpecRecord:
    text: str
    resolved: str
    path: str
    base_dir: str


@dataclass
class Transition:
    state: JobState
    at: float
    message: str | None


@dataclass
class NewJob:
    id: str
    name: str
    submitter: str
    client: str | None
    output: str
    gpus: float
    spec: SpecRecord
    created_at: float = field(default_factory=time.time)


class JobStore:
    """Jobs in one SQLite file. Every method is safe to call from any thread."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._write_lock = threading.Lock()
        self._migrate()

    # -- connections and schema ------------------------------------------------------------
    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, isolation_level=None, timeout=10,
                                   check_same_thread=False)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            self._local.conn = conn
        return conn

    def _migrate(self) -> None:
        conn = self._conn()
        with self._write_lock:
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.DatabaseError as exc:
                raise StoreError(f"{self.path}: not a usable SQLite file ({exc}); point "
                                 "--db at another file or move this one away") from None
            try:
                conn.execute("""CREATE TABLE IF NOT EXISTS schema_migrations (
                    version INTEGER PRIMARY KEY, description TEXT NOT NULL,
                    applied_at REAL NOT NULL)""")
                applied = {r[0] for r in conn.execute("SELECT version FROM schema_migrations")}
                if applied and max(applied) > SCHEMA_VERSION:
                    raise StoreError(
                        f"{self.path} has schema version {max(applied)}, newer than this "
                        f"service understands ({SCHEMA_VERSION}); upgrade the service or use "
                        "another --db file")
                for migration in MIGRATIONS:
                    if migration.version in applied:
                        continue
                    for statement in migration.statements:
                        conn.execute(statement)
                    conn.execute("INSERT INTO schema_migrations VALUES (?, ?, ?)",
                                 (migration.version, migration.description, time.time()))
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    def schema_version(self) -> int:
        row = self._conn().execute("SELECT max(version) FROM schema_migrations").fetchone()
        return row[0] or 0

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def _write(self, statements: Iterable[tuple[str, tuple]]) -> None:
        conn = self._conn()
        with self._write_lock:
            conn.execute("BEGIN IMMEDIATE")
            try:
                for sql, params in statements:
                    conn.execute(sql, params)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    # -- jobs ------------------------------------------------------------------------------
    def create(self, job: NewJob) -> JobRecord:
        now = job.created_at
        self._write([
            ("INSERT INTO jobs (id, name, state, submitter, client, output, gpus, created_at, "
             "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
             (job.id, job.name, JobState.PENDING.value, job.submitter, job.client, job.output,
              job.gpus, now, now)),
            ("INSERT INTO specs VALUES (?, ?, ?, ?, ?)",
             (job.id, job.spec.text, job.spec.resolved, job.spec.path, job.spec.base_dir)),
            ("INSERT INTO transitions (job_id, state, at, message) VALUES (?, ?, ?, ?)",
             (job.id, JobState.PENDING.value, now, "stored")),
        ])
        return self.get(job.id)

    def get(self, job_id: str, *, with_progress: bool = False) -> JobRecord | None:
        columns = _SUMMARY_COLUMNS + (", progress" if with_progress else "")
        row = self._conn().execute(f"SELECT {columns} FROM jobs WHERE id = ?",
                                   (job_id,)).fetchone()
        return JobRecord.from_row(row) if row else None

    def list(self, states: Iterable[JobState] = (), limit: int = 50,
             offset: int = 0) -> tuple[list[JobRecord], int]:
        """Newest first, and how many jobs match in all."""
        states = [JobState(s).value for s in states]
        where = f"WHERE state IN ({', '.join('?' * len(states))})" if states else ""
        conn = self._conn()
        total = conn.execute(f"SELECT count(*) FROM jobs {where}", states).fetchone()[0]
        rows = conn.execute(f"SELECT {_SUMMARY_COLUMNS} FROM jobs {where} "
                            "ORDER BY created_at DESC, id LIMIT ? OFFSET ?",
                            (*states, limit, offset)).fetchall()
        return [JobRecord.from_row(r) for r in rows], total

    def active(self) -> list[JobRecord]:
        return self.list(ACTIVE, limit=1_000_000)[0]

    def version(self, job_id: str) -> int | None:
        """A number that changes whenever anything about the job does."""
        row = self._conn().execute("SELECT version FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return row[0] if row else None

    def spec(self, job_id: str) -> SpecRecord | None:
        row = self._conn().execute("SELECT text, resolved, path, base_dir FROM specs "
                                   "WHERE job_id = ?", (job_id,)).fetchone()
        return SpecRecord(**dict(row)) if row else None

    def transitions(self, job_id: str) -> list[Transition]:
        rows = self._conn().execute("SELECT state, at, message FROM transitions "
                                    "WHERE job_id = ? ORDER BY id", (job_id,)).fetchall()
        return [Transition(JobState(r["state"]), r["at"], r["message"]) for r in rows]

    def transition(self, job_id: str, state: JobState, message: str | None = None,
                   at: float | None = None) -> bool:
        """Move a job to `state`; False if it is already there or already finished (a
        finished job's state is final)."""
        at = at if at is not None else time.time()
        conn = self._conn()
        with self._write_lock:
            conn.execute("BEGIN IMMEDIATE")
            try:
                row = conn.execute("SELECT state, started_at FROM jobs WHERE id = ?",
                                   (job_id,)).fetchone()
                current = JobState(row["state"]) if row else None
                if current is None or current == state or current.is_terminal:
                    conn.execute("ROLLBACK")
                    return False
                sets = ["state = ?", "updated_at = ?", "message = coalesce(?, message)",
                        "version = version + 1"]
                params: list[Any] = [state.value, at, message]
                if state is not JobState.PENDING and row["started_at"] is None:
                    sets.append("started_at = ?")
                    params.append(at)
                if state.is_terminal:
                    sets.append("finished_at = ?")
                    params.append(at)
                conn.execute(f"UPDATE jobs SET {', '.join(sets)} WHERE id = ?",
                             (*params, job_id))
                conn.execute("INSERT INTO transitions (job_id, state, at, message) "
                             "VALUES (?, ?, ?, ?)", (job_id, state.value, at, message))
                conn.execute("COMMIT")
                return True
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    def mark_submitted(self, job_id: str, at: float | None = None) -> None:
        at = at or time.time()
        self._write([("UPDATE jobs SET submitted_at = ?, updated_at = ?, version = version + 1 "
                      "WHERE id = ?", (at, at, job_id))])

    def save_progress(self, job_id: str, progress: dict) -> None:
        """Store a progress snapshot and add the growth of its per-stage counts to the
        service-wide totals."""
        docs = progress.get("docs", {})
        previous = {r["step"]: r for r in self._conn().execute(
            "SELECT step, docs_in, kept, rejected FROM job_stage_docs WHERE job_id = ?",
            (job_id,))}
        statements: list[tuple[str, tuple]] = [(
            "UPDATE jobs SET progress = ?, fraction = ?, docs_in = ?, docs_kept = ?, "
            "docs_rejected = ?, version = version + 1 WHERE id = ?",
            (json.dumps(progress, separators=(",", ":")), progress.get("fraction", 0.0),
             docs.get("in", 0), docs.get("kept", 0), docs.get("rejected", 0), job_id))]
        for stage in progress.get("stages", []):
            before = previous.get(stage["step"])
            grown = [max(0, stage[k] - (before[c] if before else 0))
                     for k, c in (("in", "docs_in"), ("kept", "kept"),
                                  ("rejected", "rejected"))]
            if not any(grown):
                continue
            statements.append((
                "INSERT INTO job_stage_docs VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (job_id, step)"
                " DO UPDATE SET docs_in = excluded.docs_in, kept = excluded.kept, "
                "rejected = excluded.rejected",
                (job_id, stage["step"], stage["stage"], stage["in"], stage["kept"],
                 stage["rejected"])))
            statements.append((
                "INSERT INTO stage_docs VALUES (?, ?, ?, ?) ON CONFLICT (stage) DO UPDATE SET "
                "docs_in = docs_in + excluded.docs_in, kept = kept + excluded.kept, "
                "rejected = rejected + excluded.rejected", (stage["stage"], *grown)))
        self._write(statements)

    def delete(self, job_id: str) -> None:
        self._write([("DELETE FROM job_stage_docs WHERE job_id = ?", (job_id,)),
                     ("DELETE FROM jobs WHERE id = ?", (job_id,))])

    # -- figures for /metrics --------------------------------------------------------------
    def counts_by_state(self) -> dict[JobState, int]:
        counts = {state: 0 for state in JobState}
        for row in self._conn().execute("SELECT state, count(*) FROM jobs GROUP BY state"):
            counts[JobState(row[0])] = row[1]
        return counts

    def stage_docs(self) -> list[dict]:
        rows = self._conn().execute("SELECT stage, docs_in, kept, rejected FROM stage_docs "
                                    "ORDER BY stage")
        return [dict(r) for r in rows]
