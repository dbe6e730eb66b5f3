"""Migration rehearsals: a command run as a job against the service's database, between a snapshot
and a decision to keep what it did or roll back.

A rehearsal snapshots the database the service's ``fromDatabase`` points at, reads its schema
(``pg_dump --schema-only``) and row counts, samples the locks every session holds while the job
runs (``pg_locks`` every LOCK_SAMPLE_SECONDS), reads schema and counts again, and records the
report: outcome, duration, cost, a unified diff of the schema, rows per table before and after,
and how long each table was held in each lock mode. The rehearsal is a record in the store; its
snapshot is a database on the server, so a crash loses neither (only the lock timeline after it).
"""

from __future__ import annotations

import difflib
import re
import threading
import time
from typing import Callable

from renderlocal.core import billing
from renderlocal.core.clock import utcnow
from renderlocal.core.errors import Conflict, InvalidInput, RenderLocalError
from renderlocal.core.ids import new_id
from renderlocal.core.models import Job, Service, stamp
from renderlocal.core.state import State

TABLE = "rehearsals"
LOCK_SAMPLE_SECONDS = 0.05
LIVE_LOCKS_SECONDS = 1.0  # how often a running rehearsal's record gets the locks seen so far
LOCKS_QUERY = """
SELECT c.relname, l.mode, l.pid
FROM pg_locks l
JOIN pg_class c ON c.oid = l.relation
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.granted AND a.application_name = %(app)s AND l.pid <> pg_backend_pid()
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg_toast%%'
"""


# PostgreSQL's table lock modes, weakest to strongest: each conflicts with more of the others
LOCK_STRENGTH = {mode: rank for rank, mode in enumerate((
    "ACCESS SHARE", "ROW SHARE", "ROW EXCLUSIVE", "SHARE UPDATE EXCLUSIVE", "SHARE", "SHARE ROW EXCLUSIVE",
    "EXCLUSIVE", "ACCESS EXCLUSIVE"), start=1)}


def lock_mode_name(mode: str) -> str:
    """``AccessExclusiveLock`` as PostgreSQL's documentation and ``LOCK TABLE`` spell it: ``ACCESS EXCLUSIVE``."""
    words = re.findall(r"[A-Z][a-z]*", mode.removesuffix("Lock"))
    return " ".join(words).upper()


class LockSampler:
    """Samples granted table locks on a connection of its own; ``spans()``: per (table, mode), the
    longest time one session held it without a gap."""

    def __init__(self, connect: Callable, application: str, interval: float = LOCK_SAMPLE_SECONDS):
        self.connect = connect
        self.application = application  # the job's sessions only: not the service's, not autovacuum's
        self.interval = interval
        self._stop = threading.Event()
        self._open: dict[tuple[str, str, int], list[float]] = {}  # (table, mode, pid) -> [first, last seen]
        self._closed: list[tuple[str, str, int, float, float]] = []
        self._thread = threading.Thread(target=self._run, name="lock-sampler", daemon=True)
        self.problem: str | None = None

    def start(self) -> "LockSampler":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        try:
            with self.connect() as conn:
                while not self._stop.is_set():
                    now = time.monotonic()
                    seen = {(table, mode, pid) for table, mode, pid in conn.execute(LOCKS_QUERY, {"app": self.application}).fetchall()}
                    for key in seen:
                        self._open.setdefault(key, [now, now])[1] = now
                    for key in [k for k in self._open if k not in seen]:
                        first, last = self._open.pop(key)
                        self._closed.append((*key, first, now))  # it went between the samples: count to now
                    self._stop.wait(self.interval)
                now = time.monotonic()
                for key, (first, _last) in self._open.items():
                    self._closed.append((*key, first, now))
                self._open.clear()
        except Exception as exc:  # the server went away mid-rehearsal: the report says the timeline ends
            self.problem = f"lock sampling stopped: {exc}"

    def spans(self) -> list[dict]:
        """Per (table, mode), the longest hold so far; one still held counts until its last sample."""
        held = list(self._closed) + [(*key, first, last) for key, (first, last) in list(self._open.items())]
        longest: dict[tuple[str, str], float] = {}
        for table, mode, _pid, first, last in held:
            key = (table, lock_mode_name(mode))
            longest[key] = max(longest.get(key, 0.0), last - first)
        rows = [{"table": table, "mode": mode, "seconds": round(seconds, 2)} for (table, mode), seconds in longest.items()]
        # what blocks the most first (ACCESS EXCLUSIVE stops even reads), then the longest
        return sorted(rows, key=lambda row: (-LOCK_STRENGTH.get(row["mode"], 0), -row["seconds"], row["table"]))


def schema_diff(before: str, after: str) -> str:
    return "".join(difflib.unified_diff(before.splitlines(keepends=True), after.splitlines(keepends=True),
                                        "schema before", "schema after"))


class Rehearsals:
    """``admin_of(database) -> PostgresAdmin``; ``create_job(service, command, plan_id) -> Job``;
    ``wait(job_id, timeout) -> Job`` (ended and settled, or as it is after ``timeout``)."""

    def __init__(self, state: State, admin_of: Callable, create_job: Callable[..., Job],
                 wait: Callable[[str, float | None], Job]):
        self.state = state
        self.admin_of = admin_of
        self.create_job = create_job
        self.wait = wait
        self._threads: dict[str, threading.Thread] = {}
        self._guard = threading.Lock()

    def database_of(self, service: Service, ref: str | None):
        wired = [self.state.get_database(i) for i in service.needs if i.startswith("dpg-")]
        if ref is not None:
            database = self.state.get_database(ref)
            return database
        if not wired:
            raise InvalidInput(f"{service.name} has no database in its env (fromDatabase); name one with --database")
        if len(wired) > 1:
            raise InvalidInput(f"{service.name} uses {len(wired)} databases ({', '.join(d.name for d in wired)}); "
                               "pick one with --database")
        return wired[0]

    def start(self, service: Service, command: str, plan_id: str | None, database_ref: str | None) -> dict:
        if not command.strip():
            raise InvalidInput("a rehearsal needs a start command (--start-command)")
        database = self.database_of(service, database_ref)
        self.admin_of(database)  # not available: Conflict now, not later in the thread
        for other in self.state.store.all(TABLE):
            if other["databaseId"] == database.id and other["status"] in ("snapshotting", "running"):
                raise Conflict(f"rehearsal {other['id']} is running on {database.name}: one at a time, "
                               "or one would roll back the other's work")
        doc = {"id": new_id("rhs"), "serviceId": service.id, "databaseId": database.id, "startCommand": command,
               "planId": plan_id or "", "status": "snapshotting", "createdAt": stamp(), "steps": []}
        thread = threading.Thread(target=self._rehearse, args=(doc["id"],), name=f"rehearse-{doc['id']}", daemon=True)
        with self._guard:  # registered before it is stored: the pass never takes it for one a crash left
            self._threads[doc["id"]] = thread
            self.state.store.insert(TABLE, doc)
        thread.start()
        return doc

    def _update(self, rehearsal_id: str, **changes) -> dict:
        return self.state.store.update(TABLE, rehearsal_id, lambda d: d.update(changes))

    def _step(self, rehearsal_id: str, text: str) -> None:
        self.state.store.update(TABLE, rehearsal_id, lambda d: d["steps"].append({"at": stamp(), "text": text}))

    def _rehearse(self, rehearsal_id: str) -> None:
        doc = self.get(rehearsal_id)
        try:
            service = self.state.get_service(doc["serviceId"])
            admin = self.admin_of(self.state.get_database(doc["databaseId"]))
            snapshot = admin.snapshot(f"before rehearsal {rehearsal_id}")
            self._update(rehearsal_id, snapshot=snapshot.name)
            self._step(rehearsal_id, f"snapshot {snapshot.name} taken ({snapshot.sizeBytes:,} bytes)")
            schema_before, counts_before = admin.schema(), admin.row_counts()
            application = f"rl-rehearsal-{rehearsal_id}"
            sampler = LockSampler(admin.connect, application).start()
            try:  # libpq names the job's sessions after PGAPPNAME: the sampler watches those
                job = self.create_job(service, doc["startCommand"], doc["planId"] or None, [f"PGAPPNAME={application}"])
                self._update(rehearsal_id, jobId=job.id, status="running")
                self._step(rehearsal_id, f"job {job.id} started")
                while not (job := self.wait(job.id, LIVE_LOCKS_SECONDS)).settled:
                    self._update(rehearsal_id, locks=sampler.spans())  # the faces' live lock timeline
            finally:
                sampler.stop()
            schema_after, counts_after = admin.schema(), admin.row_counts()
            now = utcnow()
            report = {
                "outcome": job.status, "exitCode": job.exitCode, "failureReason": job.failureReason,
                "seconds": billing.billable_seconds(job.started(), job.finished(), now),
                "costUSD": billing.usd_text(job.cost(now)),
                "schemaDiff": schema_diff(schema_before, schema_after),
                "rowCounts": [{"table": t, "before": counts_before.get(t), "after": counts_after.get(t)}
                              for t in sorted(set(counts_before) | set(counts_after))],
                "locks": sampler.spans(),
            }
            if sampler.problem:
                report["lockProblem"] = sampler.problem
            self._update(rehearsal_id, status="finished", report=report, locks=report["locks"])
            self._step(rehearsal_id, f"job {job.status}; keep the result or roll back to {snapshot.name}")
        except RenderLocalError as exc:
            self._update(rehearsal_id, status="failed", problem=str(exc))
        except Exception as exc:  # the database server or the engine went away mid-way
            self._update(rehearsal_id, status="failed", problem=f"{type(exc).__name__}: {exc}")

    def decide(self, rehearsal_id: str, keep: bool) -> dict:
        doc = self.get(rehearsal_id)
        if doc["status"] not in ("finished", "failed") or doc.get("decision"):
            raise Conflict(f"rehearsal {rehearsal_id} is {doc.get('decision') or doc['status']}: "
                           "only a finished one is kept or rolled back, once")
        if not doc.get("snapshot"):
            raise Conflict(f"rehearsal {rehearsal_id} made no snapshot: there is nothing to roll back to")
        if doc.get("jobId") and not self.state.get_job(doc["jobId"]).final:
            raise Conflict(f"rehearsal {rehearsal_id}'s job {doc['jobId']} still runs: decide once it has ended "
                           "(a rollback under a running migration would lose what it does next)")
        if not keep:
            self.admin_of(self.state.get_database(doc["databaseId"])).rollback(doc["snapshot"])
        return self._update(rehearsal_id, decision="kept" if keep else "rolledBack", decidedAt=stamp())

    def resume(self) -> None:
        """A rehearsal whose thread is gone (its control plane stopped) ends as failed; its snapshot stays."""
        with self._guard:
            docs = self.state.store.all(TABLE)
            threads = dict(self._threads)
        for doc in docs:
            if doc["status"] not in ("snapshotting", "running"):
                continue
            thread = threads.get(doc["id"])
            if thread is None or (thread.ident is not None and not thread.is_alive()):
                fresh = self.get(doc["id"])
                if fresh["status"] in ("snapshotting", "running"):
                    self._update(doc["id"], status="failed", problem=(
                        "render-local stopped during the rehearsal: its job goes on, its lock timeline is lost"
                        + (f"; roll back with databases rollback {doc['databaseId']} {doc['snapshot']}"
                           if doc.get("snapshot") else "")))

    def get(self, rehearsal_id: str) -> dict:
        return self.state.get_rehearsal(rehearsal_id)
