"""Snapshots of every screen of the terminal app, on fixed data and a frozen clock.

The data (services, builds, jobs and their logs) is written straight into a
control plane's store in a temporary data dir; no Docker engine is involved
(``live=False`` turns off crash recovery and watch mode). Times show in UTC
(TZ is pinned) and text cursors do not blink, so every run draws the same.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from renderlocal.executor.control import ControlPlane
from renderlocal.core.models import Build, Database, Deploy, Job, KeyValue, Service, stamp

NOW = datetime(2025, 3, 14, 15, 30, 0, tzinfo=timezone.utc)
SIZE = (160, 45)
SIZES = {"160x45": SIZE, "80x24": (80, 24)}  # a wide terminal and the smallest usual one: every screen at both


def at(**delta) -> datetime:
    return NOW - timedelta(**delta)


def sid(prefix: str, word: str) -> str:
    """A fixed, valid-looking id: prefix, dash, 20 chars of [0-9a-z]."""
    return f"{prefix}-{(word + '0' * 20)[:20]}"


SHOP, WORKER, REPORTS, NIGHTLY = sid("srv", "shopweb"), sid("srv", "queueworker"), sid("srv", "reports"), sid("crn", "nightly")
DEPLOY_OLD, DEPLOY_LIVE = sid("dep", "shopold"), sid("dep", "shoplive")
JOB_OK, JOB_FAILED, JOB_OOM = sid("job", "migrate"), sid("job", "workeronce"), sid("job", "reportoom")
JOB_RUNNING, JOB_CANCELED, JOB_PENDING = sid("job", "reindex"), sid("job", "nightlycancel"), sid("job", "echohi")
SHOP_DB, ANALYTICS_DB, QUEUE_KV = sid("dpg", "shopdb") + "-a", sid("dpg", "analytics") + "-a", sid("red", "shopqueue")

BLUEPRINT = """\
services:
  - type: web
    name: shop-web
    runtime: docker
    plan: starter
    rootDir: shop-web
    dockerCommand: python server.py
"""


def _service(id, name, type, runtime, plan, command, last=None, latest=None, watch=False, **extra) -> dict:
    doc = Service(
        id=id, name=name, type=type, runtime=runtime, planId=plan, rootDir=f"/srv/{name}",
        createdAt=stamp(at(days=40)), updatedAt=stamp(at(days=1)),
        dockerCommand=command if runtime == "docker" else None,
        startCommand=command if runtime != "docker" else None,
        watch=watch, lastSuccessfulBuildId=last, latestBuildId=latest or last,
        envVars={"LOG_LEVEL": "info", "DATABASE_URL": "sqlite:////tmp/shop.db"}, **extra,
    ).to_doc()
    return doc


def _build(id, service, status, created, took=None, reason=None) -> dict:
    return Build(
        id=id, serviceId=service, status=status, createdAt=stamp(created), startedAt=stamp(created),
        finishedAt=stamp(created + timedelta(seconds=took)) if took is not None else None,
        image=f"render-local/{service}:{id}", failureReason=reason,
    ).to_doc()


def _job(id, service, command, plan, created, queued=None, ran=None, status="succeeded", exit_code=None,
         reason=None, overrides=None, cancel_after=None) -> dict:
    started = created + timedelta(seconds=queued) if queued is not None else None
    finished = started + timedelta(seconds=ran) if (started is not None and ran is not None) else None
    events = [{"at": stamp(created), "status": "pending", "message": "created"}]
    if started:
        events.append({"at": stamp(started), "status": "running", "message": "started"})
    cancel = None
    if cancel_after is not None:
        cancel = stamp(started + timedelta(seconds=cancel_after))
        events.append({"at": cancel, "status": "running", "message": "cancel requested"})
    if finished:
        events.append({"at": stamp(finished), "status": status, "message": (reason or {}).get("message", status)})
    job = Job(
        id=id, serviceId=service, startCommand=command, planId=plan, createdAt=stamp(created),
        buildId=sid("bld", "x" + service[4:10]), image="render-local/x:y", status=status,
        startedAt=stamp(started) if started else None, finishedAt=stamp(finished) if finished else None,
        envOverrides=overrides or {}, exitCode=exit_code, failureReason=reason, cancelRequestedAt=cancel,
        containerId="c0ffee" if started else None, logsComplete=status in ("succeeded", "failed", "canceled"),
        events=events,
    )
    return job.to_doc()


def _ts(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f") + "000Z"


def _log(plane, resource_id, start: datetime, lines) -> None:
    writer = plane.logs.writer(resource_id)
    for n, item in enumerate(lines):
        stream, message = item if isinstance(item, tuple) else ("stdout", item)
        writer.write(_ts(start + timedelta(milliseconds=250 * n)), stream, message)
    writer.close()


def make_plane(root: Path) -> ControlPlane:
    """A control plane holding every kind of service, build and job, at NOW."""
    project = root / "project"
    project.mkdir(parents=True, exist_ok=True)
    (project / "render.yaml").write_text(BLUEPRINT)
    plane = ControlPlane(root / "data", project / "render.yaml")
    builds = [
        _build(sid("bld", "shop1"), SHOP, "succeeded", at(hours=2, minutes=10), took=48),
        _build(sid("bld", "worker1"), WORKER, "succeeded", at(days=1, hours=3), took=61),
        _build(sid("bld", "worker2"), WORKER, "failed", at(minutes=25), took=12, reason={
            "message": "The command '/bin/sh -c pip install -r requirements.txt' returned a non-zero code: 1",
            "step": "Step 3/4 : RUN pip install -r requirements.txt"}),
        _build(sid("bld", "reports1"), REPORTS, "succeeded", at(days=3), took=30),
        _build(sid("bld", "reports2"), REPORTS, "building", at(seconds=40)),
    ]
    for doc in builds:
        plane.state.store.insert("builds", doc)
    deploys = [
        Deploy(id=DEPLOY_OLD, serviceId=SHOP, buildId=sid("bld", "shop1"), image="render-local/x:y", status="deactivated",
               createdAt=stamp(at(days=1)), trigger="blueprint_sync", startedAt=stamp(at(days=1)),
               finishedAt=stamp(at(hours=2, minutes=8)),
               instances=[{"id": SHOP + "-a1b2c", "containerId": "c0ffee", "startedAt": stamp(at(days=1)),
                           "stoppedAt": stamp(at(hours=2, minutes=8))}],
               events=[{"at": stamp(at(days=1)), "status": "created", "message": "created (blueprint_sync)"},
                       {"at": stamp(at(days=1) - timedelta(seconds=-1)), "status": "update_in_progress",
                        "message": "starting 1 instance(s)"},
                       {"at": stamp(at(days=1) - timedelta(seconds=-3)), "status": "live", "message": "live"},
                       {"at": stamp(at(hours=2, minutes=8)), "status": "deactivated",
                        "message": f"replaced by {DEPLOY_LIVE}"}]),
        Deploy(id=DEPLOY_LIVE, serviceId=SHOP, buildId=sid("bld", "shop1"), image="render-local/x:y", status="live",
               createdAt=stamp(at(hours=2, minutes=9)), trigger="manual", startedAt=stamp(at(hours=2, minutes=9)),
               liveAt=stamp(at(hours=2, minutes=8)), finishedAt=stamp(at(hours=2, minutes=8)),
               instances=[{"id": SHOP + "-d3e4f", "containerId": "c0ffee", "startedAt": stamp(at(hours=2, minutes=9)),
                           "stoppedAt": None}],
               events=[{"at": stamp(at(hours=2, minutes=9)), "status": "created", "message": "created (manual)"},
                       {"at": stamp(at(hours=2, minutes=9) - timedelta(seconds=-1)), "status": "update_in_progress",
                        "message": "starting 1 instance(s)"},
                       {"at": stamp(at(hours=2, minutes=8)), "status": "live", "message": "live"}]),
    ]
    for deploy in deploys:
        plane.state.store.insert("deploys", deploy.to_doc())
    services = [
        _service(SHOP, "shop-web", "web", "docker", "plan-srv-006", "python server.py", last=sid("bld", "shop1"),
                 liveDeployId=DEPLOY_LIVE, proxyPort=41873, healthCheckPath="/healthz", internalHost="shop-web-shop"),
        _service(WORKER, "queue-worker", "worker", "docker", "plan-srv-008", "python worker.py",
                 last=sid("bld", "worker1"), latest=sid("bld", "worker2"), watch=True, suspended=True),
        _service(REPORTS, "reports", "pserv", "python", "plan-srv-010", "python server.py",
                 last=sid("bld", "reports1"), latest=sid("bld", "reports2")),
        _service(NIGHTLY, "nightly", "cron", "docker", "plan-crn-003", "sh report.sh", schedule="0 3 * * *"),
    ]
    for doc in services:
        plane.state.store.insert("services", doc)
    created, updated = stamp(at(days=40)), stamp(at(hours=2))
    plane.state.store.insert("databases", Database(
        id=SHOP_DB, name="shop-db", databaseName="shop_db_k3v9", databaseUser="shop_db_k3v9_user", plan="basic_256mb",
        memoryMB=256, version="18", createdAt=created, updatedAt=updated, status="available", hostPort=54329,
        image="postgres:15").to_doc())
    plane.state.store.insert("databases", Database(
        id=ANALYTICS_DB, name="analytics", databaseName="analytics", databaseUser="analyst", plan="basic_1gb",
        memoryMB=1024, version="15", createdAt=created, updatedAt=updated, status="unavailable",
        statusMessage="stopped by down: up starts it again", hostPort=54330, image="postgres:15").to_doc())
    plane.state.store.insert("keyvalues", KeyValue(
        id=QUEUE_KV, name="shop-queue", plan="starter", memoryMB=256, maxmemoryPolicy="noeviction", createdAt=created,
        updatedAt=updated, status="available", hostPort=63790, image="redis:7").to_doc())
    for store_id in (SHOP_DB, ANALYTICS_DB):  # fixed passwords: `p` reveals them in a snapshot
        (root / "data" / "secrets").mkdir(mode=0o700, exist_ok=True)
        (root / "data" / "secrets" / store_id).write_text(f"pw-{store_id[4:12]}")
    _log(plane, SHOP + "-d3e4f", at(hours=2, minutes=9), [
        "listening on 10000", '172.20.0.1 - - "GET /healthz HTTP/1.1" 200 -', '172.20.0.1 - - "GET / HTTP/1.1" 200 -',
        ("stderr", '172.20.0.1 - - "GET /favicon.ico HTTP/1.1" 404 -'),
    ])
    _log(plane, sid("bld", "worker2"), at(minutes=25), [
        "Step 1/4 : FROM python:3.11-slim", " ---> 3f1c2a9b7d21", "Step 2/4 : COPY . /app", " ---> 91b0e3c4d5f6",
        "Step 3/4 : RUN pip install -r requirements.txt", " ---> Running in 5e6f7a8b9c0d",
        ("stderr", "ERROR: Could not find a version that satisfies the requirement celery==99.0"),
        ("stderr", "The command '/bin/sh -c pip install -r requirements.txt' returned a non-zero code: 1"),
    ])

    jobs = [
        _job(JOB_OK, SHOP, "python manage.py migrate", "plan-srv-006", at(hours=1, minutes=30), queued=1.4, ran=208),
        _job(JOB_FAILED, WORKER, "python worker.py --once --queue emails", "plan-srv-008", at(hours=1), queued=0.8,
             ran=45, status="failed", exit_code=2,
             reason={"type": "nonZeroExit", "exitCode": 2, "message": "exited with code 2"}, overrides={"QUEUE": "emails"}),
        _job(JOB_OOM, REPORTS, "python build_report.py --month 2025-02", "plan-srv-006", at(minutes=50), queued=2.1,
             ran=94, status="failed", exit_code=137,
             reason={"type": "oomKilled", "memoryLimitMB": 512,
                     "message": "out of memory: killed at the Starter plan's 512 MB limit"}),
        _job(JOB_RUNNING, SHOP, "python scripts/reindex.py --all", "plan-srv-010", at(minutes=10), queued=3.0,
             status="running", overrides={"BATCH_SIZE": "500", "LOG_LEVEL": "debug"}),
        _job(JOB_CANCELED, NIGHTLY, "sh report.sh", "plan-crn-005", at(hours=16, minutes=30), queued=1.0, ran=300,
             status="canceled", exit_code=143, cancel_after=298),
        _job(JOB_PENDING, SHOP, "echo hi", "plan-srv-006", at(seconds=2), status="pending"),
    ]
    # the month so far: one job a day on shop-web, its length varying, plus one last month
    for day in range(1, 14):
        created = datetime(2025, 3, day, 9, 0, tzinfo=timezone.utc)
        jobs.append(_job(sid("job", f"daily{day:02d}"), SHOP if day % 3 else WORKER, f"python manage.py nightly --day {day}",
                         "plan-srv-008" if day % 2 else "plan-srv-010", created, queued=1, ran=600 * (1 + day % 5)))
    jobs.append(_job(sid("job", "lastmonth"), SHOP, "python manage.py nightly --day 0", "plan-srv-008",
                     datetime(2025, 2, 20, 9, tzinfo=timezone.utc), queued=1, ran=3600))
    for doc in jobs:
        plane.state.job_store.insert(doc)

    ok_start = at(hours=1, minutes=30) + timedelta(seconds=1.4)
    _log(plane, JOB_OK, ok_start, [
        "Operations to perform:", "  Apply all migrations: admin, auth, contenttypes, orders, sessions",
        "Running migrations:", "  Applying orders.0007_add_discount... OK", "  Applying orders.0008_backfill... OK",
        ("stderr", "WARNING: orders.0008 took 201.3s"), "Done.",
    ])
    _log(plane, JOB_FAILED, at(hours=1) + timedelta(seconds=1), [
        "worker: connecting to redis://localhost:6379/0", "worker: queue emails: 3 messages",
        "worker: sending order confirmation 1041", ("stderr", "Traceback (most recent call last):"),
        ("stderr", '  File "/app/worker.py", line 88, in send'),
        ("stderr", "smtplib.SMTPAuthenticationError: (535, b'5.7.8 Username and Password not accepted')"),
        ("stderr", "worker: giving up on queue emails after 3 attempts; the failed messages were: "
                   + ", ".join(f"order-confirmation-{n}" for n in range(1041, 1056))),
    ])
    _log(plane, JOB_OOM, at(minutes=50) + timedelta(seconds=2.1), [
        "report: loading orders for 2025-02", "report: 1,204,311 orders loaded", "report: building pivot tables",
        "report: pivot 1/3 done", "report: pivot 2/3 done",
    ])
    _log(plane, JOB_RUNNING, at(minutes=10) + timedelta(seconds=3), [
        f"reindex: batch {n} of 40: 500 documents ({'warning: 3 skipped' if n % 7 == 0 else 'ok'})" for n in range(1, 31)
    ])
    _log(plane, JOB_CANCELED, at(hours=16, minutes=30) + timedelta(seconds=1), [
        "report.sh: collecting", "report.sh: collecting", ("stderr", "report.sh: got SIGTERM, stopping"),
    ])
    return plane


@pytest.fixture
def utc(monkeypatch):
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.fixture(params=list(SIZES.values()), ids=list(SIZES))
def size(request):
    return request.param


@pytest.fixture
def plane(tmp_path, utc):
    plane = make_plane(tmp_path)
    yield plane
    plane.close()


def make_app(plane):
    from renderlocal.tui.app import RenderLocalApp

    return RenderLocalApp(plane, clock=lambda: NOW, live=False, cursor_blink=False)


async def settle(pilot, condition=lambda app: True, timeout: float = 10.0) -> None:
    """Wait until the active screen has loaded its data and ``condition(app)`` holds."""
    from renderlocal.tui.screens.base import LiveScreen

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        await pilot.pause(0.05)
        screen = pilot.app.screen
        base = screen if isinstance(screen, LiveScreen) else (
            pilot.app.screen_stack[-2] if len(pilot.app.screen_stack) > 1 else None)
        ready = base is None or not isinstance(base, LiveScreen) or (base.loaded_count > 0 and not base.load_running)
        if ready and condition(pilot.app):
            await pilot.pause(0.1)
            return
    raise AssertionError("the app did not settle")


def log_loaded(app) -> bool:
    from renderlocal.tui.screens.job_detail import JobDetailScreen

    screen = app.screen
    return isinstance(screen, JobDetailScreen) and (screen.view.line_count > 0 or screen.log_done) and not screen.log_reading


# -- the screens ------------------------------------------------------------------------------
def push(screen_factory, condition=lambda app: True):
    async def run_before(pilot):
        await settle(pilot)
        pilot.app.push_screen(screen_factory())
        await settle(pilot, condition)

    return run_before


def job_screen(job_id):
    from renderlocal.tui.screens.job_detail import JobDetailScreen

    return push(lambda: JobDetailScreen(job_id), log_loaded)


async def _settled(pilot):
    await settle(pilot)


def keys_then_settle(*keys, condition=lambda app: True):
    async def run_before(pilot):
        await settle(pilot)
        for index, key in enumerate(keys):
            await pilot.press(key)
            await settle(pilot, condition if index == len(keys) - 1 else (lambda app: True))

    return run_before


def test_services(snap_compare, plane, size):
    """Every service type; a failed latest build, one building, one never built; watch on for one."""
    assert snap_compare(make_app(plane), terminal_size=size, run_before=_settled)


def test_services_failed_build_detail(snap_compare, plane, size):
    """The highlighted service's failed build shows its step and message, and what jobs still run."""
    assert snap_compare(make_app(plane), terminal_size=size, run_before=keys_then_settle("down"))


def test_service_events_and_instance_log(snap_compare, plane, size):
    """A live web service: its URL, its deploys and jobs on one timeline, its instance's log."""
    from renderlocal.tui.screens.service_detail import ServiceScreen

    async def run_before(pilot):
        pilot.app.push_screen(ServiceScreen(SHOP))
        await settle(pilot, lambda app: isinstance(app.screen, ServiceScreen)
                     and app.screen.query_one("#service-log").line_count == 4)

    assert snap_compare(make_app(plane), terminal_size=size, run_before=run_before)


def test_builds_of_a_service(snap_compare, plane, size):
    from renderlocal.tui.screens.builds import BuildsScreen

    def loaded(app):
        screen = app.screen
        return isinstance(screen, BuildsScreen) and screen.query_one("#build-log").line_count > 0

    assert snap_compare(make_app(plane), terminal_size=size, run_before=push(lambda: BuildsScreen(WORKER), loaded))


def test_jobs(snap_compare, plane, size):
    """All jobs newest first: pending, running, OOM, failed, succeeded, canceled; cost and duration."""
    assert snap_compare(make_app(plane), terminal_size=size, run_before=keys_then_settle("2"))


def test_jobs_status_filter(snap_compare, plane, size):
    """s cycles the status filter: any, running, pending, succeeded, failed."""
    assert snap_compare(make_app(plane), terminal_size=size, run_before=keys_then_settle("2", "s", "s", "s", "s"))


def test_jobs_text_filter(plane):
    """Typing a filter keeps only the matching jobs (asserted on the table, not a picture:
    under load the filtered screen's SVG id varied though every cell was the same)."""
    import asyncio

    from textual.widgets import DataTable

    async def run():
        app = make_app(plane)
        async with app.run_test(size=SIZE) as pilot:
            await keys_then_settle("2", "slash", *"nightly", "enter",
                                   condition=lambda app: getattr(app.focused, "id", None) == "jobs")(pilot)
            table = app.screen.query_one("#jobs", DataTable)
            rows = [table.get_row_at(i) for i in range(table.row_count)]
            assert rows and all("nightly" in " ".join(str(cell) for cell in row).lower() for row in rows)
            every = [job for job in plane.state.list_jobs() if "nightly" in (job.startCommand + job.serviceId + job.id).lower()
                     or plane.get_service(job.serviceId).name == "nightly"]
            assert table.row_count == len(every)

    asyncio.run(run())


def test_job_failed(snap_compare, plane, size):
    assert snap_compare(make_app(plane), terminal_size=size, run_before=job_screen(JOB_FAILED))


def test_job_failed_wrapped_with_timestamps(snap_compare, plane, size):
    run = job_screen(JOB_FAILED)

    async def run_before(pilot):
        await run(pilot)
        await pilot.press("w", "t")
        await settle(pilot)

    assert snap_compare(make_app(plane), terminal_size=size, run_before=run_before)


def test_job_oom(snap_compare, plane, size):
    assert snap_compare(make_app(plane), terminal_size=size, run_before=job_screen(JOB_OOM))


def test_job_running(snap_compare, plane, size):
    """Running: the timeline ends at now, the cost so far, the log followed to its end."""
    assert snap_compare(make_app(plane), terminal_size=size, run_before=job_screen(JOB_RUNNING))


def test_job_canceled(snap_compare, plane, size):
    assert snap_compare(make_app(plane), terminal_size=size, run_before=job_screen(JOB_CANCELED))


def test_job_search_only_matches(snap_compare, plane, size):
    run = job_screen(JOB_RUNNING)

    async def run_before(pilot):
        await run(pilot)
        await pilot.press("slash", *"warning", "enter", "m")
        await settle(pilot)

    assert snap_compare(make_app(plane), terminal_size=size, run_before=run_before)


def test_job_search_highlights(snap_compare, plane, size):
    run = job_screen(JOB_RUNNING)

    async def run_before(pilot):
        await run(pilot)
        await pilot.press("slash", *"batch 2", "enter")
        await settle(pilot)

    assert snap_compare(make_app(plane), terminal_size=size, run_before=run_before)


def test_cancel_asks_first(snap_compare, plane, size):
    run = job_screen(JOB_RUNNING)

    async def run_before(pilot):
        await run(pilot)
        await pilot.press("c")
        await settle(pilot)

    assert snap_compare(make_app(plane), terminal_size=size, run_before=run_before)


def test_launcher(snap_compare, plane, size):
    """Prefilled command, the web family's plans with price per hour, the estimate."""
    assert snap_compare(make_app(plane), terminal_size=size, run_before=keys_then_settle("n"))


def test_launcher_errors_and_fan_out(snap_compare, plane, size):
    """A bigger plan, a bad env line shown under its field, two fan-out arguments (shell-quoted)."""
    assert snap_compare(make_app(plane), terminal_size=size, run_before=keys_then_settle(
        "n", "tab", "down", "tab", *"NOEQUALS", "enter", *"GOOD=1", "tab", *"2025-02 eu", "enter", *"2025-03"))


def test_launcher_cron_family(snap_compare, plane, size):
    """A cron job is offered cron plans only; it has no build yet, which the title says."""
    assert snap_compare(make_app(plane), terminal_size=size, run_before=keys_then_settle("down", "down", "down", "n"))


def test_billing(snap_compare, plane, size):
    assert snap_compare(make_app(plane), terminal_size=size, run_before=keys_then_settle("3"))


def test_databases_with_passwords_shown(snap_compare, plane, size):
    """Key 4: the databases and Key Value; the selected one's internal URL and why it is unavailable;
    p reveals the masked passwords."""
    assert snap_compare(make_app(plane), terminal_size=size, run_before=keys_then_settle("4", "down", "p"))


def test_help(snap_compare, plane, size):
    assert snap_compare(make_app(plane), terminal_size=size, run_before=keys_then_settle("question_mark"))


def test_log_stream(snap_compare, plane, size):
    """The log stream dialog with nothing set: where logs would go, what was sent and dropped."""
    from renderlocal.tui.screens.log_stream import LogStreamScreen

    async def run_before(pilot):
        await settle(pilot)
        pilot.app.open_log_stream()

        def status_shown(app) -> bool:  # its status is read in a worker; the endpoint box takes the focus
            from textual.widgets import Input

            return isinstance(app.screen, LogStreamScreen) and "not set" in str(
                app.screen.query_one("#log-stream-status").render()) and isinstance(app.focused, Input)

        await settle(pilot, status_shown)

    assert snap_compare(make_app(plane), terminal_size=size, run_before=run_before)


# -- issue 21 and 22: the month statement, a plan comparison, a rehearsal ----------------------
def test_statement(snap_compare, plane, size):
    """m on billing: the month's lines by service, kind and plan, to the cent, and spend per day."""
    from renderlocal.tui.screens.statement import StatementScreen

    assert snap_compare(make_app(plane), terminal_size=size, run_before=keys_then_settle(
        "3", "m", condition=lambda app: isinstance(app.screen, StatementScreen)))


COMPARE_OOM, COMPARE_OK, COMPARE_BIG = sid("job", "cmpstarter"), sid("job", "cmpstandard"), sid("job", "cmppro")


def _comparison(plane) -> str:
    command = "python build_report.py --month 2025-02"
    created = at(minutes=20)
    for job in (
        _job(COMPARE_OOM, REPORTS, command, "plan-srv-006", created, queued=1, ran=41, status="failed", exit_code=137,
             reason={"type": "oomKilled", "memoryLimitMB": 512, "message": "out of memory at 512 MB"}),
        _job(COMPARE_OK, REPORTS, command, "plan-srv-008", created + timedelta(seconds=43), queued=1, ran=96),
        _job(COMPARE_BIG, REPORTS, command, "plan-srv-010", created + timedelta(seconds=141), queued=1, ran=58),
    ):
        plane.state.job_store.insert(job)
    comparison = sid("cmp", "reports")
    plane.state.store.insert("comparisons", {
        "id": comparison, "serviceId": REPORTS, "startCommand": command, "sequential": True, "env": [],
        "planIds": ["plan-srv-006", "plan-srv-008", "plan-srv-010"], "createdAt": stamp(created),
        "jobIds": {"plan-srv-006": COMPARE_OOM, "plan-srv-008": COMPARE_OK, "plan-srv-010": COMPARE_BIG},
        "peaks": {"plan-srv-006": 512 * 2**20, "plan-srv-008": 731 * 2**20, "plan-srv-010": 734 * 2**20}})
    return comparison


def test_plan_comparison(snap_compare, plane, size):
    """Starter OOM-killed, Standard the cheapest that succeeded though Pro was faster: bars side by side."""
    from renderlocal.tui.screens.comparison import ComparisonScreen

    comparison = _comparison(plane)
    assert snap_compare(make_app(plane), terminal_size=size, run_before=push(lambda: ComparisonScreen(comparison)))


def _rehearsal(plane) -> str:
    job_id, started = sid("job", "rehearse"), at(minutes=5)
    plane.state.job_store.insert(_job(job_id, SHOP, "python migrate.py --dir migrations_slow", "plan-srv-006",
                                      started, queued=1, ran=15))
    _log(plane, job_id, started + timedelta(seconds=1), [
        "applying 004_seed_orders.sql ...", "applied 004_seed_orders.sql", "applying 005_widen_quantity.sql ...",
        "applied 005_widen_quantity.sql", "2 migration(s) applied to dpg-shopdb/shop_db_k3v9"])
    rehearsal = sid("rhs", "shopslow")
    diff = ("--- schema before\n+++ schema after\n@@ -26,7 +26,7 @@\n CREATE TABLE public.orders (\n"
            "     id integer NOT NULL,\n     product_id integer NOT NULL,\n-    quantity integer NOT NULL\n"
            "+    quantity bigint NOT NULL\n );\n")
    locks = [{"table": "orders", "mode": "ACCESS EXCLUSIVE", "seconds": 2.07},
             {"table": "orders", "mode": "SHARE", "seconds": 0.56},
             {"table": "orders", "mode": "ROW EXCLUSIVE", "seconds": 11.98},
             {"table": "products", "mode": "ROW SHARE", "seconds": 8.32}]
    plane.state.store.insert("rehearsals", {
        "id": rehearsal, "serviceId": SHOP, "databaseId": SHOP_DB, "startCommand": "python migrate.py --dir migrations_slow",
        "planId": "", "status": "finished", "createdAt": stamp(started), "jobId": job_id,
        "snapshot": "rl_snap_20250314_152501_3fa9c1", "locks": locks,
        "steps": [{"at": stamp(started), "text": "snapshot rl_snap_20250314_152501_3fa9c1 taken (7,512,345 bytes)"}],
        "report": {"outcome": "succeeded", "exitCode": 0, "failureReason": None, "seconds": 15, "costUSD": "0.000041",
                   "schemaDiff": diff, "locks": locks,
                   "rowCounts": [{"table": "orders", "before": 0, "after": 400000},
                                 {"table": "products", "before": 2, "after": 2},
                                 {"table": "schema_migrations", "before": 3, "after": 5}]}})
    return rehearsal


def test_rehearsal(snap_compare, plane, size):
    """The job's log beside the locks it held (strongest first), then rows and the schema diff."""
    from renderlocal.tui.screens.rehearsal import RehearsalScreen

    rehearsal = _rehearsal(plane)

    def log_in(app) -> bool:
        return isinstance(app.screen, RehearsalScreen) and app.screen.query_one("#rehearsal-log").line_count == 5

    assert snap_compare(make_app(plane), terminal_size=size, run_before=push(lambda: RehearsalScreen(rehearsal), log_in))
