"""The job history: TinyDB files laid out so that no operation grows with it.

- ``jobs/live.json``: jobs not yet archived (pending, running, or ended with a
  log still being completed). Small: creating a job rewrites only this file.
- ``jobs/archive/NNNNNN.json``: ended jobs, ARCHIVE_SHARD_SIZE per file, in the
  order they ended; only the newest shard is ever appended to.
- ``jobs/manifest.json``: per shard, how many jobs and their newest/oldest
  ``createdAt``, so the newest page of a list reads one or two shards.
- ``jobs/index/XX.json``: job id -> shard, bucketed by the id's first two
  random characters, so a lookup reads one tiny file.
- ``jobs/recent.json``: a copy of the RECENT_SIZE newest archived jobs (by
  ``createdAt``), so the first page of a list, the call every face makes first,
  reads two small files however long the history is.

Writers hold one file lock; every file is replaced atomically, so readers take
no lock. A job moving to the archive is written to its shard, the index and the
manifest before it leaves ``live.json``: a reader may see it twice (and keeps
the live copy), never zero times; ``recent.json`` is written before the job
leaves ``live.json`` too, and readers read ``live.json`` first.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Callable

from filelock import FileLock
from tinydb import Query, TinyDB

from renderlocal.core.statuses import FINAL_JOB_STATUSES
from renderlocal.core.store import (LOCK_TIMEOUT_SECONDS, AtomicJSONStorage, Shape, check_tables, modify,
                                    report_to_stderr, set_aside)

ARCHIVE_SHARD_SIZE = 100  # a lookup parses one shard: keep it small
RECENT_SIZE = 100  # Render's largest page


# what the job store itself indexes; State asks for JOB_SHAPE, what a Job record needs
JOB_KEYS = Shape({"id": str, "serviceId": str, "createdAt": str, "status": str},
                 {"env": dict, "envOverrides": dict, "events": list, "failureReason": dict})
JOB_SHAPE = Shape(JOB_KEYS.required | {"startCommand": str, "planId": str, "buildId": str, "image": str},
                  JOB_KEYS.optional)
SHARD_ENTRY = Shape({"id": str, "count": int, "newest": str, "oldest": str})
INDEX_ENTRY = Shape({"id": str, "shard": str})


def _sort_key(doc: dict) -> tuple[str, str]:
    return doc["createdAt"], doc["id"]


def _bucket_key(job_id: str) -> str:
    return job_id[4:6] if len(job_id) >= 6 else "__"


def _table_data(table: str, docs: list[dict]) -> dict:
    return {table: {str(n): doc for n, doc in enumerate(docs, 1)}}


class _File:
    """One TinyDB file with one table, read through a (path, mtime, size) cache; ``on_damaged`` (see
    ``AtomicJSONStorage``) repairs it when it fails ``shape``."""

    def __init__(self, path: Path, table: str, shape: Shape, on_damaged):
        self.path = path
        self.table_name = table
        self.shape = shape
        self.on_damaged = on_damaged
        self._cache: tuple[tuple, list[dict]] | None = None

    def _stamp(self):
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return None
        return stat.st_mtime_ns, stat.st_size, stat.st_ino

    def _db(self, on_damaged=None) -> TinyDB:
        return TinyDB(str(self.path), storage=AtomicJSONStorage, shapes={self.table_name: self.shape},
                      on_damaged=on_damaged or self.on_damaged)

    def docs(self) -> list[dict]:
        stamp = self._stamp()
        if stamp is None:
            return []
        if self._cache and self._cache[0] == stamp:
            return self._cache[1]
        db = self._db()
        try:
            docs = [dict(doc) for doc in db.table(self.table_name, cache_size=0).all()]
        finally:
            db.close()
        self._cache = (stamp, docs)
        return docs

    def sound_docs(self) -> list[dict]:
        """The records that pass the shape, the file left as it is (what a repair of another file reads)."""
        try:
            data, _why = check_tables(self.path.read_bytes(), {self.table_name: self.shape})
        except FileNotFoundError:
            return []
        return list(data.get(self.table_name, {}).values())

    def checked(self) -> tuple[dict | None, str | None]:
        """(the file's data with its sound records, why it is damaged or None); (None, None) if absent."""
        try:
            return check_tables(self.path.read_bytes(), {self.table_name: self.shape})
        except FileNotFoundError:
            return None, None

    def replace(self, docs: list[dict]) -> None:
        """The table becomes exactly ``docs``, in one atomic write."""
        AtomicJSONStorage(str(self.path)).write(_table_data(self.table_name, docs))
        self._cache = None

    @contextmanager
    def write(self):
        db = self._db()
        try:
            yield db.table(self.table_name, cache_size=0)
        finally:
            db.close()
            self._cache = None


class JobStore:
    """``on_change("job", doc)`` is told of every job written (see ``Store``)."""

    def __init__(self, root: Path, on_change: Callable[[str, dict | None], None] | None = None,
                 report: Callable[[str], None] | None = None, job_shape: Shape = JOB_KEYS):
        self.root = Path(root)
        self.on_change = on_change
        self.report = report or report_to_stderr
        self.job_shape = job_shape
        (self.root / "archive").mkdir(parents=True, exist_ok=True)
        (self.root / "index").mkdir(exist_ok=True)
        self.lock = FileLock(str(self.root / "jobs.lock"), timeout=LOCK_TIMEOUT_SECONDS)
        self.live_file = _File(self.root / "live.json", "jobs", job_shape, self._repairing(self._set_live_aside))
        self.manifest = _File(self.root / "manifest.json", "shards", SHARD_ENTRY, self._repairing(self._rebuild_manifest))
        self.recent = _File(self.root / "recent.json", "jobs", job_shape, self._repairing(self._rebuild_recent))
        self._shards: dict[str, _File] = {}
        self._buckets: dict[str, _File] = {}
        if self.manifest.path.exists() and not self.recent.path.exists():
            with self.lock:  # a data dir from before recent.json existed
                if not self.recent.path.exists():
                    self._rebuild_recent(self.recent, "")

    def _shard(self, shard_id: str) -> _File:
        if shard_id not in self._shards:
            path = self.root / "archive" / f"{shard_id}.json"
            self._shards[shard_id] = _File(path, "jobs", self.job_shape, self._repairing(self._set_shard_aside))
        return self._shards[shard_id]

    def _bucket(self, job_id: str) -> _File:
        key = _bucket_key(job_id)
        if key not in self._buckets:
            path = self.root / "index" / f"{key}.json"
            self._buckets[key] = _File(path, "ids", INDEX_ENTRY, self._repairing(self._rebuild_bucket))
        return self._buckets[key]

    # -- repairs (under the writers' lock; readers take it only to repair) -------------
    def _repairing(self, repair: Callable[["_File", str], list[dict]]):
        """An ``on_damaged`` for a file: under the lock, unless another process repaired it meanwhile,
        ``repair(file, why)`` makes it sound again and gives its records."""

        def on_damaged(path: Path, _why: str, _kept: dict) -> dict:
            file = self._file_at(path)
            with self.lock:
                data, why = file.checked()
                if why is not None:
                    return _table_data(file.table_name, repair(file, why))
                return data or {}

        return on_damaged

    def _file_at(self, path: Path) -> _File:
        if path == self.live_file.path:
            return self.live_file
        if path == self.manifest.path:
            return self.manifest
        if path == self.recent.path:
            return self.recent
        if path.parent.name == "archive":
            return self._shard(path.stem)
        return self._bucket("job-" + path.stem)

    def _archived_files(self) -> list[_File]:
        return [self._shard(path.stem) for path in sorted((self.root / "archive").glob("*.json"))]

    def _set_live_aside(self, file: _File, why: str) -> list[dict]:
        kept = file.sound_docs()
        aside = set_aside(file.path)
        file.replace(kept)
        self.report(f"store file {file.path} is damaged ({why}): moved to {aside.name}, {len(kept)} sound job "
                    f"record(s) kept; the control plane rebuilds the others from their containers, if they remain")
        return kept

    def _rebuild_recent(self, file: _File, why: str) -> list[dict]:
        docs = [doc for shard in self._archived_files() for doc in shard.docs()]
        newest = sorted(docs, key=_sort_key, reverse=True)[:RECENT_SIZE]
        file.replace(newest)
        if why:
            self.report(f"store file {file.path} is damaged ({why}): rebuilt from the archive, nothing lost")
        return newest

    def _rebuild_manifest(self, file: _File, why: str) -> list[dict]:
        entries = []
        for shard in self._archived_files():
            docs = shard.docs()
            if docs:
                created = [doc["createdAt"] for doc in docs]
                entries.append({"id": shard.path.stem, "count": len(docs), "newest": max(created),
                                "oldest": min(created)})
        file.replace(entries)
        self.report(f"store file {file.path} is damaged ({why}): rebuilt from the archive, nothing lost")
        return entries

    def _rebuild_bucket(self, file: _File, why: str) -> list[dict]:
        key = file.path.stem
        entries = [{"id": doc["id"], "shard": shard.path.stem} for shard in self._archived_files()
                   for doc in shard.docs() if _bucket_key(doc["id"]) == key]
        file.replace(entries)
        self.report(f"store file {file.path} is damaged ({why}): rebuilt from the archive, nothing lost")
        return entries

    def _set_shard_aside(self, file: _File, why: str) -> list[dict]:
        """A shard keeps its sound jobs and gets back those recent.json has a copy of; the rest are lost."""
        shard_id = file.path.stem
        kept = {doc["id"]: doc for doc in file.sound_docs()}
        for doc in self.recent.sound_docs():
            entry = next((e for e in self._bucket(doc["id"]).sound_docs() if e["id"] == doc["id"]), None)
            if entry is not None and entry["shard"] == shard_id:
                kept.setdefault(doc["id"], doc)
        docs = sorted(kept.values(), key=_sort_key)
        held = next((e["count"] for e in self.manifest.sound_docs() if e["id"] == shard_id), None)
        aside = set_aside(file.path)
        file.replace(docs)
        if docs:
            self._note_shard(shard_id, docs)
        lost = f"{max(held - len(docs), 0)} job record(s) lost" if held is not None else "the others are lost"
        self.report(f"store file {file.path} is damaged ({why}): moved to {aside.name}, {len(docs)} job record(s) "
                    f"kept or recovered from recent.json; {lost}")
        return docs

    def _note_shard(self, shard_id: str, docs: list[dict]) -> None:
        """The manifest's entry of a shard, as its jobs are now (a damaged manifest is rebuilt whole instead)."""
        if self.manifest.checked()[1] is not None:
            return
        created = [doc["createdAt"] for doc in docs]
        entry = {"id": shard_id, "count": len(docs), "newest": max(created), "oldest": min(created)}
        with self.manifest.write() as table:
            table.upsert(entry, Query().id == shard_id)

    # -- reads (no lock) ---------------------------------------------------------
    def live(self) -> list[dict]:
        return [dict(doc) for doc in self.live_file.docs()]

    def get(self, job_id: str) -> dict | None:
        for doc in self.live_file.docs():
            if doc["id"] == job_id:
                return dict(doc)
        shard = self._shard_of(job_id)
        if shard is None:
            return None
        doc = next((d for d in self._shard(shard).docs() if d["id"] == job_id), None)
        return dict(doc) if doc else None

    def query(self, match: Callable[[dict], bool] | None = None, limit: int | None = None,
              before: tuple[str, str] | None = None) -> list[dict]:
        """Matching jobs, newest first; ``before`` = (createdAt, id) of the last one seen."""
        match = match or (lambda _doc: True)

        def wanted(doc):
            return (before is None or _sort_key(doc) < before) and match(doc)

        found = {d["id"]: d for d in self.live_file.docs() if wanted(d)}
        recent = self.recent.docs()  # read after live.json: a job moving out is in one of them
        from_recent = [d for d in recent if wanted(d)]
        if len(recent) < RECENT_SIZE or (limit is not None and len(from_recent) >= limit):
            # recent.json is the newest slice of the archive (or all of it): enough for this page
            for doc in from_recent:
                found.setdefault(doc["id"], doc)
        else:
            self._query_shards(found, wanted, limit, before)
        ordered = sorted(found.values(), key=_sort_key, reverse=True)
        return [dict(doc) for doc in ordered[:limit]]

    def _query_shards(self, found: dict, wanted, limit: int | None, before: tuple[str, str] | None) -> None:
        """Add the archived jobs a page needs to ``found``, newest shards first."""
        shards = sorted(self.manifest.docs(), key=lambda s: s["newest"], reverse=True)
        for shard in shards:
            if limit is not None and len(found) >= limit:
                cutoff = sorted(found.values(), key=_sort_key, reverse=True)[limit - 1]["createdAt"]
                if shard["newest"] < cutoff:
                    break  # this shard and all after it hold only older jobs
            if before is not None and shard["oldest"] > before[0]:
                continue
            for doc in self._shard(shard["id"]).docs():
                if doc["id"] not in found and wanted(doc):
                    found[doc["id"]] = doc

    # -- writes (locked) -----------------------------------------------------------
    def _changed(self, doc: dict | None) -> None:
        if self.on_change is not None:
            self.on_change("job", doc)

    def insert(self, doc: dict) -> dict:
        with self.lock, self.live_file.write() as table:
            table.insert(doc)
        self._changed(doc)
        return doc

    def update(self, job_id: str, change: Callable[[dict], object]) -> dict | None:
        """Read-modify-write one job; an ended job with a complete log moves to the archive."""
        with self.lock:
            with self.live_file.write() as table:
                current = table.get(Query().id == job_id)
                if current is not None:
                    doc = dict(current)
                    change(doc)
                    if doc["status"] in FINAL_JOB_STATUSES and doc.get("logsComplete"):
                        self._archive([doc])  # archived before it leaves live: never missing
                        table.remove(doc_ids=[current.doc_id])
                    else:
                        table.update(doc, doc_ids=[current.doc_id])
                    changed = doc
                else:
                    changed = None
            if changed is None:
                changed = self._update_archived(job_id, change)
        if changed is not None:
            self._changed(changed)
        return changed

    def bulk_insert(self, docs: list[dict]) -> None:
        """Seed many jobs at once (imports, benchmarks): ended ones go straight to the archive."""
        with self.lock:
            ended = [d for d in docs if d["status"] in FINAL_JOB_STATUSES and d.get("logsComplete")]
            live = [d for d in docs if not (d["status"] in FINAL_JOB_STATUSES and d.get("logsComplete"))]
            for start in range(0, len(ended), ARCHIVE_SHARD_SIZE):
                self._archive(ended[start : start + ARCHIVE_SHARD_SIZE])
            if live:
                with self.live_file.write() as table:
                    table.insert_multiple(live)

    def remove_all(self) -> None:
        """Forget every record (containers still know their jobs: see reconcile)."""
        with self.lock:
            for path in [self.live_file.path, self.manifest.path, self.recent.path, *self.root.glob("archive/*.json"), *self.root.glob("index/*.json")]:
                path.unlink(missing_ok=True)

    def _update_archived(self, job_id: str, change) -> dict | None:
        shard = self._shard_of(job_id)
        if shard is None:
            return None
        with self._shard(shard).write() as table:
            doc = modify(table, job_id, change)
        if doc is not None and any(d["id"] == job_id for d in self.recent.docs()):
            self._keep_recent([doc])
        return doc

    def _keep_recent(self, docs: list[dict]) -> None:
        """Merge archived (or re-edited archived) jobs into the newest-N copy."""
        merged = {d["id"]: d for d in self.recent.docs()} | {d["id"]: d for d in docs}
        newest = sorted(merged.values(), key=_sort_key, reverse=True)[:RECENT_SIZE]
        if not {d["id"] for d in docs} & {d["id"] for d in newest}:
            return  # all older than the newest N: nothing to copy
        self.recent.replace(newest)

    def _shard_of(self, job_id: str) -> str | None:
        entry = next((e for e in self._bucket(job_id).docs() if e["id"] == job_id), None)
        return entry["shard"] if entry else None

    def _archive(self, docs: list[dict]) -> None:
        """Append ended jobs to the open shard (a new one when it is full)."""
        shards = sorted(self.manifest.docs(), key=lambda s: s["id"])
        pending = list(docs)
        while pending:
            last = shards[-1] if shards else None
            if last is None or last["count"] >= ARCHIVE_SHARD_SIZE:
                last = {"id": f"{len(shards):06d}", "count": 0, "newest": "", "oldest": "9999"}
                shards.append(last)
            room = ARCHIVE_SHARD_SIZE - last["count"]
            batch, pending = pending[:room], pending[room:]
            with self._shard(last["id"]).write() as table:
                table.insert_multiple(batch)
            by_bucket: dict[str, list[str]] = {}
            for doc in batch:
                by_bucket.setdefault(_bucket_key(doc["id"]), []).append(doc["id"])
            for ids in by_bucket.values():
                with self._bucket(ids[0]).write() as table:
                    table.insert_multiple({"id": job_id, "shard": last["id"]} for job_id in ids)
            last["count"] += len(batch)
            last["newest"] = max([last["newest"]] + [d["createdAt"] for d in batch])
            last["oldest"] = min([last["oldest"]] + [d["createdAt"] for d in batch])
            with self.manifest.write() as table:
                table.upsert(last, Query().id == last["id"])
        self._keep_recent(docs)
