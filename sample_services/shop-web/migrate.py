"""Apply ordered SQL migrations once each, recorded in schema_migrations.

Usage: python migrate.py [--dir DIR]
DATABASE_URL: sqlite:///relative.db or sqlite:////absolute/path.db
Exit codes: 0 applied or nothing to do, 2 bad DATABASE_URL, 3 a migration failed.
"""

import os
import sqlite3
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def database_path(url: str) -> str:
    prefix = "sqlite:///"
    if not url.startswith(prefix):
        print(f"DATABASE_URL must start with {prefix}, got {url!r}", file=sys.stderr)
        sys.exit(2)
    return url[len(prefix):] or ":memory:"


def main(argv: list[str]) -> int:
    folder = HERE / (argv[argv.index("--dir") + 1] if "--dir" in argv else "migrations")
    path = database_path(os.environ.get("DATABASE_URL", "sqlite:////tmp/shop.db"))
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
    done = {row[0] for row in db.execute("SELECT version FROM schema_migrations")}
    pending = [f for f in sorted(folder.glob("*.sql")) if f.stem not in done]
    if not pending:
        print(f"no pending migrations ({len(done)} applied) in {path}")
        return 0
    for migration in pending:
        print(f"applying {migration.name} ...", flush=True)
        try:
            with db:  # one transaction per migration: all of it or none
                db.executescript("BEGIN;" + migration.read_text())
                db.execute("INSERT INTO schema_migrations VALUES (?, datetime('now'))", (migration.stem,))
        except sqlite3.Error as exc:
            print(f"migration {migration.name} failed: {exc}", file=sys.stderr)
            return 3
        print(f"applied {migration.name}", flush=True)
    print(f"{len(pending)} migration(s) applied to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
