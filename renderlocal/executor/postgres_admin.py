"""A local database's data: dump and restore files, snapshots to roll back to, its schema, its row
counts, and the locks a session holds while something runs against it.

SQL goes over the database's localhost port (psycopg, as the superuser the official image makes);
``pg_dump``, ``pg_restore`` and ``psql`` run inside the database's own container, so their
version is the server's, and files cross into it as tar archives (the engine's archive API).

Snapshots are databases made with ``CREATE DATABASE ... TEMPLATE``: PostgreSQL copies the
source's files while the server keeps running (other databases and services stay up), it takes
about as long as copying the files, and the copy is consistent because no session may be
connected to the source meanwhile (render-local ends those sessions first; an app reconnects).
A copy of the volume would need the server stopped. A snapshot's label and time live in its
database comment, so the list outlives any render-local process.
"""

from __future__ import annotations

import contextlib
import json
import re
import secrets
import tarfile
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from renderlocal.core.errors import Conflict, InvalidInput, NotFound, RenderLocalError
from renderlocal.core.clock import parse_stored
from renderlocal.core.models import Database, stamp
from renderlocal.executor.datastores import container_name

SNAPSHOT_PREFIX = "rl_snap_"
CUSTOM_FORMAT_MAGIC = b"PGDMP"
COPY_CHUNK = 1 << 20
ROLE_LINE = re.compile(r"^(?:ALTER .+ OWNER TO|GRANT .+ TO|REVOKE .+ FROM) (.+);$")

# One operation at a time on a database (a restore, a rollback, a snapshot, a rehearsal's copy):
# two would end each other's sessions and swap each other's copies away.
_busy: dict[str, threading.Lock] = {}
_busy_guard = threading.Lock()


def database_lock(database_id: str) -> threading.Lock:
    with _busy_guard:
        return _busy.setdefault(database_id, threading.Lock())


def dump_kind(source: Path) -> str:
    """``custom`` or ``plain``; a file that is neither is refused, naming what it looks like."""
    with open(source, "rb") as handle:
        head = handle.read(1 << 16)
    if head.startswith(CUSTOM_FORMAT_MAGIC):
        return "custom"
    if head.startswith(b"\x1f\x8b"):
        raise InvalidInput(f"{source} is gzip-compressed: gunzip it first (or make it with pg_dump -Fc)")
    if len(head) > 262 and head[257:262] == b"ustar":
        raise InvalidInput(f"{source} is a tar archive (pg_dump -Ft?): make a custom-format (-Fc) or plain dump")
    if not head.strip():
        raise InvalidInput(f"{source} is empty: it holds no dump")
    if b"\0" in head:
        raise InvalidInput(f"{source} is not a pg_dump file: neither custom format (PGDMP) nor SQL text")
    return "plain"


def roles_named(source: Path) -> set[str]:
    """Roles a plain dump gives objects to or grants to (Render's user): made here before it loads,
    so its OWNER TO and GRANT statements run as written (filtering them out would also drop data
    lines that happen to start alike)."""
    names = set()
    with open(source, "r", encoding="utf-8", errors="replace") as handle:
        for line in handle:
            found = ROLE_LINE.match(line.rstrip("\n"))
            if found:
                names.update(part.strip().strip('"') for part in found.group(1).split(","))
    return {name for name in names if name and name.upper() not in ("PUBLIC", "CURRENT_USER", "SESSION_USER")}


class DatabaseCommandFailed(RenderLocalError):
    kind = "database_command_failed"
    status = 400


@dataclass
class Snapshot:
    name: str
    label: str
    createdAt: str
    sizeBytes: int

    def to_json(self) -> dict:
        return {"name": self.name, "label": self.label, "createdAt": self.createdAt, "sizeBytes": self.sizeBytes}


class PostgresAdmin:
    def __init__(self, engine, database: Database, password: str):
        if database.status != "available" or not database.hostPort:
            raise Conflict(f"database {database.name} is {database.status}: render-local up starts it")
        self.engine = engine
        self.database = database
        self.password = password

    # -- connections -------------------------------------------------------------------------
    def connect(self, dbname: str | None = None, autocommit: bool = True):
        import psycopg

        return psycopg.connect(host="127.0.0.1", port=self.database.hostPort, user=self.database.databaseUser,
                               password=self.password, dbname=dbname or self.database.databaseName,
                               autocommit=autocommit, connect_timeout=10)

    def _container(self):
        return self.engine.client.containers.get(container_name(self.database))

    def _run(self, command: list[str], what: str) -> bytes:
        result = self._container().exec_run(command, demux=True,
                                            environment={"PGPASSWORD": self.password})
        out, err = result.output
        if result.exit_code != 0:
            text = (err or out or b"").decode("utf-8", "replace").strip().splitlines()
            raise DatabaseCommandFailed(f"{what} failed: {' | '.join(text[-3:]) or f'exit code {result.exit_code}'}")
        return out or b""

    def _base_args(self) -> list[str]:
        return ["-U", self.database.databaseUser, "-h", "127.0.0.1"]

    # -- dump and restore ----------------------------------------------------------------------
    def dump(self, target: Path) -> int:
        """Write a custom-format dump (``pg_dump -Fc``) of the database to ``target``; its size."""
        if not target.parent.is_dir():
            raise InvalidInput(f"no folder {target.parent} to write {target.name} in")
        inside = f"/tmp/render-local-dump-{secrets.token_hex(6)}"
        self._run(["pg_dump", "-Fc", *self._base_args(), "-d", self.database.databaseName, "-f", inside], "pg_dump")
        try:
            stream, _stat = self._container().get_archive(inside)
            with tempfile.TemporaryFile() as archive:
                for chunk in stream:
                    archive.write(chunk)
                archive.seek(0)
                with tarfile.open(fileobj=archive) as tar:
                    member = tar.next()
                    source = tar.extractfile(member)
                    partial = target.with_name(target.name + ".partial")
                    try:
                        with open(partial, "wb") as out:
                            while chunk := source.read(COPY_CHUNK):
                                out.write(chunk)
                        partial.replace(target)  # a file named FILE is always a whole dump
                    except OSError as exc:
                        raise InvalidInput(f"could not write {target}: {exc.strerror}") from None
        finally:
            self._run(["rm", "-f", inside], "removing the dump's copy")
        return target.stat().st_size

    def restore(self, source: Path, progress=lambda text: None) -> dict:
        """Replace the database's contents with a ``pg_dump`` file (custom format or plain SQL).

        A snapshot is taken first (``databases rollback`` undoes the restore), then the file is
        loaded into a new database that replaces the old one only once it loaded. A custom dump
        loads without its owners and grants; a plain one as written, with the roles it names
        made here first (without login)."""
        if not source.is_file():
            raise InvalidInput(f"no dump file at {source}")
        kind = dump_kind(source)
        roles = roles_named(source) if kind == "plain" else set()
        size = source.stat().st_size
        with self.busy():
            before = self._snapshot(f"before restoring {source.name}")
            progress(f"snapshot {before.name} taken; copying {size:,} bytes into {self.database.name}'s container")
            inside = f"/tmp/render-local-restore-{secrets.token_hex(6)}"
            self._put(source, inside)
            try:
                progress(f"loading the {kind} dump into a new database")
                self._make_roles(roles)
                fresh = self._make_fresh()
                try:
                    db = ["-d", fresh]
                    if kind == "custom":
                        self._run(["pg_restore", *self._base_args(), *db, "--no-owner", "--no-privileges",
                                   "--exit-on-error", inside], "pg_restore")
                    else:
                        self._run(["psql", *self._base_args(), *db, "-v", "ON_ERROR_STOP=1", "-q", "-f", inside], "psql")
                except BaseException:
                    self._drop(fresh)  # the database stays as it was
                    raise
                progress("putting it in place of the old one")
                self._swap(fresh)
            finally:
                self._run(["rm", "-f", inside], "removing the dump's copy")
        counts = self.row_counts()
        progress(f"restored: {len(counts)} tables, {sum(counts.values()):,} rows")
        return {"format": kind, "bytes": size, "tables": len(counts), "rows": sum(counts.values()),
                "snapshotBefore": before.name}

    def _make_roles(self, roles: set[str]) -> None:
        from psycopg import sql

        with self.connect("postgres") as conn:
            have = {row[0] for row in conn.execute("SELECT rolname FROM pg_roles").fetchall()}
            for role in sorted(roles - have):
                conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(role)))

    def _put(self, source: Path, inside: str) -> None:
        with tempfile.TemporaryFile() as archive:
            with tarfile.open(fileobj=archive, mode="w") as tar:
                info = tar.gettarinfo(str(source), arcname=Path(inside).name)
                info.uid = info.gid = 0
                info.mode = 0o600  # root's: the tools run as root in the container, with -h and -U
                with open(source, "rb") as handle:
                    tar.addfile(info, handle)
            archive.seek(0)
            if not self._container().put_archive("/tmp", archive):
                raise DatabaseCommandFailed(f"could not copy {source} into {self.database.name}'s container")

    # -- snapshots -----------------------------------------------------------------------------
    def _end_sessions(self, conn, dbname: str) -> None:
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> "
                     "pg_backend_pid()", (dbname,))

    def _copy(self, conn, source: str, target: str) -> None:
        from psycopg import sql

        for attempt in range(5):  # an app reconnects between ending its session and the copy
            self._end_sessions(conn, source)
            try:
                conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {} OWNER {}").format(
                    sql.Identifier(target), sql.Identifier(source), sql.Identifier(self.database.databaseUser)))
                return
            except Exception as exc:
                if "is being accessed by other users" not in str(exc) or attempt == 4:
                    raise DatabaseCommandFailed(f"copying {source} to {target} failed: {exc}") from None
                time.sleep(0.2)

    # The database is replaced in steps that each leave a whole database under a known name: a new
    # one is made (and loaded) as NEW, the old one is renamed to OLD, NEW takes the name, OLD goes.
    # ``repair`` finishes or undoes a replacement a crash stopped half-way. The temporary names are
    # short (a database name may already be 63 characters, PostgreSQL's limit).
    @property
    def _new_name(self) -> str:
        return f"rl_new_{self.database.id.removeprefix('dpg-')[:20]}"

    @property
    def _old_name(self) -> str:
        return f"rl_old_{self.database.id.removeprefix('dpg-')[:20]}"

    def _exists(self, conn, name: str) -> bool:
        return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is not None

    def repair(self) -> str | None:
        """After a crash mid-replacement: the database back under its name. Says what it did."""
        from psycopg import sql

        name = self.database.databaseName
        with self.connect("postgres") as conn:
            if self._exists(conn, name):
                if self._exists(conn, self._old_name):
                    conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(self._old_name)))
                return None
            for spare in (self._new_name, self._old_name):  # NEW was whole once OLD was renamed
                if self._exists(conn, spare):
                    conn.execute(sql.SQL("ALTER DATABASE {} RENAME TO {}").format(sql.Identifier(spare),
                                                                                 sql.Identifier(name)))
                    return f"database {name} was put back from {spare} (a replacement had stopped half-way)"
        return None

    def _make_fresh(self, template: str | None = None) -> str:
        from psycopg import sql

        self.repair()
        fresh = self._new_name
        self._drop(fresh)  # one a failed load left
        with self.connect("postgres") as conn:
            if template:
                self._copy(conn, template, fresh)
            else:
                conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(
                    sql.Identifier(fresh), sql.Identifier(self.database.databaseUser)))
        return fresh

    def _drop(self, dbname: str) -> None:
        from psycopg import sql

        with self.connect("postgres") as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname)))

    def _swap(self, fresh: str) -> None:
        from psycopg import sql

        name, old = sql.Identifier(self.database.databaseName), sql.Identifier(self._old_name)
        with self.connect("postgres") as conn:
            self._end_sessions(conn, self.database.databaseName)
            conn.execute(sql.SQL("ALTER DATABASE {} RENAME TO {}").format(name, old))
            conn.execute(sql.SQL("ALTER DATABASE {} RENAME TO {}").format(sql.Identifier(fresh), name))
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(old))

    @contextlib.contextmanager
    def busy(self):
        """This database to this operation alone; psycopg's errors said as render-local's."""
        lock = database_lock(self.database.id)
        if not lock.acquire(blocking=False):
            raise Conflict(f"database {self.database.name} is busy with a restore, a rollback or a snapshot: "
                           "try again when it is done")
        try:
            with self.said():
                yield
        finally:
            lock.release()

    @contextlib.contextmanager
    def said(self):
        """psycopg's errors (a refused connection, a failed statement) as render-local's, naming the database."""
        try:
            yield
        except Exception as exc:
            if type(exc).__module__.startswith("psycopg"):
                raise DatabaseCommandFailed(f"{self.database.name}: {str(exc).strip()}") from None
            raise

    def snapshot(self, label: str = "") -> Snapshot:
        with self.busy():
            return self._snapshot(label)

    def _snapshot(self, label: str) -> Snapshot:
        from psycopg import sql

        from renderlocal.core.clock import utcnow

        name = f"{SNAPSHOT_PREFIX}{utcnow():%Y%m%d_%H%M%S}_{secrets.token_hex(3)}"  # UTC: no DST repeats
        created = stamp()
        with self.connect("postgres") as conn:
            self._copy(conn, self.database.databaseName, name)
            comment = json.dumps({"label": label, "createdAt": created, "of": self.database.databaseName})
            conn.execute(sql.SQL("COMMENT ON DATABASE {} IS {}").format(sql.Identifier(name), sql.Literal(comment)))
        return next(s for s in self.snapshots() if s.name == name)

    def snapshots(self) -> list[Snapshot]:
        """Newest first."""
        with self.said(), self.connect("postgres") as conn:
            rows = conn.execute(
                "SELECT datname, shobj_description(oid, 'pg_database'), pg_database_size(datname) FROM pg_database "
                "WHERE datname LIKE %s ORDER BY datname DESC", (SNAPSHOT_PREFIX + "%",)).fetchall()
        found = []
        for name, comment, size in rows:
            try:
                meta = json.loads(comment or "{}")
            except ValueError:
                meta = {}
            if meta.get("of", self.database.databaseName) == self.database.databaseName:
                found.append(Snapshot(name, meta.get("label", ""), meta.get("createdAt", ""), size))
        return sorted(found, key=lambda s: (parse_stored(s.createdAt) is not None, s.createdAt, s.name), reverse=True)

    def find_snapshot(self, ref: str | None) -> Snapshot:
        snapshots = self.snapshots()
        if not snapshots:
            raise NotFound(f"database {self.database.name} has no snapshots: databases snapshot {self.database.name}")
        if ref is None:
            return snapshots[0]
        for snapshot in snapshots:
            if ref in (snapshot.name, snapshot.label):
                return snapshot
        raise NotFound(f"no snapshot {ref!r} of {self.database.name}; snapshots: "
                       f"{', '.join(s.name + (f' ({s.label})' if s.label else '') for s in snapshots)}")

    def rollback(self, ref: str | None = None) -> Snapshot:
        """Make the database a copy of the snapshot (the latest unless named); the snapshot stays."""
        with self.busy():
            snapshot = self.find_snapshot(ref)
            self._swap(self._make_fresh(template=snapshot.name))
            return snapshot

    def drop_snapshot(self, ref: str) -> Snapshot:
        from psycopg import sql

        with self.busy():
            snapshot = self.find_snapshot(ref)
            with self.connect("postgres") as conn:
                conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(snapshot.name)))
            return snapshot

    # -- what a rehearsal compares -----------------------------------------------------------
    def schema(self) -> str:
        text = self._run(["pg_dump", "--schema-only", "--no-owner", "--no-privileges", *self._base_args(), "-d",
                          self.database.databaseName], "pg_dump --schema-only").decode("utf-8", "replace")
        # the dump's header names the versions and a random \restrict key (newer pg_dump): not the schema
        return "\n".join(line for line in text.splitlines()
                         if not re.match(r"^(-- Dumped (from|by)|\\(un)?restrict )", line)) + "\n"

    def row_counts(self) -> dict[str, int]:
        """Exact rows per table (schema.table), outside pg_catalog and information_schema."""
        from psycopg import sql

        counts = {}
        with self.connect() as conn:
            tables = conn.execute("SELECT schemaname, tablename FROM pg_tables WHERE schemaname NOT IN "
                                  "('pg_catalog', 'information_schema') ORDER BY 1, 2").fetchall()
            for schema, table in tables:
                query = sql.SQL("SELECT count(*) FROM {}.{}").format(sql.Identifier(schema), sql.Identifier(table))
                counts[f"{schema}.{table}" if schema != "public" else table] = conn.execute(query).fetchone()[0]
        return counts

