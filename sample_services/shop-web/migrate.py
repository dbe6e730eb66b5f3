"""Apply ordered SQL migrations once each, recorded in schema_migrations.

Usage: python migrate.py [--dir DIR]
DATABASE_URL: postgresql://user:password@host[:port]/database (render.yaml's fromDatabase),
or sqlite:///relative.db / sqlite:////absolute/path.db to try it without a server.
Each migration runs in its own transaction: all of it applies, or none of it.
Exit codes: 0 applied or nothing to do, 2 bad DATABASE_URL, 3 a migration failed.
"""

import os
import sys
from pathlib import Path
from urllib.parse import urlsplit

HERE = Path(__file__).resolve().parent
LOCK_ID = 4242  # a pre-deploy and a job migrating at once: one waits for the other


def connect(url: str):
    """A DB-API connection, its error class, its parameter style and where it points (no password)."""
    if url.startswith(("postgresql://", "postgres://")):
        import psycopg

        parts = urlsplit(url)
        db = psycopg.connect(url, autocommit=True)  # transactions are explicit, one per migration
        db.execute("SELECT pg_advisory_lock(%s)", (LOCK_ID,))
        return db, psycopg.Error, "%s", f"{parts.hostname}{parts.path}"
    if url.startswith("sqlite:///"):
        import sqlite3

        path = url[len("sqlite:///"):] or ":memory:"
        return sqlite3.connect(path, isolation_level=None), sqlite3.Error, "?", path
    print(f"DATABASE_URL must start with postgresql:// or sqlite:///, got {url.split('@')[-1]!r}", file=sys.stderr)
    sys.exit(2)


def main(argv: list[str]) -> int:
    folder = HERE / (argv[argv.index("--dir") + 1] if "--dir" in argv else "migrations")
    if "DATABASE_URL" not in os.environ:
        print("DATABASE_URL is not set (render.yaml gives shop-web one with fromDatabase)", file=sys.stderr)
        return 2
    db, Error, mark, where = connect(os.environ["DATABASE_URL"])
    db.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
    done = {row[0] for row in db.execute("SELECT version FROM schema_migrations").fetchall()}
    pending = [f for f in sorted(folder.glob("*.sql")) if f.stem not in done]
    if not pending:
        print(f"no pending migrations ({len(done)} applied) in {where}")
        return 0
    for migration in pending:
        print(f"applying {migration.name} ...", flush=True)
        try:
            db.execute("BEGIN")
            for statement in statements(migration.read_text()):
                db.execute(statement)
            db.execute(f"INSERT INTO schema_migrations VALUES ({mark}, CURRENT_TIMESTAMP)", (migration.stem,))
            db.execute("COMMIT")
        except Error as exc:
            db.execute("ROLLBACK")
            print(f"migration {migration.name} failed: {str(exc).strip()}", file=sys.stderr)
            print("rolled back: the database is as it was before it", file=sys.stderr)
            return 3
        print(f"applied {migration.name}", flush=True)
    print(f"{len(pending)} migration(s) applied to {where}")
    return 0


def statements(sql: str) -> list[str]:
    """The file's statements, without comment lines (the samples keep no ';' inside strings)."""
    text = "\n".join(line for line in sql.splitlines() if not line.lstrip().startswith("--"))
    return [part.strip() for part in text.split(";") if part.strip()]


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
