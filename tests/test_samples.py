"""The bundled samples do what sample_services/README.md promises, on the real engine."""

import json
import subprocess
import sys

import pytest

from renderlocal.core.control import ControlPlane
from tests.conftest import ROOT, SAMPLES

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def plane(engine, tmp_path_factory):
    plane = ControlPlane(tmp_path_factory.mktemp("samples"), SAMPLES, engine=engine)
    plane.sync_services()
    for name in ("shop-web", "queue-worker", "reports", "nightly"):
        build = plane.build(name)
        assert build.status == "succeeded", (name, build.failureReason)
    return plane


def run(plane, service, command, **kwargs):
    job = plane.jobs.wait(plane.create_job(service, command, **kwargs).id, timeout=120)
    return job, [line.message for line in plane.logs.read(job.id)]


def test_migrations_apply_once_then_are_a_no_op(plane):
    job, log = run(plane, "shop-web", "python migrate.py && python migrate.py")
    assert job.status == "succeeded", log
    assert [line for line in log if line.startswith("applied ")] == [
        "applied 001_create_products.sql", "applied 002_create_orders.sql", "applied 003_seed_products.sql"]
    assert log[-1] == "no pending migrations (3 applied) in /tmp/shop.db"


def test_the_broken_migration_fails_with_exit_code_3(plane):
    job, log = run(plane, "shop-web", "python migrate.py --dir migrations_broken")
    assert job.status == "failed" and job.exitCode == 3
    assert job.failureReason["type"] == "nonZeroExit"
    assert "applied 001_create_products.sql" in log
    assert any("migration 002_typo.sql failed" in line for line in log)


def test_the_memory_hog_dies_on_starter_and_succeeds_on_pro(plane):
    starter, _ = run(plane, "queue-worker", "python hog.py 700")
    assert starter.status == "failed" and starter.failureReason["type"] == "oomKilled"
    pro, log = run(plane, "queue-worker", "python hog.py 700", plan_id="plan-srv-010")
    assert pro.status == "succeeded" and log[-1] == "done: held 700 MB"
    assert pro.cost() > 0 and pro.planId == "plan-srv-010"


def test_the_long_job_can_be_canceled(plane):
    import time

    job = plane.create_job("queue-worker", "python long_job.py 60")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and "progress 2/60" not in [l.message for l in plane.logs.read(job.id)]:  # noqa: E741
        time.sleep(0.1)
    plane.jobs.cancel(job.id)
    job = plane.jobs.wait(job.id, timeout=60)
    log = [line.message for line in plane.logs.read(job.id)]
    assert job.status == "canceled" and "canceled: stopping cleanly" in log


def test_fan_out_makes_one_job_per_argument(plane):
    base = [sys.executable, "-m", "renderlocal", "--data-dir", str(plane.data_dir), "--blueprint", str(SAMPLES)]
    result = subprocess.run(base + ["jobs", "create", "queue-worker", "--start-command", "python batch.py",
                                    "--each-arg-from", str(ROOT / "sample_services" / "args.txt"), "--wait", "-o", "json"],
                            capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr
    jobs = json.loads(result.stdout)
    assert sorted(j["startCommand"] for j in jobs) == [
        "python batch.py customers-2026-01", "python batch.py customers-2026-02", "python batch.py customers-2026-03"]
    for item in jobs:
        lines = [line.message for line in plane.logs.read(item["id"])]
        assert lines[0].startswith("processed " + item["startCommand"].split()[-1])


def test_the_native_service_and_the_cron_service_run(plane):
    job, log = run(plane, "reports", "python summarize.py")
    assert job.status == "succeeded" and log[0].endswith("/opt/render/project/src")
    cron, log = run(plane, "nightly", None)
    assert cron.status == "succeeded" and cron.planId == "plan-crn-003"
    assert log[0].startswith("nightly report for ") and cron.cost() > 0
