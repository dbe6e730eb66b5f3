"""The terminal app's parts without an engine: big logs, spend, the launcher's rules, the palette."""

from __future__ import annotations

import asyncio
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

from test_tui_snapshots import (JOB_PENDING, JOB_RUNNING, NIGHTLY, NOW, SIZE, make_app, plane, settle,  # noqa: F401
                                utc)

from renderlocal.core.models import Job, stamp


def write_lines(plane, resource_id: str, count: int, start: int = 0) -> None:
    writer = plane.logs.writer(resource_id)
    chunk = []
    for n in range(start, start + count):
        chunk.append(b"2025-03-14T15:20:03.000000000Z stdout line %d\n" % n)
        if len(chunk) == 50_000:
            writer.write_raw(b"".join(chunk))
            chunk = []
    writer.write_raw(b"".join(chunk))
    writer.close()


# -- a million-line log ---------------------------------------------------------------------
def test_a_million_line_log_keeps_a_bounded_window(plane):
    from renderlocal.tui.screens.job_detail import JobDetailScreen

    big = "job-million0000000000000"
    doc = plane.state.job_store.get(JOB_RUNNING) | {"id": big}
    plane.state.job_store.insert(doc)
    write_lines(plane, big, 1_000_000)

    async def main():
        app = make_app(plane)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            app.push_screen(JobDetailScreen(big))
            await settle(pilot, lambda a: isinstance(a.screen, JobDetailScreen) and a.screen.view.line_count > 0)
            view = app.screen.view
            assert 0 < view.line_count <= 5000
            assert view.lines[-1].message == "line 999999"
            assert "the last 5,000 lines (older ones: render-local logs)" in view.status_text()
            # more lines arrive: the window moves, the view follows, it stays bounded
            write_lines(plane, big, 20_000, start=1_000_000)
            await settle(pilot, lambda a: view.lines[-1].message == "line 1019999")
            assert view.line_count == 5000 and view.lines[0].message == "line 1015000"
            assert view.scroll_y == view.max_scroll_y  # following
            # scrolling up stops following; search works across the window
            await pilot.press("pageup", "home")
            assert not view.follow and view.scroll_y == 0
            await pilot.press("slash", *"line 101800", "enter")
            await settle(pilot)
            assert view.match_count == 10
            await pilot.press("m")
            await settle(pilot)
            assert view.visible_messages() == [f"line 101800{n}" for n in range(10)]

    asyncio.run(main())


def test_log_tail_jumps_to_the_end_of_a_long_file(tmp_path):
    from renderlocal.core.logstore import LogStore
    from renderlocal.tui.logtail import LogTail

    store = LogStore(tmp_path)
    writer = store.writer("job-x")
    writer.write_raw(b"".join(b"2025-03-14T15:20:03.000000000Z stdout line %d\n" % n for n in range(200_000)))
    writer.close()
    tail = LogTail(store, "job-x", window_bytes=64 * 1024)
    lines = tail.read()
    assert tail.skipped_bytes > 0 and lines[-1].message == "line 199999"
    assert lines[0].message.startswith("line ") and len(lines) < 2000  # whole lines only, from the tail
    assert tail.read() == []
    writer = store.writer("job-x")
    writer.write("2025-03-14T15:20:04.000000000Z", "stderr", "one more")
    writer.close()
    [line] = tail.read()
    assert (line.stream, line.message) == ("stderr", "one more")
    small = LogTail(store, "job-x", keep=10)  # a reader that keeps the newest ten
    assert [l.message for l in small.read()][-2:] == ["line 199999", "one more"] and small.partial  # noqa: E741


def test_search_text_that_is_not_a_regex_is_matched_literally():
    from renderlocal.tui.widgets.log_view import compile_search

    assert compile_search("(oops").search("an (oops here")
    assert compile_search("ERR.R").search("error: x")  # a regex, case-insensitive
    assert compile_search("") is None


# -- spend ------------------------------------------------------------------------------------
def _job(started: datetime, seconds: int, plan="plan-srv-008", status="succeeded", service="srv-a") -> Job:
    return Job(id=f"job-{started:%d%H%M}", serviceId=service, startCommand="x", planId=plan, createdAt=stamp(started),
               buildId="bld-x", image="i", status=status, startedAt=stamp(started),
               finishedAt=stamp(started + timedelta(seconds=seconds)) if status != "running" else None)


def test_a_job_across_midnight_is_split_between_the_days(utc):
    from renderlocal.core.spend import build_report, job_cost_by_day

    job = _job(datetime(2025, 3, 13, 23, 0, tzinfo=timezone.utc), 7200)  # 23:00 to 01:00
    by_day = job_cost_by_day(job, NOW)
    assert by_day[date(2025, 3, 13)] == by_day[date(2025, 3, 14)] == job.cost() / 2
    report = build_report([job], {"srv-a": "a"}, NOW)
    assert report.total_today == job.cost() / 2 and report.total_month == job.cost()
    assert report.days[-1] == (date(2025, 3, 14), job.cost() / 2) and len(report.days) == 30
    assert [(r.label, r.month) for r in report.by_plan] == [("Standard (plan-srv-008)", job.cost())]


def test_last_month_is_not_this_month_and_running_jobs_count_so_far(utc):
    from renderlocal.core.spend import build_report

    old = _job(datetime(2025, 2, 28, 12, tzinfo=timezone.utc), 3600)
    running = _job(NOW - timedelta(minutes=30), 0, plan="plan-srv-010", status="running", service="srv-b")
    report = build_report([old, running], {"srv-a": "a", "srv-b": "b"}, NOW)
    assert report.total_month == running.cost(NOW) == Decimal(85) / 2_592_000 * 1800
    assert [r.label for r in report.by_service] == ["b"] and report.running == 1
    assert report.days[0][0] == date(2025, 2, 13) and dict(report.days)[date(2025, 2, 28)] == old.cost()


# -- the launcher's rules ---------------------------------------------------------------------------
def test_env_lines_are_checked_line_by_line():
    from renderlocal.tui.screens.launch import parse_env_lines

    pairs, errors = parse_env_lines("A=1\n\n# a comment\nNOEQUALS\n  B = two \n1X=y\nC=a=b")
    assert pairs == ["A=1", "C=a=b"]
    assert errors == [
        "line 4: env override 'NOEQUALS' must look like KEY=VALUE",
        "line 5: env var name 'B ' is invalid: use letters, digits and _, not starting with a digit",
        "line 6: env var name '1X' is invalid: use letters, digits and _, not starting with a digit",
    ]


def test_fan_out_arguments_are_appended_shell_quoted():
    from renderlocal.tui.screens.launch import commands_for, fan_out_args

    args = fan_out_args("2025-01\n\n  it's here  \n$HOME; rm -rf /\n")
    assert commands_for("python report.py", args) == [
        "python report.py 2025-01", "python report.py 'it'\"'\"'s here'", "python report.py '$HOME; rm -rf /'"]
    assert commands_for("echo hi", []) == ["echo hi"]


def test_the_free_plan_service_gets_starter_by_default():
    from renderlocal.core.models import Service
    from renderlocal.tui.screens.launch import default_plan_id

    service = Service(id="srv-x", name="x", type="web", runtime="docker", planId="free", rootDir="/", createdAt="",
                      updatedAt="")
    assert default_plan_id(service) == "plan-srv-006"
    assert default_plan_id(Service(**{**service.to_doc(), "type": "cron", "planId": "plan-crn-007"})) == "plan-crn-007"


# -- the command palette and the keys ---------------------------------------------------------------
def test_every_binding_of_the_screen_is_in_the_command_palette(plane):
    from renderlocal.tui.screens.billing import BillingScreen
    from renderlocal.tui.screens.jobs import JobsScreen

    async def main():
        app = make_app(plane)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            titles = [c.title for c in app.get_system_commands(app.screen)]
            for binding in app.screen.BINDINGS:
                assert f"Services: {binding.tooltip or binding.description}" in titles
            for name in ("shop-web", "queue-worker", "reports", "nightly"):
                assert f"Launch a job on {name}" in titles and f"Build {name}" in titles
            await pilot.press("2")
            await settle(pilot)
            titles = [c.title for c in app.get_system_commands(app.screen)]
            assert all(f"Jobs: {b.tooltip or b.description}" in titles for b in JobsScreen.BINDINGS)
            await pilot.press("ctrl+p")
            await pilot.pause(0.3)
            await pilot.press(*"go to billing")
            await pilot.pause(0.5)
            await pilot.press("enter")
            await settle(pilot)
            assert isinstance(app.screen, BillingScreen)
            # the palette runs a screen's action: filter the jobs to one status
            await pilot.press("2")
            await settle(pilot)
            await pilot.press("ctrl+p")
            await pilot.pause(0.3)
            await pilot.press(*"jobs: status filter")
            await pilot.pause(0.5)
            await pilot.press("enter")
            await settle(pilot)
            assert app.screen.status_filter == "running"

    asyncio.run(main())


def test_help_lists_every_screen_binding(plane):
    from renderlocal.tui.screens.help import HelpScreen

    async def main():
        app = make_app(plane)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await pilot.press("question_mark")
            await pilot.pause(0.2)
            assert isinstance(app.screen, HelpScreen)
            described = {desc for _title, keys in app.key_sections() for _key, desc in keys}
            from renderlocal.tui.app import SCREEN_NAMES

            for screen_class in SCREEN_NAMES:
                for binding in screen_class.BINDINGS:
                    if screen_class.__name__ != "ConfirmScreen":
                        assert (binding.tooltip or binding.description) in described
            await pilot.press("escape")
            await pilot.pause(0.2)
            assert not isinstance(app.screen, HelpScreen)

    asyncio.run(main())


# -- money and time as people read them ----------------------------------------------------------
def test_money_is_always_fixed_point():
    from renderlocal.tui.format import usd

    assert usd(Decimal("0E-33"), 8) == "$0.00000000"  # str(Decimal) would say 0E-8
    assert usd(Decimal("0.0000027"), 8) == "$0.00000270" and usd(Decimal("-0.0000001"), 6) == "$0.000000"


def test_a_finish_stamped_before_the_start_draws_no_negative_run(utc):
    from rich.console import Console

    from renderlocal.tui.widgets.timeline import timeline

    started = datetime(2025, 3, 14, 15, 0, 0, 925743, tzinfo=timezone.utc)
    job = _job(started, 0)
    job.finishedAt = stamp(started - timedelta(microseconds=235))  # as the engine reports fast jobs
    console = Console(width=100, record=True, file=open("/dev/null", "w"))
    console.print(timeline(job, NOW, 90))
    text = console.export_text()
    assert "ran 0.0s" in text and "-" not in text.splitlines()[2]


def test_the_log_stream_is_set_and_its_drops_shown_in_the_app(tmp_path):
    """Issue 9 in the app: set the endpoint, see what was sent and dropped, a bad one refused."""
    import json

    from textual.widgets import Input, Static

    from renderlocal.executor.control import ControlPlane
    from renderlocal.tui.app import RenderLocalApp
    from renderlocal.tui.screens.log_stream import LogStreamScreen
    from tests.conftest import SAMPLES

    plane = ControlPlane(tmp_path / "data", SAMPLES).start(loop=False)  # saving asks the control plane

    async def until(pilot, condition):
        for _ in range(100):
            await pilot.pause(0.05)
            if condition():
                return
        raise AssertionError("never happened")

    async def main():
        app = RenderLocalApp(plane, live=False, cursor_blink=False)
        async with app.run_test(size=(160, 45)) as pilot:
            app.open_log_stream()
            await pilot.pause(0.2)
            assert isinstance(app.screen, LogStreamScreen)
            endpoint = app.screen.query_one("#log-stream-endpoint", Input)
            endpoint.value = "no-port-here"
            await pilot.press("ctrl+s")
            await until(pilot, lambda: "must look like HOST:PORT" in str(app.screen.query_one("#log-stream-error", Static).render()))
            assert plane.log_streams.get() is None
            endpoint.value = "127.0.0.1:9"
            app.screen.query_one("#log-stream-token", Input).value = "secret-token-123"
            await pilot.press("ctrl+s")
            await until(pilot, lambda: plane.log_streams.get() is not None)
            config = plane.log_streams.get()
            assert (config.host, config.port) == ("127.0.0.1", 9) and plane.log_streams.token() == "secret-token-123"
            plane.close(drain_seconds=0)  # stop the forwarder the save started, then fake its state
            (plane.data_dir / "log-stream" / "state.json").write_text(json.dumps(
                {"sent": 12, "dropped": 34, "connected": False, "lastError": "cannot send to 127.0.0.1:9: refused"}))
            app.screen.show_status()
            await until(pilot, lambda: "sent 12" in str(app.screen.query_one("#log-stream-status", Static).render()))
            status = str(app.screen.query_one("#log-stream-status", Static).render())
            assert "sent 12" in status and "dropped 34" in status and "refused" in status
            assert "secret-token-123" not in status and "se************23" in status

    asyncio.run(main())


# -- a small terminal: what each screen keeps at 80x24 ---------------------------------------------
SMALL = (80, 24)


def plain(renderable, width: int = 200) -> str:
    from rich.console import Console

    console = Console(width=width, record=True, file=open("/dev/null", "w"))
    console.print(renderable)
    return console.export_text()


def test_columns_are_clipped_then_dropped_least_important_first():
    from renderlocal.tui.columns import Column, fit

    columns = [Column("id", "Job", clip_to=6), Column("service", "Service", drop=2), Column("status", "Status"),
               Column("command", "Command", clip_to=5, grows_first=True), Column("created", "Created", drop=3)]
    natural = {"id": 20, "service": 10, "status": 9, "command": 30, "created": 8}
    assert fit(columns, natural, 200) == natural  # room for everything: nothing clipped
    # 20+10+9+30+8 and a padding of 2 each is 87: clipped first, then created goes, then the service
    assert fit(columns, natural, 60) == {"id": 6, "service": 10, "status": 9, "command": 17, "created": 8}
    assert list(fit(columns, natural, 45)) == ["id", "service", "status", "command"]
    assert list(fit(columns, natural, 30)) == ["id", "status", "command"]
    assert fit(columns, natural, 30)["command"] == 30 - 6 - 9 - 3 * 2  # what is left goes to the command


def run_small(plane, keys, check, size=SMALL, condition=lambda app: True):
    async def main():
        app = make_app(plane)
        async with app.run_test(size=size) as pilot:
            await settle(pilot)
            for key in keys:
                await pilot.press(key)
                await settle(pilot, condition)
            check(app)

    asyncio.run(main())


def test_at_80x24_jobs_keep_status_duration_and_cost_and_services_their_latest_build_and_watch(plane):
    from renderlocal.tui.widgets.fitted_table import FittedTable

    def services(app):
        shown = app.screen.query_one("#services", FittedTable).widths
        assert {"name", "state", "latest", "watch"} <= set(shown) and "runtime" not in shown
        assert sum(width + 2 for width in shown.values()) <= 80

    def jobs(app):
        shown = app.screen.query_one("#jobs", FittedTable).widths
        assert {"id", "status", "command", "duration", "cost"} <= set(shown)
        assert "created" not in shown and "plan" not in shown  # dropped first
        assert sum(width + 2 for width in shown.values()) <= 80

    def billing(app):
        for table_id in ("#by-service", "#by-plan"):
            table = app.screen.query_one(table_id, FittedTable)
            assert "month" in table.widths and table.region.right <= 80

    run_small(plane, [], services)
    run_small(plane, ["2"], jobs)
    run_small(plane, ["3"], billing)
    run_small(plane, ["2"], lambda app: set(app.screen.query_one("#jobs", FittedTable).widths) == {
        "id", "service", "status", "reason", "command", "plan", "created", "duration", "cost"}, size=SIZE)


async def open_detail(pilot, job_id: str, ready):
    """The job's detail screen, once ``ready(screen)``."""
    from renderlocal.tui.screens.job_detail import JobDetailScreen

    await settle(pilot)
    pilot.app.push_screen(JobDetailScreen(job_id))
    await settle(pilot, lambda app: isinstance(app.screen, JobDetailScreen) and ready(app.screen))
    return pilot.app.screen


def test_at_80x24_job_detail_gives_the_log_the_height_and_keeps_cancel_and_rerun_in_view(plane):
    def in_view(screen, key: str) -> bool:
        """The footer shows the key (a key cut off the footer has no region on the screen)."""
        regions = [footer_key.region for footer_key in screen.query("FooterKey") if footer_key.key == key]
        return bool(regions) and regions[0].width > 0 and regions[0].right <= 80

    async def main():
        app = make_app(plane)
        async with app.run_test(size=SMALL) as pilot:
            screen = await open_detail(pilot, JOB_RUNNING, lambda screen: screen.view.line_count)
            assert screen.view.size.height >= 15  # of 24 rows
            summary = screen.query_one("#job-summary")
            assert summary.size.height <= 3 and "running for" in plain(summary.content)
            await settle(pilot, lambda app: in_view(screen, "c") and in_view(screen, "r"), timeout=5)

    asyncio.run(main())


# -- figures that must not go stale or puzzle --------------------------------------------------------
def test_a_job_that_ended_before_it_started_never_shows_a_frozen_wait(utc):
    from renderlocal.tui.screens.jobs import job_duration_text

    created = NOW - timedelta(seconds=15)
    waiting = Job(id="job-w", serviceId="srv-a", startCommand="x", planId="plan-srv-006", createdAt=stamp(created),
                  buildId="bld-x", image="i", status="pending")
    assert job_duration_text(waiting, NOW).plain == "waiting 15s"
    assert job_duration_text(waiting, NOW + timedelta(seconds=5)).plain == "waiting 20s"  # it counts
    never = Job(**{**waiting.to_doc(), "status": "canceled", "finishedAt": stamp(NOW)})
    assert job_duration_text(never, NOW).plain == job_duration_text(never, NOW + timedelta(hours=1)).plain == \
        "never ran"


def test_job_detail_shows_the_job_finished_without_waiting_for_a_change_event(plane):
    """live=False: the app hears no change events, as when one is lost; the detail still follows the job."""
    async def main():
        app = make_app(plane)
        async with app.run_test(size=SIZE) as pilot:
            screen = await open_detail(pilot, JOB_PENDING, lambda screen: screen.job is not None)
            assert screen.job.status == "pending"

            def finish(doc):
                doc.update(status="succeeded", startedAt=stamp(NOW - timedelta(seconds=1)), finishedAt=stamp(NOW),
                           exitCode=0, logsComplete=True)

            plane.state.job_store.update(JOB_PENDING, finish)
            await settle(pilot, lambda app: screen.job.status == "succeeded" and screen.log_done, timeout=5)
            assert "succeeded" in plain(screen.query_one("#job-summary").content)

    asyncio.run(main())


def test_a_cost_says_the_whole_seconds_billed_and_a_cron_plan_its_per_minute_rate(utc):
    from renderlocal.tui.widgets.job_summary import compact_summary, summary

    started = datetime(2025, 3, 14, 15, 0, 0, tzinfo=timezone.utc)
    fast = Job(**{**_job(started, 0).to_doc(), "finishedAt": stamp(started + timedelta(milliseconds=200))})
    text = plain(summary(fast, "a", NOW))
    assert "0.2s" in text and "billed for 1 s" in text and text.count("billed") == 1
    assert "billed for 1 s" in plain(compact_summary(fast, NOW))
    cron = _job(started, 90, plan="plan-crn-003")
    text = plain(summary(cron, "nightly", NOW))
    assert "0.016¢/min, billed per second" in text and "30-day month" not in text
    assert "$25/month, prorated per second over a 30-day month" in plain(summary(_job(started, 90), "a", NOW))


def test_the_cron_launcher_estimate_says_per_minute(plane):
    from renderlocal.tui.screens.launch import LaunchScreen

    def check(app):
        assert isinstance(app.screen, LaunchScreen)
        estimate = plain(app.screen.query_one("#estimate").content)
        assert "¢/min, billed per second" in estimate and "30-day month" not in estimate

    run_small(plane, ["down", "down", "down", "n"], check, size=SIZE)


def test_the_billing_screen_says_how_costs_are_reckoned_once(plane):
    from textual.widgets import Static

    def check(app):
        said = " ".join(plain(static.content) for static in app.screen.query(Static))
        assert said.count("billed per second") == 1 and said.count("30-day month") == 1

    run_small(plane, ["3"], check, size=SIZE)


def test_a_screen_loads_once_when_it_opens(plane):
    """Textual runs every class's on_mount (a subclass calling the base's too loaded and ticked twice),
    and a screen shown for the first time is resumed while its first load runs."""
    def check(app):
        assert app.screen.loaded_count == 1

    run_small(plane, ["2"], check, size=SIZE)


# -- sorting the lists ---------------------------------------------------------------------------
def test_jobs_and_services_sort_by_a_key_or_a_click_on_a_header(plane):
    from textual.widgets import Static

    from renderlocal.tui.widgets.fitted_table import FittedTable

    def keys(table) -> list[str]:
        return [str(key.value) for key in table.rows]

    async def click_header(pilot, table, column: str) -> None:
        x = 0
        for key, width in table.widths.items():
            if key == column:
                break
            x += width + 2
        await pilot.click(table, offset=(x + 2, 0))
        await settle(pilot)

    async def main():
        app = make_app(plane)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            services = app.screen.query_one("#services", FittedTable)
            assert keys(services)[0] == "srv-shopweb0000000000000"  # the blueprint's order
            await pilot.press("S")  # by the first column, the name
            await settle(pilot)
            names = [app.screen.rows[key].service.name for key in keys(services)]
            assert names == sorted(names) and "sorted by Name ▲" in app.screen.sub_title
            await pilot.press("2")
            await settle(pilot)
            table = app.screen.query_one("#jobs", FittedTable)
            newest_first = keys(table)
            await click_header(pilot, table, "cost")
            costs = [job.cost(NOW) for job in app.screen._visible()]
            assert keys(table) != newest_first and costs == sorted(costs)
            assert "sorted by Cost USD* ▲" in plain(app.screen.query_one("#jobs-scope", Static).content)
            await click_header(pilot, table, "cost")  # again: the other way
            assert [job.cost(NOW) for job in app.screen._visible()] == sorted(costs, reverse=True)
            assert [str(k.value) for k in table.rows] == [job.id for job in app.screen._visible()]
            await pilot.press("S")  # S past the last column (cost): newest first again
            await settle(pilot)
            assert keys(table) == newest_first

    asyncio.run(main())



def test_a_resource_meter_shows_memory_and_cpu_against_the_plan_with_a_sparkline():
    from renderlocal.tui.widgets.resource_meter import sparkline

    assert sparkline([0.0, 0.5, 0.99, None]) == "▁▅█ "
    assert len(sparkline([0.1] * 50)) == 20  # the last 20 samples


def test_a_build_in_progress_shows_its_step_as_a_bar():
    from renderlocal.tui.format import progress_bar

    assert progress_bar(1, 4) == "█░░░░░░░"  # the first of four steps, half done
    assert progress_bar(4, 4) == "███████░"
    assert progress_bar(0, 0) == "░░░░░░░░"


def test_a_rehearsals_row_change_is_said_the_same_in_the_app_and_the_cli():
    from renderlocal.core.row_counts import row_change

    assert [row_change(0, 400_000), row_change(12, 10), row_change(5, 5), row_change(None, 3), row_change(3, None)] == [
        "+400,000", "-2", "", "new table", "dropped"]
