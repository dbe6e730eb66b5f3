"""The TinyDB store: one JSON file per table under ``<data dir>/store``.

Every operation runs under a file lock (two render-local processes may share a
data dir) and every write replaces the file atomically (write a temporary file,
fsync, rename), so a crash mid-write leaves the previous version intact. A file
that does not parse is moved aside under a timestamped name and reported; it is
never overwritten.
"""

from __future__ import annotations

import json
import os
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

TABLES = ("services", "builds", "deploys", "databases", "keyvalues", "settings")  # jobs: see jobstore.py
LOCK_TIMEOUT_SECONDS = 30


class AtomicJSONStorage(Storage):
    """TinyDB storage that never leaves a half-written file behind."""

    def __init__(self, path: str):
        self.path = Path(path)

    def read(self) -> dict | None:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return None
        if not raw.strip():
            return None if raw == b"" else self._set_aside("the file is blank")
        try:
            data = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            self._set_aside(f"it is not valid JSON ({exc})")
        if not isinstance(data, dict):
            self._set_aside("its top level is not a JSON object")
        return data

    def write(self, data: dict) -> None:
        write_atomic(self.path, json.dumps(data, separators=(",", ":")))

    def _set_aside(self, why: str):
        stamp = utcnow().strftime("%Y%m%dT%H%M%S%fZ")
        aside = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
        os.replace(self.path, aside)
        raise StoreCorrupt(
            f"store file {self.path} is unreadable: {why}; it was moved to {aside.name} "
            f"and a new empty {self.path.name} will be started on the next run"
        )


class Store:
    """``on_change(kind, doc)`` is told of every write (``doc`` is None when a whole table changed):
    the control plane turns it into change events for the faces."""

    KINDS = {"services": "service", "builds": "build", "deploys": "deploy", "databases": "database",
             "keyvalues": "keyvalue", "settings": "settings"}

    def __init__(self, root: Path, on_change: Callable[[str, dict | None], None] | None = None):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.on_change = on_change

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
                db = TinyDB(str(path), storage=AtomicJSONStorage)
                try:
                    yield db.table(name, cache_size=0)
                finally:
                    db.close()
        except Timeout:
            raise StoreCorrupt(f"store file {path} stayed locked for {LOCK_TIMEOUT_SECONDS}s; is another render-local stuck?") from None

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
