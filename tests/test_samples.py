"""The bundled samples do what sample_services/README.md promises, on the real engine."""

import json
import subprocess
import sys
import time

import pytest

from renderlocal.executor.control import ControlPlane
from tests.conftest import ROOT, SAMPLES, wait_until

pytestmark = pytest.mark.docker

ARGS = ROOT / "sample_services" / "args.txt"


@pytest.fixture(scope="module")
def plane(engine, tmp_path_factory):
    from renderlocal.api.server import start_in_thread

    plane = ControlPlane(tmp_path_factory.mktemp("samples"), SAMPLES, engine=engine).start(loop=False)
    api = start_in_thread(plane)  # the CLI's commands ask this process
    assert plane.warnings == []
    for name in ("shop-web", "queue-worker", "reports", "nightly"):
        build = plane.build(name, wait=True)
        assert build.status == "succeeded", (name, build.failureReason)
    yield plane
    api.stop()
    plane.close()


def run(plane, service, command, **kwargs):
    job = plane.jobs.wait(plane.create_job(service, command, **kwargs).id, timeout=120)
    return job, [line.message for line in plane.logs.read(job.id)]


def cli(plane, *args):
    base = [sys.executable, "-m", "renderlocal", "--data-dir", str(plane.data_dir), "--blueprint", str(SAMPLES)]
    return subprocess.run(base + list(args), capture_output=True, text=True, timeout=180, cwd=ROOT)


def test_the_services_keep_their_types_runtimes_and_plans(plane):
    services = {s.name: s for s in plane.list_services()}
    assert {name: (s.type, s.runtime) for name, s in services.items()} == {
        "shop-web": ("web", "docker"), "queue-worker": ("worker", "docker"),
        "reports": ("pserv", "python"), "nightly": ("cron", "docker")}
    assert services["reports"].planId == "plan-srv-008"
    web, worker = services["shop-web"].envVars, services["queue-worker"].envVars
    database, queue = plane.state.get_database("shop-db"), plane.state.get_key_value("shop-queue")
    assert web["DATABASE_URL"] == database.connection_info(plane.state.password_of(database.id))["internalConnectionString"]
    assert web["DATABASE_URL"].startswith(f"postgresql://{database.databaseUser}:") and f"@{database.id}/" in web["DATABASE_URL"]
    assert worker["QUEUE_URL"] == f"redis://{queue.id}:6379" and queue.maxmemoryPolicy == "noeviction"
    assert len(web["SECRET_KEY"]) >= 32
    assert web["LOG_LEVEL"] == "info" == worker["LOG_LEVEL"]


def query(plane, sql: str) -> list[str]:
    """Each row of ``sql`` run on shop-db by a shop-web job, one line per row."""
    job, log = run(plane, "shop-web", "python -c \"import os, psycopg; [print(*row) for row in psycopg.connect("
                   "os.environ['DATABASE_URL'], autocommit=True).execute(os.environ['SQL']).fetchall()]\"", env=[f"SQL={sql}"])
    assert job.status == "succeeded", log
    return log


def test_migrations_apply_once_then_are_a_no_op_and_a_broken_one_changes_nothing(plane):
    first, log = run(plane, "shop-web", "python migrate.py")
    assert first.status == "succeeded" and first.exitCode == 0, log
    assert [line for line in log if line.startswith("applied ")] == [
        "applied 001_create_products.sql", "applied 002_create_orders.sql", "applied 003_seed_products.sql"]
    database = plane.state.get_database("shop-db")
    assert log[-1] == f"3 migration(s) applied to {database.id}/{database.databaseName}"
    second, log = run(plane, "shop-web", "python migrate.py")  # a new container: the database kept them
    assert second.status == "succeeded" and log == [f"no pending migrations (3 applied) in {database.id}/{database.databaseName}"]

    broken, log = run(plane, "shop-web", "python migrate.py --dir migrations_broken")
    assert broken.status == "failed" and broken.exitCode == 3 and broken.failureReason["type"] == "nonZeroExit"
    assert log[0] == "applying 004_add_stock.sql ..."
    assert any("migration 004_add_stock.sql failed" in line and "TABEL" in line for line in log), log
    # its first statement (ADD COLUMN stock) worked, then rolled back with the rest: the schema is as before
    assert query(plane, "SELECT column_name FROM information_schema.columns WHERE table_name = 'products' "
                        "ORDER BY column_name") == ["id", "name", "price_cents"]
    again, log = run(plane, "shop-web", "python migrate.py")
    assert log == [f"no pending migrations (3 applied) in {database.id}/{database.databaseName}"]


def test_the_memory_hog_dies_on_starter_and_succeeds_on_standard(plane):
    starter, _ = run(plane, "queue-worker", "python hog.py 700")
    assert starter.planId == "plan-srv-006"
    assert starter.status == "failed" and starter.failureReason["type"] == "oomKilled"
    standard, log = run(plane, "queue-worker", "python hog.py 700", plan_id="plan-srv-008")
    assert standard.status == "succeeded", log
    assert "allocated 500 MB" in log and log[-1] == "done: held 700 MB"
    assert standard.planId == "plan-srv-008" and standard.cost() > 0


def test_the_long_job_can_be_canceled(plane):
    job = plane.create_job("queue-worker", "python long_job.py 60")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and "progress 2/60" not in [l.message for l in plane.logs.read(job.id)]:  # noqa: E741
        time.sleep(0.1)
    plane.cancel_job(job.id)
    job = plane.jobs.wait(job.id, timeout=60)
    log = [line.message for line in plane.logs.read(job.id)]
    assert job.status == "canceled" and job.exitCode == 143, (job.status, job.exitCode)
    assert "progress 1/60" in log and "canceled: stopping cleanly" in log and "finished" not in log


def test_fan_out_makes_one_job_per_argument(plane):
    result = cli(plane, "jobs", "create", "queue-worker", "--start-command", "python batch.py",
                 "--each-arg-from", str(ARGS), "--wait", "-o", "json")
    assert result.returncode == 0, result.stderr
    args = [line.strip() for line in ARGS.read_text().splitlines() if line.strip()]
    expected = sorted(f"python batch.py {arg}" for arg in args)
    assert sorted(j["startCommand"] for j in json.loads(result.stdout)) == expected
    listed = cli(plane, "jobs", "list", "queue-worker", "-o", "json")
    assert listed.returncode == 0, listed.stderr
    batches = [job for job in json.loads(listed.stdout) if job["startCommand"].startswith("python batch.py")]  # bare jobs, as Render's CLI
    assert sorted(j["startCommand"] for j in batches) == expected
    for job in batches:
        assert job["status"] == "succeeded"
        lines = [line.message for line in plane.logs.read(job["id"])]
        assert lines[0].startswith("processed " + job["startCommand"].split()[-1] + " -> ")


def test_the_native_service_builds_and_runs(plane):
    job, log = run(plane, "reports", "python summarize.py")
    assert job.status == "succeeded" and log[0].endswith("/opt/render/project/src"), log


def test_the_cron_service_runs_billed_per_minute(plane):
    cron, log = run(plane, "nightly", None)
    assert cron.status == "succeeded" and cron.planId == "plan-crn-003", log
    assert log[0].startswith("nightly report for ") and cron.cost() > 0
    bigger, _ = run(plane, "nightly", "sh report.sh", plan_id="plan-crn-005")
    assert bigger.status == "succeeded" and bigger.planId == "plan-crn-005" and bigger.cost() > 0


def test_the_web_service_shows_what_jobs_wrote_and_the_worker_takes_orders_off_key_value(plane):
    import urllib.request

    def page() -> str:
        with urllib.request.urlopen(plane.get_service("shop-web").url, timeout=5) as response:
            return response.read().decode()

    try:
        for name in ("shop-web", "reports", "queue-worker"):
            deploy = plane.deploy(name, wait=True)
            assert deploy.status == "live", (name, deploy.failureReason)
            if name == "shop-web":  # its pre-deploy command migrated (or found nothing pending)
                assert [line.message for line in plane.logs.read(deploy.id)][-1].startswith(("3 migration(s) applied",
                                                                                            "no pending migrations"))
        assert page() == "shop-web is up\nteapot $25.00\ncup $8.00\n"
        query(plane, "INSERT INTO products (id, name, price_cents) VALUES (3, 'saucer', 450) RETURNING id")
        assert page().endswith("cup $8.00\nsaucer $4.50\n")  # a job's write, seen by the running service

        job, log = run(plane, "queue-worker", "python -c \"import os, urllib.request; "
                       "print(urllib.request.urlopen('http://' + os.environ['REPORTS_URL']).status)\"")
        assert job.status == "succeeded" and log == ["200"], log

        job, log = run(plane, "queue-worker", "python enqueue.py order-1 order-2")
        assert job.status == "succeeded" and log[0].startswith("queued 2 order(s)"), log
        instance = plane.deploys.live(plane.get_service("queue-worker")).instances[0]["id"]
        wait_until(lambda: {"processed order order-1", "processed order order-2"}
                   <= {line.message for line in plane.logs.read(instance)})
        job, log = run(plane, "queue-worker", "python enqueue.py")
        assert log == ["queued 0 order(s); 0 waiting, 2 processed so far"]
    finally:
        plane.down()
