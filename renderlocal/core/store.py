"""The TinyDB store: one JSON file per table under ``<data dir>/store``.

Every operation runs under a file lock (two render-local processes may share a
data dir) and every write replaces the file atomically (write a temporary file,
fsync, rename), so a crash mid-write leaves the previous version intact.

Every file is checked by shape as it is read: a JSON object of tables, each an
object of numbered records, each record with the keys its readers index (see
``RECORD_SHAPES``). A file that fails is moved aside under a timestamped name,
never overwritten: the records that pass are kept (written back), and the one
line that says what was lost goes to whoever the store reports to (``State``:
stderr and the control plane's warnings). A store with nobody to report to
raises ``StoreCorrupt`` instead.
"""

from __future__ import annotations

import json
import os
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

from filelock import FileLock, Timeout
from tinydb import Query, TinyDB
from tinydb.storages import Storage
from tinydb.table import Table

from renderlocal.core.atomic import write_atomic
from renderlocal.core.clock import utcnow
from renderlocal.core.errors import StoreCorrupt

TABLES = ("services", "builds", "deploys", "databases", "keyvalues", "settings", "comparisons", "rehearsals")  # jobs: see jobstore.py
LOCK_TIMEOUT_SECONDS = 30


class Shape:
    """The keys a stored record must have (and their JSON types), and the optional ones' types."""

    def __init__(self, required: dict[str, type | tuple], optional: dict[str, type | tuple] | None = None):
        self.required = required
        self.optional = optional or {}

    def problem(self, doc) -> str | None:
        """Why ``doc`` is not a record of this shape, or None."""
        if not isinstance(doc, dict):
            return f"a record is a JSON {_json_type(doc)}, not an object"
        for key, types in self.required.items():
            if key not in doc:
                return f"a record has no {key!r}"
            if not isinstance(doc[key], types):
                return f"a record's {key!r} is a JSON {_json_type(doc[key])}"
        for key, types in self.optional.items():
            if doc.get(key) is not None and not isinstance(doc[key], types):
                return f"a record's {key!r} is a JSON {_json_type(doc[key])}"
        return None


ANY_RECORD = Shape({})
_TEXT = {"createdAt": str, "updatedAt": str}
RECORD_SHAPES = {  # what the records' readers index directly (models.py's fields without a default, and more)
    "services": Shape({"id": str, "name": str, "type": str, "runtime": str, "planId": str, "rootDir": str, **_TEXT},
                      {"envVars": dict, "generatedEnv": dict, "writtenPaths": dict, "buildPaths": list,
                       "buildIgnoredPaths": list, "secretKeys": list, "needs": list, "suspensions": list,
                       "lastSuccessfulBuildId": str, "latestBuildId": str, "liveDeployId": str}),
    "builds": Shape({"id": str, "serviceId": str, "status": str, "createdAt": str}, {"failureReason": dict}),
    "deploys": Shape({"id": str, "serviceId": str, "buildId": str, "image": str, "status": str, "createdAt": str},
                     {"instances": list, "events": list, "failureReason": dict}),
    "databases": Shape({"id": str, "name": str, "databaseName": str, "databaseUser": str, "plan": str,
                        "memoryMB": int, "version": str, **_TEXT}, {"ipAllowList": list, "hostPort": int}),
    "keyvalues": Shape({"id": str, "name": str, "plan": str, "memoryMB": int, "maxmemoryPolicy": str, **_TEXT},
                       {"ipAllowList": list, "hostPort": int}),
    "settings": Shape({"id": str}),
    "comparisons": Shape({"id": str, "serviceId": str, "startCommand": str, "planIds": list, "sequential": bool,
                          "jobIds": dict, "createdAt": str}, {"env": list, "problem": str, "peaks": dict, "gaveUp": bool}),
    "rehearsals": Shape({"id": str, "serviceId": str, "databaseId": str, "startCommand": str, "status": str,
                         "createdAt": str, "steps": list}, {"report": dict, "problem": str, "snapshot": str, "locks": list}),
}
LOST_WITH = {  # what becomes of a table's records that were not kept, in the report's words
    "services": "the services are synced again from render.yaml, keeping their ids, generated values and last builds",
    "builds": "the other builds are lost (build a service again before its next job)",
    "deploys": "the other deploys are lost",
    "databases": "the databases are synced again from render.yaml, keeping their ids and so their data",
    "keyvalues": "the Key Value records are synced again from render.yaml, keeping their ids",
    "settings": "the log stream settings are lost (set them again)",
}


def _json_type(value) -> str:
    names = {dict: "object", list: "array", str: "string", bool: "boolean", int: "number", float: "number"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


def check_tables(raw: bytes, shapes: dict[str, Shape]) -> tuple[dict, str | None]:
    """The TinyDB data in ``raw`` with every record that fails its table's shape left out, and why
    the file is not sound (None if it is). An unreadable file gives ``{}``."""
    if not raw.strip():
        return {}, "it is empty" if raw == b"" else "it is blank"
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        return {}, f"it is not valid JSON ({str(exc)[:80]})"
    if not isinstance(data, dict):
        return {}, f"its top level is a JSON {_json_type(data)}, not an object"
    kept, problems = {}, []
    for name, table in data.items():
        if not isinstance(table, dict):
            problems.append(f"table {name!r} is a JSON {_json_type(table)}, not an object")
            kept[name] = {}
            continue
        shape = shapes.get(name, ANY_RECORD)
        kept[name] = {}
        for doc_id, doc in table.items():
            why = "a record's number is not a number" if not str(doc_id).isdigit() else shape.problem(doc)
            if why is None:
                kept[name][doc_id] = doc
            else:
                problems.append(why)
    if not problems:
        return data, None
    dropped = len(problems)
    return kept, f"{dropped} record(s) of the wrong shape ({problems[0]})"


def set_aside(path: Path) -> Path:
    """Move a damaged file out of the way under a timestamped name (kept for the user, never read)."""
    stamp = utcnow().strftime("%Y%m%dT%H%M%S%fZ")
    aside = path.with_name(f"{path.name}.corrupt-{stamp}")
    os.replace(path, aside)
    return aside


def report_to_stderr(message: str) -> None:
    print(f"render-local: warning: {message}", file=sys.stderr, flush=True)


class AtomicJSONStorage(Storage):
    """TinyDB storage that never leaves a half-written file behind, and reads only sound records.

    ``on_damaged(path, why, kept)`` decides what a file that fails its shapes becomes: it gets the
    records that passed (TinyDB's data) and returns the data to use. Without it, the file is
    moved aside and ``StoreCorrupt`` raised.
    """

    def __init__(self, path: str, shapes: dict[str, Shape] | None = None,
                 on_damaged: Callable[[Path, str, dict], dict | None] | None = None):
        self.path = Path(path)
        self.shapes = shapes or {}
        self.on_damaged = on_damaged

    def read(self) -> dict | None:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return None
        data, why = check_tables(raw, self.shapes)
        if why is None:
            return data
        if self.on_damaged is not None:
            return self.on_damaged(self.path, why, data)
        aside = set_aside(self.path)
        raise StoreCorrupt(
            f"store file {self.path} is unreadable: {why}; it was moved to {aside.name} "
            f"and a new empty {self.path.name} will be started on the next run"
        )

    def write(self, data: dict) -> None:
        write_atomic(self.path, json.dumps(data, separators=(",", ":")))


class Store:
    """``on_change(kind, doc)`` is told of every write (``doc`` is None when a whole table changed):
    the control plane turns it into change events for the faces. ``report(line)`` is told once of
    each damaged file, moved aside with its sound records kept; without it, reading one raises
    ``StoreCorrupt``. ``shapes``: what each table's records must have (``RECORD_SHAPES``)."""

    KINDS = {"services": "service", "builds": "build", "deploys": "deploy", "databases": "database",
             "keyvalues": "keyvalue", "settings": "settings", "comparisons": "comparison",
             "rehearsals": "rehearsal"}

    def __init__(self, root: Path, on_change: Callable[[str, dict | None], None] | None = None,
                 report: Callable[[str], None] | None = None, shapes: dict[str, Shape] | None = None):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.on_change = on_change
        self.report = report
        self.shapes = shapes or {}

    def path(self, table: str) -> Path:
        """The file that holds ``table``."""
        if table not in TABLES:
            raise ValueError(f"unknown table {table}")
        return self.root / f"{table}.json"

    def _changed(self, name: str, doc: dict | None) -> None:
        if self.on_change is not None:
            self.on_change(self.KINDS[name], doc)

    @contextmanager
    def changing(self, name: str) -> Iterator[Table]:
        """The table for a write of several documents; one change of the whole table is told after."""
        with self.table(name) as table:
            yield table
        self._changed(name, None)

    @contextmanager
    def table(self, name: str) -> Iterator[Table]:
        """The table, locked against every other process and thread for the block (reads: see ``changing``)."""
        path = self.path(name)
        lock = FileLock(str(path) + ".lock", timeout=LOCK_TIMEOUT_SECONDS)
        try:
            with lock:
                db = TinyDB(str(path), storage=AtomicJSONStorage, shapes=self.shapes,
                            on_damaged=self._damaged if self.report is not None else None)
                try:
                    yield db.table(name, cache_size=0)
                finally:
                    db.close()
        except Timeout:
            raise StoreCorrupt(f"store file {path} stayed locked for {LOCK_TIMEOUT_SECONDS}s; is another render-local stuck?") from None

    def _damaged(self, path: Path, why: str, kept: dict) -> dict:
        """Set a damaged table file aside, keep its sound records, and say what was lost (under its lock)."""
        aside = set_aside(path)
        table = path.stem
        records = len(kept.get(table, {}))
        if records:
            write_atomic(path, json.dumps(kept, separators=(",", ":")))
        self.report(f"store file {path} is damaged ({why}): moved to {aside.name}, {records} sound record(s) "
                    f"kept; {LOST_WITH.get(table, 'the other records are lost')}")
        return kept

    # -- small conveniences, each one locked transaction -------------------
    def all(self, name: str) -> list[dict]:
        with self.table(name) as table:
            return [dict(doc) for doc in table.all()]

    def get(self, name: str, doc_id: str) -> dict | None:
        with self.table(name) as table:
            doc = table.get(Query().id == doc_id)
            return dict(doc) if doc else None

    def find(self, name: str, **fields: Any) -> list[dict]:
        with self.table(name) as table:
            return [dict(doc) for doc in table.all() if all(doc.get(k) == v for k, v in fields.items())]

    def insert(self, name: str, doc: dict) -> dict:
        with self.table(name) as table:
            table.insert(doc)
        self._changed(name, doc)
        return doc

    def upsert(self, name: str, doc: dict) -> dict:
        with self.table(name) as table:
            table.upsert(doc, Query().id == doc["id"])
        self._changed(name, doc)
        return doc

    def update(self, name: str, doc_id: str, change: Callable[[dict], dict | None]) -> dict | None:
        """Read-modify-write one document atomically; ``change`` edits it in place."""
        with self.table(name) as table:
            doc = modify(table, doc_id, change)
        if doc is not None:
            self._changed(name, doc)
        return doc


def modify(table: Table, doc_id: str, change: Callable[[dict], object]) -> dict | None:
    """Apply ``change`` to the document with this id in an open (locked) table."""
    current = table.get(Query().id == doc_id)
    if current is None:
        return None
    doc = dict(current)
    change(doc)
    table.update(doc, doc_ids=[current.doc_id])
    return doc
