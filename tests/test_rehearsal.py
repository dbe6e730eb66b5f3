"""Migration rehearsals and a database's data (issue 22), on the real engine with the samples'
shop-web and shop-db: restore a dump, rehearse the slow migration, see its ACCESS EXCLUSIVE lock,
the schema diff and row counts, roll back to exactly the schema before."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys

import pytest

from renderlocal.core.errors import Conflict, InvalidInput, NotFound
from renderlocal.executor.control import ControlPlane
from renderlocal.executor.rehearsals import lock_mode_name
from tests.conftest import ROOT, SAMPLES, wait_until

pytestmark = pytest.mark.docker

SLOW = "python migrate.py --dir migrations_slow"


@pytest.fixture(scope="module")
def plane(engine, tmp_path_factory):
    from renderlocal.api.server import start_in_thread

    plane = ControlPlane(tmp_path_factory.mktemp("rehearsal"), SAMPLES, engine=engine).start(loop=False)
    api = start_in_thread(plane)  # the CLI's commands ask this process
    build = plane.build("shop-web", wait=True)
    assert build.status == "succeeded", build.failureReason
    plane.datastores.ensure([plane.state.get_database("shop-db").id])
    migrated = plane.jobs.wait(plane.create_job("shop-web", "python migrate.py").id, timeout=120)
    assert migrated.status == "succeeded"
    yield plane
    api.stop()
    plane.close()


def cli(plane, *args, stdin: str | None = None):
    base = [sys.executable, "-m", "renderlocal", "--data-dir", str(plane.data_dir), "--blueprint", str(SAMPLES)]
    return subprocess.run(base + list(args), capture_output=True, text=True, timeout=300, cwd=ROOT, input=stdin)


def finished(plane, rehearsal_id: str) -> dict:
    return wait_until(lambda: (lambda d: d if d["status"] in ("finished", "failed") else None)(
        plane.rehearsals.get(rehearsal_id)), 240)


def test_lock_modes_read_as_postgres_documents_them():
    assert lock_mode_name("AccessExclusiveLock") == "ACCESS EXCLUSIVE"
    assert lock_mode_name("ShareUpdateExclusiveLock") == "SHARE UPDATE EXCLUSIVE"
    assert lock_mode_name("RowShareLock") == "ROW SHARE"


def test_the_slow_migration_shows_its_lock_diff_and_counts_and_rolls_back_to_the_same_schema(plane):
    admin = plane.postgres_admin("shop-db")
    schema_before, counts_before = admin.schema(), admin.row_counts()
    assert counts_before["orders"] == 0 and counts_before["schema_migrations"] == 3
    started = plane.rehearse("shop-web", SLOW)
    with pytest.raises(Conflict, match="one at a time"):  # a second one would snapshot and roll back the first's work
        plane.rehearse("shop-web", "true")
    with pytest.raises(Conflict):  # nothing to decide before it has run
        plane.decide_rehearsal(started["id"], keep=False)
    doc = finished(plane, started["id"])
    assert doc["status"] == "finished", doc.get("problem")
    report = doc["report"]
    assert report["outcome"] == "succeeded" and report["seconds"] >= 1 and report["costUSD"]
    assert "-    quantity integer NOT NULL\n+    quantity bigint NOT NULL\n" in report["schemaDiff"]
    counts = {row["table"]: (row["before"], row["after"]) for row in report["rowCounts"]}
    assert counts == {"orders": (0, 400_000), "products": (2, 2), "schema_migrations": (3, 5)}
    exclusive = [lock for lock in report["locks"] if lock["mode"] == "ACCESS EXCLUSIVE" and lock["table"] == "orders"]
    assert exclusive and exclusive[0]["seconds"] > 0, report["locks"]
    assert admin.row_counts()["orders"] == 400_000  # until it is decided, the result stays

    decided = plane.decide_rehearsal(doc["id"], keep=False)
    assert decided["decision"] == "rolledBack"
    assert admin.schema() == schema_before and admin.row_counts() == counts_before
    with pytest.raises(Conflict, match="once"):
        plane.decide_rehearsal(doc["id"], keep=True)
    with pytest.raises(NotFound, match="unknown rehearsal"):
        plane.rehearsals.get("rhs-00000000000000000000")
    with pytest.raises(InvalidInput, match="no database in its env"):
        plane.rehearse("queue-worker", "true")


def test_the_cli_rehearses_and_keeps_or_rolls_back_as_asked(plane):
    kept = cli(plane, "rehearse", "shop-web", "--start-command", "python migrate.py --dir migrations_broken", "--keep")
    assert kept.returncode == 1, kept.stderr  # the broken migration fails: exit 1, the report still printed
    assert kept.stdout.startswith("outcome: failed (exited with code 3)") and "schema: unchanged" in kept.stdout
    assert "kept the result" in kept.stderr
    as_json = cli(plane, "rehearse", "shop-web", "--start-command", "true", "--rollback", "-o", "json")
    assert as_json.returncode == 0, as_json.stderr
    decided = json.loads(as_json.stdout)
    assert decided["report"]["schemaDiff"] == "" and decided["decision"] == "rolledBack"


def test_dump_restore_snapshots_and_rollback_from_the_cli(plane, tmp_path):
    admin = plane.postgres_admin("shop-db")
    dump = tmp_path / "shop.dump"
    dumped = cli(plane, "databases", "dump", "shop-db", str(dump))
    assert dumped.returncode == 0 and dump.read_bytes()[:5] == b"PGDMP", dumped.stderr
    with admin.connect() as conn:
        conn.execute("DELETE FROM products WHERE id = 2")
    restored = cli(plane, "databases", "restore", "shop-db", str(dump), "--confirm")
    assert restored.returncode == 0, restored.stderr
    assert "from a custom dump" in restored.stdout and admin.row_counts()["products"] == 2

    plain = tmp_path / "from-render.sql"  # as pg_dump writes one against Render: roles this server lacks
    plain.write_text("CREATE TABLE public.customers (id integer PRIMARY KEY, email text NOT NULL);\n"
                     "ALTER TABLE public.customers OWNER TO shop_db_user_on_render;\n"
                     "COPY public.customers (id, email) FROM stdin;\n1\ta@example.com\n2\tb@example.com\n"
                     "GRANT access TO everyone;\tc@example.com\n\\.\n"  # a data line that looks like a statement
                     "GRANT SELECT ON public.customers TO readonly_on_render;\n")
    plain.write_text(plain.read_text().replace("GRANT access TO everyone;\tc@", "3\tGRANT access TO everyone; c@"))
    loaded = cli(plane, "databases", "restore", "shop-db", str(plain), "--confirm", "-o", "json")
    assert loaded.returncode == 0, loaded.stderr
    assert admin.row_counts() == {"customers": 3}  # the database was made anew from the file, every row of it
    assert json.loads(loaded.stdout)["snapshotBefore"].startswith("rl_snap_")  # a restore can be undone

    made = cli(plane, "databases", "snapshot", "shop-db", "--label", "three-customers", "-o", "json")
    assert made.returncode == 0, made.stderr
    with admin.connect() as conn:
        conn.execute("DROP TABLE customers")
    listed = cli(plane, "databases", "snapshots", "shop-db")
    assert "three-customers" in listed.stdout
    back = cli(plane, "databases", "rollback", "shop-db", "three-customers", "--confirm")
    assert back.returncode == 0 and "rolled shop-db back to" in back.stdout, back.stderr
    assert admin.row_counts() == {"customers": 3}

    garbage = tmp_path / "garbage.sql"
    garbage.write_text("this is not sql;\n")
    zipped = tmp_path / "dump.sql.gz"
    zipped.write_bytes(gzip.compress(plain.read_bytes()))
    (tmp_path / "empty.sql").write_text("")
    for args, words in ((["rollback", "shop-db", "nope", "--confirm"], "no snapshot 'nope' of shop-db; snapshots:"),
                        (["restore", "shop-db", str(garbage), "--confirm"], "psql failed: "),
                        (["restore", "shop-db", str(zipped), "--confirm"], "is gzip-compressed: gunzip it first"),
                        (["restore", "shop-db", str(tmp_path / "empty.sql"), "--confirm"], "is empty"),
                        (["dump", "shop-db", str(tmp_path / "no" / "such" / "x.dump")], "no folder"),
                        (["dump", "shop-queue", str(tmp_path / "x")], "is a Key Value")):
        refused = cli(plane, "databases", *args)
        assert refused.returncode != 0 and words in refused.stderr and "Traceback" not in refused.stderr, refused.stderr
    assert admin.row_counts() == {"customers": 3}  # a refused or failed restore left the database as it was
