"""The terminal app driven key by key against the real Docker engine.

Launch ``echo hi`` on a bigger plan and watch it succeed with ``hi`` in its log
and a cost; refuse invalid input without creating anything; build, cancel and
rerun from the keyboard.
"""

from __future__ import annotations

import asyncio
import os
import time

import pytest


pytestmark = pytest.mark.docker

BLUEPRINT = """\
services:
  - type: worker
    name: box
    runtime: docker
    rootDir: box
    plan: starter
    dockerCommand: echo from-the-service
"""
FILES = {"box/Dockerfile": "FROM busybox:1.36\n"}
SIZE = (160, 45)


@pytest.fixture
def plane(started, data_dir, write_blueprint):
    plane = started(data_dir, write_blueprint(BLUEPRINT, FILES))
    assert plane.build("box", wait=True).status == "succeeded"
    return plane


def text_of(widget) -> str:
    """What a Static shows, as plain text."""
    from rich.console import Console

    console = Console(width=200, record=True, file=open("/dev/null", "w"))
    console.print(widget.content)
    return console.export_text()


async def wait_for(pilot, condition, timeout: float = 60.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        await pilot.pause(0.1)
        if condition():
            return
    raise AssertionError(f"timed out waiting for {what}")


def run(scenario, plane):
    from renderlocal.tui.app import RenderLocalApp

    async def main():
        app = RenderLocalApp(plane, cursor_blink=False)
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: getattr(app.screen, "loaded_count", 0) > 0, what="the services")
            await scenario(app, pilot)

    asyncio.run(main())


async def open_launcher(app, pilot):
    from renderlocal.tui.screens.launch import LaunchScreen

    await pilot.press("n")
    await wait_for(pilot, lambda: isinstance(app.screen, LaunchScreen), what="the launcher")
    await pilot.pause(0.2)
    return app.screen


def test_launch_echo_hi_on_a_bigger_plan(plane):
    from textual.widgets import Input

    from renderlocal.tui.screens.job_detail import JobDetailScreen
    from renderlocal.tui.widgets.plan_picker import PlanPicker

    async def scenario(app, pilot):
        launcher = await open_launcher(app, pilot)
        command = launcher.query_one("#command", Input)
        assert command.value == "echo from-the-service"  # prefilled from the service
        await pilot.press("end", "ctrl+u", *"echo hi")
        assert command.value == "echo hi"
        await pilot.press("tab", "down")  # the plan picker: Starter -> Standard
        picker = launcher.query_one("#plan", PlanPicker)
        assert picker.plan_id == "plan-srv-008"
        assert [p.id for p in picker.plans] == ["plan-srv-006", "plan-srv-008", "plan-srv-010", "plan-srv-011",
                                                "plan-srv-013", "plan-srv-014"]
        assert "$0.034722/hour" in text_of(launcher.query_one("#estimate"))
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, JobDetailScreen), what="the job screen")
        detail = app.screen

        def done():
            return (detail.job is not None and detail.job.status == "succeeded" and detail.log_done
                    and "hi" in detail.view.visible_messages())

        await wait_for(pilot, done, what="the job to succeed with its log")
        job = plane.jobs.get(detail.job_id)
        assert job.startCommand == "echo hi" and job.planId == "plan-srv-008" and job.exitCode == 0
        assert job.cost() > 0, (
            f"billed nothing: finishedAt {job.finishedAt} is not after startedAt {job.startedAt} "
            "(the engine's FinishedAt can precede its StartedAt for a fast job; see the report)")
        assert detail.view.visible_messages() == ["hi"]
        summary = text_of(detail.query_one("#job-summary"))
        assert "succeeded" in summary and "$0.0000" in summary and "prorated per second over a 30-day month" in summary
        assert "billed for 1 s" in summary or "billed for 2 s" in summary  # echo hi runs well under a second
        await pilot.press("escape")  # back to the services
        await pilot.press("2")  # the jobs screen lists it
        await wait_for(pilot, lambda: getattr(app.screen, "loaded_count", 0) > 0 and job.id in
                       [str(k.value) for k in app.screen.query_one("#jobs").rows], what="the job in the list")

    run(scenario, plane)


def test_invalid_env_line_and_plan_are_refused(plane):
    from renderlocal.tui.screens.launch import LaunchScreen
    from renderlocal.tui.widgets.plan_picker import PlanPicker

    async def scenario(app, pilot):
        launcher = await open_launcher(app, pilot)
        await pilot.press("tab", "tab", *"NOEQUALS")  # the env overrides
        await pilot.pause(0.2)
        error = launcher.query_one("#env-error")
        assert error.display and "line 1: env override 'NOEQUALS' must look like KEY=VALUE" in text_of(error)
        assert launcher.query_one("#launch").disabled
        await pilot.press("ctrl+s")
        await pilot.pause(0.5)
        assert isinstance(app.screen, LaunchScreen) and "nothing was launched" in text_of(
            launcher.query_one("#launch-error"))
        # fix the env line; an env name that starts with a digit is refused too
        await pilot.press(*["backspace"] * 8, *"1BAD=x")
        await pilot.pause(0.2)
        assert "'1BAD' is invalid" in text_of(error)
        await pilot.press(*["backspace"] * 6, *"GOOD=1")
        await pilot.pause(0.2)
        assert not error.display and not launcher.query_one("#launch").disabled
        # a plan from the other family (a cron plan for a worker) is refused next to the picker
        launcher.query_one("#plan", PlanPicker).choose("plan-crn-003")
        await pilot.pause(0.2)
        plan_error = launcher.query_one("#plan-error")
        assert plan_error.display and "needs a service plan" in text_of(plan_error)
        await pilot.press("ctrl+s")
        await pilot.pause(0.5)
        assert isinstance(app.screen, LaunchScreen)
        # an empty command is refused as well
        launcher.query_one("#plan", PlanPicker).choose("plan-srv-006")
        await pilot.click("#command")
        await pilot.press("end", "ctrl+u", "ctrl+s")
        await pilot.pause(0.5)
        assert "a start command is required" in text_of(launcher.query_one("#command-error"))
        assert isinstance(app.screen, LaunchScreen)
        await pilot.press("escape")
        await pilot.pause(0.2)
        assert not isinstance(app.screen, LaunchScreen)
        assert plane.state.list_jobs() == []  # nothing was ever created

    run(scenario, plane)


def test_fan_out_launches_one_job_per_argument(plane):
    from renderlocal.tui.screens.jobs import JobsScreen

    async def scenario(app, pilot):
        await open_launcher(app, pilot)
        await pilot.press("end", "ctrl+u", *"echo arg:", "tab", "tab", *"WHO=env", "tab",
                          *"one two", "enter", *"three", "enter", *"four", "enter", *"five")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, JobsScreen), what="the jobs of the fan-out")
        jobs = plane.state.list_jobs()
        # created in launch order, so the newest-first list shows them in exactly the reverse order
        assert [j.startCommand for j in reversed(jobs)] == ["echo arg: 'one two'", "echo arg: three",
                                                            "echo arg: four", "echo arg: five"]
        finished = [plane.jobs.wait(j.id, timeout=60) for j in jobs]
        assert all(j.status == "succeeded" and j.envOverrides == {"WHO": "env"} for j in finished)
        logs = sorted(line.message for j in finished for line in plane.logs.read(j.id))
        assert logs == ["arg: five", "arg: four", "arg: one two", "arg: three"]

    run(scenario, plane)


def test_build_cancel_and_rerun_from_the_keyboard(plane):
    from renderlocal.tui.screens.confirm import ConfirmScreen
    from renderlocal.tui.screens.job_detail import JobDetailScreen

    async def scenario(app, pilot):
        before = {b.id for b in plane.state.list_builds()}
        await pilot.press("b")  # build now, in a worker: the UI keeps answering
        await wait_for(pilot, lambda: len(plane.state.list_builds()) == len(before) + 1, what="a new build")
        new = next(b for b in plane.state.list_builds() if b.id not in before)
        await wait_for(pilot, lambda: plane.state.get_build(new.id).status == "succeeded", what="the build")
        await wait_for(pilot, lambda: plane.get_service("box").lastSuccessfulBuildId == new.id, what="promotion")

        job = plane.create_job("box", "echo started; sleep 60", "plan-srv-008", ["MODE=slow"])
        app.push_screen(JobDetailScreen(job.id))
        await wait_for(pilot, lambda: isinstance(app.screen, JobDetailScreen) and "started" in
                       app.screen.view.visible_messages(), what="the job's first line")
        detail = app.screen
        await pilot.press("c")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="the confirmation")
        await pilot.press("n")  # keep it running
        await pilot.pause(0.5)
        assert plane.jobs.get(job.id).cancelRequestedAt is None
        await pilot.press("c")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="the confirmation")
        await pilot.press("y")
        await wait_for(pilot, lambda: detail.job is not None and detail.job.status == "canceled", timeout=60,
                       what="the job to be canceled")
        jobs_before = len(plane.state.list_jobs())
        await pilot.press("r")  # rerun asks first, as cancel does
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="the rerun's confirmation")
        await pilot.press("n")
        await pilot.pause(0.5)
        assert app.screen is detail and len(plane.state.list_jobs()) == jobs_before  # nothing ran
        depth = len(app.screen_stack)
        await pilot.press("r")  # rerun: same command, plan and overrides
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="the rerun's confirmation")
        await pilot.press("y")
        await wait_for(pilot, lambda: isinstance(app.screen, JobDetailScreen) and app.screen.job_id != job.id,
                       what="the rerun")
        assert len(app.screen_stack) == depth and detail not in app.screen_stack  # it took the old detail's place
        rerun = plane.jobs.get(app.screen.job_id)
        assert (rerun.startCommand, rerun.planId, rerun.envOverrides) == ("echo started; sleep 60", "plan-srv-008",
                                                                          {"MODE": "slow"})
        assert rerun.buildId == new.id  # the newest successful build
        plane.cancel_job(rerun.id)
        plane.jobs.wait(rerun.id, timeout=30)

    run(scenario, plane)


def test_a_tab_key_shows_that_tabs_list_not_a_detail_opened_there_before(plane):
    from renderlocal.tui.screens.job_detail import JobDetailScreen
    from renderlocal.tui.screens.jobs import JobsScreen
    from renderlocal.tui.screens.services import ServicesScreen

    async def scenario(app, pilot):
        job = plane.jobs.wait(plane.create_job("box", "echo once").id, timeout=60)
        await pilot.press("2")
        await wait_for(pilot, lambda: isinstance(app.screen, JobsScreen), what="the jobs tab")
        app.push_screen(JobDetailScreen(job.id))
        await wait_for(pilot, lambda: isinstance(app.screen, JobDetailScreen), what="the job's detail")
        await pilot.press("1")
        await wait_for(pilot, lambda: isinstance(app.screen, ServicesScreen), what="the services tab")
        await pilot.press("2")
        await pilot.pause(0.3)
        assert isinstance(app.screen, JobsScreen)  # the list, not the detail seen before
        await pilot.press("2")  # pressed again from the list: stays
        assert isinstance(app.screen, JobsScreen) and len(app.screen_stack) == 1

    run(scenario, plane)


def test_quitting_with_a_job_running_says_it_keeps_running_and_billing(plane):
    from renderlocal.tui.app import still_running_text

    job = plane.create_job("box", "sleep 60")
    deadline = time.monotonic() + 60
    while plane.state.get_job(job.id).status != "running" and time.monotonic() < deadline:
        time.sleep(0.1)
    try:
        assert plane.keeps_running() and still_running_text(plane) == "1 job (billing on)"
    finally:
        plane.cancel_job(job.id)
        plane.jobs.wait(job.id, timeout=30)


def test_a_running_build_is_canceled_from_the_builds_screen(plane):
    from renderlocal.tui.screens.builds import BuildsScreen
    from renderlocal.tui.screens.confirm import ConfirmScreen

    good = plane.get_service("box").lastSuccessfulBuildId
    (plane.blueprint_path.parent / "box" / "Dockerfile").write_text(
        f"FROM busybox:1.36\nRUN echo slow-step {time.time_ns()} && sleep 60\n")

    async def scenario(app, pilot):
        build = plane.build("box", wait=False)
        app.push_screen(BuildsScreen(plane.get_service("box").id))
        await wait_for(pilot, lambda: isinstance(app.screen, BuildsScreen) and app.screen.selected_id() == build.id
                       and any(line.message.startswith("slow-step") for line in plane.logs.read(build.id)),
                       what="the build's slow step")
        table = app.screen.query_one("#builds")
        await wait_for(pilot, lambda: str(table.get_row(build.id)[1]).endswith("2/2"),
                       what="its step as a bar in the list")  # FROM, then the RUN it is at
        assert "█" in str(table.get_row(build.id)[1])
        await pilot.press("c")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="the confirmation")
        await pilot.press("y")
        await wait_for(pilot, lambda: plane.state.get_build(build.id).status == "canceled", timeout=30, what="the cancel")
        await wait_for(pilot, lambda: app.screen.builds[build.id].status == "canceled", what="the screen to show it")
        assert plane.get_service("box").lastSuccessfulBuildId == good

    run(scenario, plane)


def test_the_app_becomes_the_control_plane_and_serves_the_cli(engine, data_dir, write_blueprint, monkeypatch):
    """No control plane runs: the app is it, and a CLI's job runs through the app's API."""
    import json
    import subprocess
    import sys

    from renderlocal.client import discovery
    from renderlocal.executor.control import ControlPlane
    from renderlocal.tui.app import RenderLocalApp

    monkeypatch.setenv("RENDER_LOCAL_API_PORT", "0")
    path = write_blueprint(BLUEPRINT, FILES)
    plane = ControlPlane(data_dir, path, engine=engine)
    base = [sys.executable, "-m", "renderlocal", "--data-dir", str(data_dir), "--blueprint", str(path)]

    async def main():
        app = RenderLocalApp(plane, serve_api=True, cursor_blink=False)
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: discovery.read_live(data_dir) is not None, what="the app's API")
            assert plane.lock.held and discovery.read_live(data_dir).pid == os.getpid()
            await pilot.press("b")  # build from the app
            await wait_for(pilot, lambda: plane.get_service("box").lastSuccessfulBuildId is not None, what="the build")
            made = await asyncio.to_thread(subprocess.run, base + ["jobs", "create", "box", "--start-command",
                                                                   "echo via-the-app", "--wait", "-o", "json"],
                                           capture_output=True, text=True, timeout=120)
            assert made.returncode == 0, made.stderr
            assert "started a control plane" not in made.stderr
            job_id = json.loads(made.stdout)["id"]
            await pilot.press("2")  # the jobs screen hears of it from the control plane's changes
            await wait_for(pilot, lambda: job_id in [str(k.value) for k in app.screen.query_one("#jobs").rows],
                           what="the CLI's job in the app")
        assert discovery.read_live(data_dir) is None  # withdrawn as the app closed

    try:
        asyncio.run(main())
    finally:
        if plane.lock.held:
            plane.close()


def test_with_a_control_plane_running_the_app_asks_it(engine, data_dir, write_blueprint):
    """`render-local serve` runs: the app launches through it and shows the job it ran."""
    import signal
    import subprocess
    import sys

    from renderlocal.client.plane import RemotePlane
    from renderlocal.executor.control import ControlPlane
    from renderlocal.tui.app import RenderLocalApp
    from renderlocal.tui.screens.job_detail import JobDetailScreen

    path = write_blueprint(BLUEPRINT, FILES)
    base = [sys.executable, "-m", "renderlocal", "--data-dir", str(data_dir), "--blueprint", str(path)]
    server = subprocess.Popen(base + ["serve", "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert server.stdout.readline().startswith("http://")
    assert subprocess.run(base + ["builds", "create", "box", "--wait"], capture_output=True, timeout=120).returncode == 0
    plane = ControlPlane(data_dir, path, engine=engine)

    async def main():
        app = RenderLocalApp(plane, serve_api=True, cursor_blink=False)
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: isinstance(app.plane, RemotePlane), what="the running control plane")
            assert app.plane.pid == server.pid and not plane.lock.held
            await wait_for(pilot, lambda: getattr(app.screen, "loaded_count", 0) > 0, what="the services")
            launcher = await open_launcher(app, pilot)
            await pilot.press("end", "ctrl+u", *"echo asked-over-the-api", "ctrl+s")
            await wait_for(pilot, lambda: isinstance(app.screen, JobDetailScreen), what="the job screen")
            detail = app.screen
            await wait_for(pilot, lambda: detail.job is not None and detail.job.status == "succeeded" and detail.log_done,
                           what="the job to succeed, as the other process reports")
            assert detail.view.visible_messages() == ["asked-over-the-api"]
            assert launcher.is_attached is False

    try:
        asyncio.run(main())
        assert server.poll() is None  # the app leaves the other control plane running
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(30)


def test_the_jobs_list_shows_a_running_jobs_memory_against_its_plan(plane):
    """Issue 18: the OOM demo's memory climbs in the list, not only in job detail."""
    from renderlocal.tui.screens.jobs import JobsScreen

    hog = "x=$(head -c 200000000 /dev/zero | tr '\\0' a); echo held; sleep 60"  # 200 MB of Starter's 512
    job = plane.create_job("box", hog)

    async def scenario(app, pilot):
        await pilot.press("2")
        await wait_for(pilot, lambda: isinstance(app.screen, JobsScreen), what="the jobs tab")
        table = app.screen.query_one("#jobs")
        column = next(i for i, c in enumerate(table.ordered_columns) if str(c.label).startswith("Mem"))

        def memory_cell() -> str:
            return str(table.get_row(job.id)[column]) if job.id in [r.value for r in table.rows] else ""

        await wait_for(pilot, lambda: memory_cell().endswith("%") and int(memory_cell()[:-1]) >= 35, 90,
                       what="the job's memory share in the list")
        plane.cancel_job(job.id)
        await wait_for(pilot, lambda: plane.state.get_job(job.id).final, 60, what="the cancel")
        await wait_for(pilot, lambda: memory_cell() == "", 10, what="an ended job's memory cell emptied")

    try:
        run(scenario, plane)
    finally:
        if not plane.state.get_job(job.id).final:
            plane.cancel_job(job.id)
