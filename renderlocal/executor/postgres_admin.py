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

import json
import re
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from renderlocal.core.errors import Conflict, InvalidInput, NotFound, RenderLocalError
from renderlocal.core.models import Database, stamp
from renderlocal.executor.datastores import container_name

SNAPSHOT_PREFIX = "rl_snap_"
CUSTOM_FORMAT_MAGIC = b"PGDMP"
COPY_CHUNK = 1 << 20


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
        inside = f"/tmp/render-local-dump-{int(time.time() * 1000)}"
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
                    with open(partial, "wb") as out:
                        while chunk := source.read(COPY_CHUNK):
                            out.write(chunk)
                    partial.replace(target)  # a file named FILE is always a whole dump
        finally:
            self._run(["rm", "-f", inside], "removing the dump's copy")
        return target.stat().st_size

    def restore(self, source: Path, progress=lambda text: None) -> dict:
        """Replace the database's contents with a ``pg_dump`` file (custom format or plain SQL).

        The database is made anew (its sessions ended), then the file is loaded as its owner;
        ownership and grants of the dump's roles, which this server lacks, are left out."""
        if not source.is_file():
            raise InvalidInput(f"no dump file at {source}")
        with open(source, "rb") as handle:
            custom = handle.read(5) == CUSTOM_FORMAT_MAGIC
        size = source.stat().st_size
        progress(f"copying {size:,} bytes into {self.database.name}'s container")
        inside = f"/tmp/render-local-restore-{int(time.time() * 1000)}"
        self._put(source, inside)
        try:
            progress(f"loading the {'custom-format' if custom else 'plain SQL'} dump into a new database")
            fresh = self._make_fresh()
            try:
                db = ["-d", fresh]
                if custom:
                    self._run(["pg_restore", *self._base_args(), *db, "--no-owner", "--no-privileges",
                               "--exit-on-error", inside], "pg_restore")
                else:
                    self._run(["psql", *self._base_args(), *db, "-v", "ON_ERROR_STOP=1", "-q", "-f",
                               self._plain_without_owners(inside)], "psql")
            except BaseException:
                self._drop(fresh)  # the database stays as it was
                raise
            progress("putting it in place of the old one")
            self._swap(fresh)
        finally:
            self._run(["sh", "-c", f"rm -f {inside} {inside}.sql"], "removing the dump's copy")
        counts = self.row_counts()
        progress(f"restored: {len(counts)} tables, {sum(counts.values()):,} rows")
        return {"format": "custom" if custom else "plain", "bytes": size, "tables": len(counts),
                "rows": sum(counts.values())}

    def _plain_without_owners(self, inside: str) -> str:
        """A plain dump's copy without ``OWNER TO`` and grants of roles this server does not have."""
        script = (f"grep -v -E '^(ALTER .* OWNER TO |GRANT |REVOKE |SET default_table_access_method)' {inside} "
                  f"> {inside}.sql")
        self._run(["sh", "-c", script], "reading the dump")
        return f"{inside}.sql"

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

    # The database is replaced in two steps: a new one is made (and loaded) under another name,
    # then swapped in; a failure before the swap leaves the old one as it was.
    def _make_fresh(self, template: str | None = None) -> str:
        from psycopg import sql

        fresh = f"{self.database.databaseName}__rl_new"
        self._drop(fresh)  # one a crash left half-made
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

        name = self.database.databaseName
        with self.connect("postgres") as conn:
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
            conn.execute(sql.SQL("ALTER DATABASE {} RENAME TO {}").format(sql.Identifier(fresh), sql.Identifier(name)))

    def snapshot(self, label: str = "") -> Snapshot:
        from psycopg import sql

        name = f"{SNAPSHOT_PREFIX}{time.strftime('%Y%m%d_%H%M%S')}_{int(time.time() * 1000) % 1000:03d}"
        created = stamp()
        with self.connect("postgres") as conn:
            self._copy(conn, self.database.databaseName, name)
            comment = json.dumps({"label": label, "createdAt": created, "of": self.database.databaseName})
            conn.execute(sql.SQL("COMMENT ON DATABASE {} IS {}").format(sql.Identifier(name), sql.Literal(comment)))
        return next(s for s in self.snapshots() if s.name == name)

    def snapshots(self) -> list[Snapshot]:
        """Newest first."""
        with self.connect("postgres") as conn:
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
        return found

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
        snapshot = self.find_snapshot(ref)
        self._swap(self._make_fresh(template=snapshot.name))
        return snapshot

    def drop_snapshot(self, ref: str) -> Snapshot:
        from psycopg import sql

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

