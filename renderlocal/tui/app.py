"""render-local's terminal app: services, builds, jobs, live logs and spend.

The app is a face: it reads what the control plane wrote (``plane.state``) and
asks it to act (``plane.create_job``, ``plane.build``...). When no control
plane runs for the data dir, this process becomes it (and serves its API);
when one does (``render-local serve``, another app), the app asks that one
over its API (``client.plane.RemotePlane``). Either way screens redraw on the
control plane's change events, and nothing here talks to the Docker engine
while importing or composing: commands run in worker threads.
"""

from __future__ import annotations

import os
from datetime import datetime
from functools import partial
from typing import Callable, Iterable

from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import ModalScreen, Screen

from renderlocal.core.clock import utcnow
from renderlocal.core.errors import RenderLocalError
from renderlocal.core.statuses import BuildStatus, DeployTrigger
from renderlocal.tui.messages import (CommandDone, CommandFailed, JobsAdopted, PlaneChanged, PlaneReady,
                                      PlaneTrouble)
from renderlocal.tui.screens.base import LiveScreen
from renderlocal.tui.screens.billing import BillingScreen
from renderlocal.tui.screens.builds import BuildsScreen
from renderlocal.tui.screens.comparison import ComparisonScreen
from renderlocal.tui.screens.confirm import ConfirmScreen
from renderlocal.tui.screens.databases import DatabasesScreen
from renderlocal.tui.screens.help import HelpScreen
from renderlocal.tui.screens.job_detail import JobDetailScreen
from renderlocal.tui.screens.jobs import JobsScreen
from renderlocal.tui.screens.launch import LaunchScreen
from renderlocal.tui.screens.rehearsal import RehearsalScreen
from renderlocal.tui.screens.service_detail import ServiceScreen
from renderlocal.tui.screens.services import ServicesScreen
from renderlocal.tui.screens.statement import StatementScreen


TABS = Binding.Group("Tabs", compact=True)
SCREEN_NAMES = {
    ServicesScreen: "Services",
    ServiceScreen: "Service",
    BuildsScreen: "Builds",
    JobsScreen: "Jobs",
    JobDetailScreen: "Job detail",
    BillingScreen: "Billing",
    DatabasesScreen: "Databases",
    LaunchScreen: "Launch a job",
    ComparisonScreen: "Plan comparison",
    StatementScreen: "Month statement",
    RehearsalScreen: "Rehearsal",
    ConfirmScreen: "Confirm",
}


class RenderLocalApp(App):
    """The app. ``plane`` is a ``ControlPlane`` (started here when ``live`` unless it already
    is) or a ``RemotePlane``; ``clock`` returns the current aware UTC time (tests freeze
    it); ``live=False`` draws the stored data and nothing else (snapshots);
    ``serve_api`` serves the local API when this process is the control plane;
    ``cursor_blink=False`` freezes text cursors; ``notices`` are shown once at start."""

    CSS_PATH = "app.tcss"
    TITLE = "render-local"
    # screens get these classes by the terminal's size (app.tcss lays out small ones)
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (120, "-wide")]
    VERTICAL_BREAKPOINTS = [(0, "-short"), (36, "-tall")]
    MODES = {"services": ServicesScreen, "jobs": JobsScreen, "billing": BillingScreen, "databases": DatabasesScreen}
    # the tabs' keys share one footer label ("1234 Tabs"), so a narrow footer keeps "? Keys" in view
    BINDINGS = [
        Binding("question_mark", "help", "Keys"),
        Binding("q", "quit", "Quit"),
        Binding("1", "show_tab('services')", "Services", group=TABS),
        Binding("2", "show_tab('jobs')", "Jobs", group=TABS),
        Binding("3", "show_tab('billing')", "Billing", group=TABS),
        Binding("4", "show_tab('databases')", "Databases", group=TABS),
    ]

    def __init__(self, plane, clock: Callable[[], datetime] | None = None, *, live: bool = True,
                 serve_api: bool = False, cursor_blink: bool = True, notices: list[str] | None = None) -> None:
        super().__init__()
        self.plane = plane
        self.notices = list(notices or [])
        self.clock = clock or utcnow
        self.live = live
        self.serve_api = serve_api
        self.cursor_blink = cursor_blink
        self.services_cache: list = []
        self.closing = False  # q was pressed: keys typed after it open nothing
        self.api = None  # the API server, while this process is the control plane and serves it
        self.builds_started: dict[str, str] = {}  # build id -> service name, for the notice when it ends
        self.live_screens: set[LiveScreen] = set()  # mounted, in any tab: told of every change
        self._stop_listening: Callable[[], None] | None = None

    # -- time ------------------------------------------------------------------------
    def now(self) -> datetime:
        return self.clock()

    def check_action(self, action: str, parameters) -> bool | None:
        if self.closing:
            return False
        if action in ("switch_mode", "show_tab") and isinstance(self.screen, ModalScreen):
            return False  # finish (or close) the dialog first
        return True

    def action_show_tab(self, mode: str) -> None:
        """The tab's own first screen: a detail opened in it before is closed, so the keys
        typed next act on the list the tab key names, not on a job seen earlier."""
        self.switch_mode(mode)
        while len(self.screen_stack) > 1:
            self.pop_screen()

    async def action_quit(self) -> None:
        self.closing = True
        self.exit()

    def push_screen(self, screen, *args, **kwargs):
        if self.closing:
            return None  # a key or a callback arriving while the app closes opens nothing
        return super().push_screen(screen, *args, **kwargs)

    # -- start-up, the control plane and the heartbeat ---------------------------------------
    def on_mount(self) -> None:
        self.switch_mode("services")
        for notice in self.notices:
            self.notify(notice, severity="warning", timeout=12)
        if not self.live:
            self._show_warnings()
            return
        if getattr(self.plane, "lock", None) is not None and not self.plane.lock.held:
            self._find_control_plane()  # become it, or find the one that is
        else:
            self._listen()
            self._show_warnings()

    def on_unmount(self) -> None:
        self.closing = True  # a control-plane worker still starting stops what it started
        if self._stop_listening is not None:
            self._stop_listening()
        if self.api is not None:
            self.api.stop()

    def _show_warnings(self) -> None:
        for warning in self.plane.warnings:
            self.notify(warning, title="render.yaml", severity="warning", timeout=12)

    def _listen(self) -> None:
        self._stop_listening = self.plane.listen(lambda change: self.post_message(PlaneChanged(change)))

    @work(thread=True, group="control-plane", exit_on_error=False)
    def _find_control_plane(self) -> None:
        """Become the data dir's control plane and serve its API; if another process already is,
        ask that one instead."""
        from renderlocal.executor.election import ControlPlaneRunning

        plane = self.plane
        try:
            plane.start(on_problem=lambda error: self.post_message(PlaneTrouble(error)),
                        on_adopted=lambda ids: self.post_message(JobsAdopted(ids)))
        except ControlPlaneRunning:
            from renderlocal.client.plane import RemotePlane

            try:
                remote = RemotePlane(plane.data_dir, plane.blueprint_path)
            except RenderLocalError as exc:
                self.post_message(CommandFailed(exc))
                return
            self.post_message(PlaneReady(remote, f"Using the control plane of pid {remote.pid} "
                                                 f"({remote.remote.endpoint.url})"))
            return
        except RenderLocalError as exc:
            self.post_message(CommandFailed(exc))
            return
        plane.supervisor.wait_first_pass()  # what a crash left is adopted before the API answers anyone
        notice = "This app is the control plane"
        if self.serve_api and not self.closing:
            notice = self._start_api(plane)
        if self.closing:  # quit while this ran: undo it, the app is gone
            if self.api is not None:
                self.api.stop()
            plane.close()
            return
        self.post_message(PlaneReady(plane, notice))

    def _start_api(self, plane) -> str:
        """The local API while the app is open (port 8000, else any free one)."""
        from renderlocal.api.server import start_in_thread

        port = int(os.environ.get("RENDER_LOCAL_API_PORT", "8000"))
        try:
            try:
                self.api = start_in_thread(plane, "127.0.0.1", port)
            except RenderLocalError:  # the port is taken (another program?): any free one
                self.api = start_in_thread(plane, "127.0.0.1", 0)
        except Exception as exc:
            return f"the local API did not start: {exc}"
        return f"API on {self.api.url} (token: render-local token)"

    def on_plane_ready(self, message: PlaneReady) -> None:
        if self.closing:
            return
        self.plane = message.plane
        self._listen()
        self._show_warnings()
        self.notify(message.notice, timeout=6)
        self._tell_screens(None)

    def on_plane_changed(self, message: PlaneChanged) -> None:
        change = message.change
        if change is not None and change.kind == "build" and change.id in self.builds_started and \
                change.status != BuildStatus.BUILDING:
            self._build_ended(change.id)
        self._tell_screens(change)

    def _tell_screens(self, change) -> None:
        # every tab's screens, not only the shown tab's: a list seen again must not be stale
        for screen in list(self.live_screens):
            screen.changed(change)

    def on_plane_trouble(self, message: PlaneTrouble) -> None:
        if message.error is None:
            self.notify("The Docker engine answers again", title="Docker engine")
        else:
            self.notify(f"{message.error} · builds and jobs wait for it; the rest works", title="Docker engine",
                        severity="error", timeout=15)

    def on_jobs_adopted(self, message: JobsAdopted) -> None:
        count = len(message.job_ids)
        self.notify(f"Supervising {count} job{'s' if count != 1 else ''} that no render-local was watching",
                    title="Recovered")

    # -- commands: run in a worker, the result comes back as a message -----------------------
    @work(thread=True, group="command", exit_on_error=False)
    def command(self, do: Callable[[], object], then: Callable[[object], None] | None = None) -> None:
        """Run ``do()`` off the UI thread; then ``then(result)`` on it, or an error notice."""
        try:
            result = do()
        except Exception as exc:
            self.post_message(CommandFailed(exc))
            return
        if then is not None:
            self.post_message(CommandDone(then, result))

    def on_command_done(self, message: CommandDone) -> None:
        message.then(message.result)

    def on_command_failed(self, message: CommandFailed) -> None:
        self.report_error(message.error)

    def report_error(self, error: Exception) -> None:
        if isinstance(error, RenderLocalError):
            self.notify(str(error), severity="error", timeout=10)
        else:
            self.notify(f"{type(error).__name__}: {error}", title="Unexpected error", severity="error", timeout=15)

    def apply_blink(self, screen: Screen) -> None:
        if not self.cursor_blink:
            for widget in screen.query("Input, TextArea"):
                widget.cursor_blink = False

    # -- operations every screen offers -------------------------------------------------------
    def open_launcher(self, service) -> None:
        def launched(jobs) -> None:
            if not jobs:
                return
            if isinstance(jobs, dict):  # a plan comparison
                plans = len(jobs.get("planIds") or jobs.get("runs") or [])  # the record in process, its view over the API
                self.notify(f"{plans} plans, one after another", title="Plan comparison started")
                self.push_screen(ComparisonScreen(jobs["id"]))
                return
            if len(jobs) == 1:
                self.notify(f"{jobs[0].id} launched: {jobs[0].startCommand}", title="Job launched")
                self.push_screen(JobDetailScreen(jobs[0].id))
            else:
                self.notify(f"{len(jobs)} jobs launched on {service.name}", title="Fan-out launched")
                self.push_screen(JobsScreen(service.id))

        self.push_screen(LaunchScreen(service), launched)

    def rehearse(self, service_id: str) -> None:
        """Ask for the migration to rehearse on the service's database, start it, show it."""
        from renderlocal.tui.screens.rehearse_prompt import RehearsePrompt

        state = self.plane.state
        service = state.get_service(service_id)
        databases = [state.get_database(i) for i in service.needs if i.startswith("dpg-")]
        if len(databases) != 1:
            self.notify(f"{service.name} has {'no database' if not databases else 'several databases'} in its env "
                        "(fromDatabase): rehearse it with the CLI's --database", severity="warning")
            return

        def chosen(command: str | None) -> None:
            if command:
                self.command(lambda: self.plane.rehearse(service_id, command),
                             lambda doc: self.push_screen(RehearsalScreen(doc["id"])))

        self.push_screen(RehearsePrompt(service.name, databases[0].name), chosen)

    def open_shell(self, target: dict) -> None:
        """``docker exec -it`` into a running job or instance (``running_container``'s answer), the app
        suspended until the shell ends."""
        import shutil
        import subprocess

        from renderlocal.cli.main import LOGIN_SHELL

        if not shutil.which("docker"):
            self.notify(f"a shell needs the docker CLI on PATH; or run: render-local ssh {target['id']}",
                        severity="warning")
            return
        with self.suspend():
            subprocess.run(["docker", "exec", "-it", target["containerId"], *LOGIN_SHELL])

    def page_log(self, resource_id: str, editor: bool = False) -> None:
        """A job's whole log in $PAGER (less -R by default), or with ``editor`` in $VISUAL or
        $EDITOR (vi by default), the app suspended until it ends. The file is a copy: what the
        editor saves does not change the log."""
        import os
        import shlex
        import subprocess
        import tempfile

        if editor:
            program = os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi"
        else:
            program = os.environ.get("PAGER") or "less -R"
        with tempfile.NamedTemporaryFile("w", suffix=f"-{resource_id}.log", delete=False) as out:
            for line in self.plane.state.logs.read(resource_id):
                out.write(line.message + "\n")
        try:
            with self.suspend():
                subprocess.run([*shlex.split(program), out.name])
        except OSError as exc:  # no such program
            self.notify(f"could not open {program}: {exc.strerror or exc}", severity="error")
        finally:
            os.unlink(out.name)

    def open_launcher_by_id(self, service_id: str) -> None:
        self.command(lambda: self.plane.state.get_service(service_id), self.open_launcher)

    def start_build(self, service) -> None:
        self.notify(f"Building {service.name}…", title="Build")

        def started(build) -> None:
            self.builds_started[build.id] = service.name

        self.command(lambda: self.plane.build(service.id), started)

    def _build_ended(self, build_id: str) -> None:
        name = self.builds_started.pop(build_id)

        def ended(build) -> None:
            if build.status == BuildStatus.SUCCEEDED:
                self.notify(f"{name}: build {build.id} succeeded; new jobs run it", title="Build")
            elif build.status == BuildStatus.CANCELED:
                self.notify(f"{name}: build {build.id} canceled; jobs keep running the last successful build",
                            title="Build canceled", severity="warning")
            else:
                reason = build.failureReason or {}
                where = f"{reason['step']}: " if reason.get("step") else ""
                self.notify(f"{name}: build {build.id} failed: {where}{reason.get('message', '')}",
                            title="Build failed", severity="error", timeout=15)

        self.command(lambda: self.plane.state.get_build(build_id), ended)

    def deploy_service(self, service) -> None:
        if not service.runs:
            self.notify(f"{service.name} is a cron job: it runs on its schedule; n launches a job", severity="warning")
            return

        def started(deploy) -> None:
            self.notify(f"{service.name}: deploying {deploy.buildId} ({deploy.id}); the live one serves until it is healthy",
                        title="Deploy")

        self.command(lambda: self.plane.deploy(service.id, DeployTrigger.MANUAL), started)

    def toggle_suspend(self, service) -> None:
        if service.suspended:
            said = "it runs on its schedule again" if not service.runs else "its last live build is deployed again"
            self.command(lambda: self.plane.resume(service.id),
                         lambda _deploy: self.notify(f"{service.name}: resumed; {said}", title="Resume"))
        else:
            said = "it does not run on its schedule until resumed" if not service.runs else "its running jobs go on"
            self.command(lambda: self.plane.suspend(service.id),
                         lambda _service: self.notify(f"{service.name}: suspended; {said}", title="Suspend"))

    def down(self) -> None:
        self.command(lambda: self.plane.down(),
                     lambda _r: self.notify("Every service stopped; their jobs run on (up starts them again)",
                                            title="Down"))

    def up(self) -> None:
        def started(result) -> None:
            builds, deploys, stores = result
            extra = f", {len(stores)} database(s) and Key Value starting" if stores else ""
            self.notify(f"{len(builds)} build(s) and {len(deploys)} deploy(s) started{extra}; services go live once "
                        "healthy", title="Up")

        self.command(lambda: self.plane.up(), started)

    def toggle_watch(self, service) -> None:
        on = not service.watch

        def done(_service) -> None:
            self.notify(f"{service.name}: watch mode {'on: a change to its files rebuilds it' if on else 'off'}",
                        title="Watch")

        self.command(lambda: self.plane.set_watch(service.id, on), done)

    def confirm_cancel(self, job) -> None:
        if job.final:
            self.notify(f"{job.id} already ended ({job.status}); nothing to cancel", severity="warning")
            return
        question = (f"Cancel job {job.id}?\n\n  {job.startCommand}\n\n"
                    "Its command gets SIGTERM, then SIGKILL after the grace period. This cannot be undone.")
        self._confirm_then(ConfirmScreen(question, yes="Cancel the job", no="Keep it running"),
                           lambda: self.plane.cancel_job(job.id),
                           f"{job.id}: cancel requested (SIGTERM, then SIGKILL after the grace period)")

    def confirm_cancel_build(self, build) -> None:
        if build.status != BuildStatus.BUILDING:
            self.notify(f"{build.id} already ended ({build.status}); nothing to cancel", severity="warning")
            return
        question = (f"Cancel build {build.id}?\n\n"
                    "Its running step is killed; jobs keep running the service's last successful build.")
        self._confirm_then(ConfirmScreen(question, yes="Cancel the build", no="Keep building"),
                           lambda: self.plane.cancel_build(build.id),
                           f"{build.id}: cancel requested; its running step is stopped")

    def _confirm_then(self, confirm: ConfirmScreen, do: Callable, notice: str) -> None:
        """Ask; on yes run ``do`` in the background, then say so."""

        def answered(yes: bool | None) -> None:
            if yes:
                self.command(do, lambda _result: self.notify(notice, title="Cancel"))

        self.push_screen(confirm, answered)

    def rerun(self, job, from_screen=None) -> None:
        """Ask, then run the job's command again with its plan and env overrides; the new job's
        detail takes the place of ``from_screen`` (a detail), so reruns do not stack up."""
        env = [f"{key}={value}" for key, value in job.envOverrides.items()]

        def done(new) -> None:
            self.notify(f"{new.id}: rerun of {job.id}", title="Rerun")
            if from_screen is not None and self.screen is from_screen:
                self.switch_screen(JobDetailScreen(new.id))
            else:
                self.push_screen(JobDetailScreen(new.id))

        def answered(yes: bool | None) -> None:
            if yes:
                self.command(lambda: self.plane.create_job(job.serviceId, job.startCommand, job.planId, env), done)

        question = (f"Run {job.id}'s command again, as a new job on the same plan?\n\n  {job.startCommand}\n\n"
                    "It is billed as any job.")
        self.push_screen(ConfirmScreen(question, yes="Run it again", no="Do not"), answered)

    # -- keys and the command palette ---------------------------------------------------------
    def key_sections(self) -> list[tuple[str, list[tuple[str, str]]]]:
        def rows(bindings) -> list[tuple[str, str]]:
            out = []
            for binding in bindings:
                if isinstance(binding, tuple):
                    binding = Binding(*binding)
                keys = " / ".join(self.get_key_display(Binding(key.strip(), binding.action))
                                  for key in binding.key.split(","))
                out.append((keys, binding.tooltip or binding.description or binding.action))
            return out

        everywhere = rows(self.BINDINGS) + [("^p", "Command palette: any action")]
        log_keys = [("↑ ↓", "Scroll (up turns follow off)"), ("pgup pgdn", "Page (up turns follow off)"),
                    ("home end", "Top / bottom (end follows)"), ("← →", "Sideways (wrap off)")]
        sections = [("Everywhere", everywhere)]
        for screen_class in (ServicesScreen, ServiceScreen, BuildsScreen, JobsScreen, JobDetailScreen, BillingScreen,
                             StatementScreen, ComparisonScreen, RehearsalScreen, DatabasesScreen, LaunchScreen):
            keys = rows(screen_class.BINDINGS)
            if keys:
                sections.append((SCREEN_NAMES[screen_class], keys))
        sections.append(("Logs (job detail, builds)", log_keys))
        return sections

    def action_help(self) -> None:
        if isinstance(self.screen, HelpScreen):
            return
        self.push_screen(HelpScreen(self.key_sections(), SCREEN_NAMES.get(type(self.screen))))

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield SystemCommand("Go to services", "The services: build, watch, launch (1)",
                            partial(self.action_show_tab, "services"))
        yield SystemCommand("Go to jobs", "Every job, newest first (2)", partial(self.action_show_tab, "jobs"))
        yield SystemCommand("Go to billing", "Spend by service, plan and day (3)", partial(self.action_show_tab, "billing"))
        yield SystemCommand("Month statement", "This month's lines by service, kind and plan, to the cent",
                            self.open_statement)
        yield SystemCommand("Go to databases", "Databases and Key Value, and how to connect (4)",
                            partial(self.action_show_tab, "databases"))
        yield SystemCommand("Show all keys", "Every key binding of every screen (?)", self.action_help)
        yield SystemCommand("Log stream", "Forward logs to a syslog endpoint; what was sent and dropped",
                            self.open_log_stream)
        yield SystemCommand("Up: every service", "Build what has no build, deploy what is not live", self.up)
        yield SystemCommand("Down: stop every service", "Their instances stop; their jobs run on", self.down)
        name = SCREEN_NAMES.get(type(screen))
        if name and not isinstance(screen, (LaunchScreen, ConfirmScreen)):
            for binding in screen.BINDINGS:
                if isinstance(binding, tuple):
                    binding = Binding(*binding)
                key = self.get_key_display(Binding(binding.key.split(",")[0], binding.action))
                yield SystemCommand(f"{name}: {binding.tooltip or binding.description}", f"key {key}",
                                    partial(screen.run_action, binding.action))
        for service in self.services_cache:
            yield SystemCommand(f"Launch a job on {service.name}", f"{service.type} · {service.id}",
                                partial(self.open_launcher_by_id, service.id))
            yield SystemCommand(f"Build {service.name}", "Build now; new jobs run the result once it succeeds",
                                partial(self.start_build, service))
            yield SystemCommand(f"Jobs of {service.name}", "Its jobs, newest first",
                                partial(self._push_jobs, service.id))
            yield SystemCommand(f"Builds of {service.name}", "Its builds and their logs",
                                partial(self._push_builds, service.id))
            if any(i.startswith("dpg-") for i in service.needs):
                yield SystemCommand(f"Rehearse a migration on {service.name}",
                                    "On a snapshot of its database: locks, schema diff, rows; keep or roll back",
                                    partial(self.rehearse, service.id))
            yield SystemCommand(f"Toggle watch mode of {service.name}",
                                f"Now {'on' if service.watch else 'off'}: rebuild when its files change",
                                partial(self._toggle_watch_by_id, service.id))

    def open_log_stream(self) -> None:
        from renderlocal.tui.screens.log_stream import LogStreamScreen

        self.push_screen(LogStreamScreen())

    def open_statement(self) -> None:
        self.push_screen(StatementScreen())

    def _push_jobs(self, service_id: str) -> None:
        self.push_screen(JobsScreen(service_id))

    def _push_builds(self, service_id: str) -> None:
        self.push_screen(BuildsScreen(service_id))

    def _toggle_watch_by_id(self, service_id: str) -> None:
        self.command(lambda: self.plane.state.get_service(service_id), self.toggle_watch)


def run_tui(data_dir, blueprint, chosen: bool = False) -> None:
    """Open the terminal app on the data dir; returns when it quits. If the app was the control
    plane and jobs still run, a background control plane takes them over (as a CLI would start).
    ``chosen``: the user named the blueprint (--blueprint), so the bundled samples are no surprise."""
    from renderlocal.executor.control import ControlPlane

    from renderlocal.core.datadir import bundled_blueprint

    plane = ControlPlane(data_dir, blueprint)
    notices = [f"No render.yaml here: showing the bundled samples ({plane.blueprint_path}); run render-local in "
               "your project's folder, or pass --blueprint"] if plane.blueprint_path == bundled_blueprint() and not chosen else []
    try:
        RenderLocalApp(plane, serve_api=True, notices=notices).run()
    finally:
        if plane.lock.held:
            still_running = plane.keeps_running()  # a build dies with the process: the next one ends it
            what = still_running_text(plane) if still_running else ""
            plane.close()
            if still_running:
                _hand_over(plane, what)


def still_running_text(plane) -> str:
    """What quitting leaves running, said in words: ``3 jobs (billing on) and 1 service``."""
    jobs = sum(1 for job in plane.state.unsettled_jobs() if not job.final)
    services = sum(1 for s in plane.state.list_services() if s.liveDeployId and not s.suspended)
    parts = ([f"{jobs} job{'s' if jobs != 1 else ''} (billing on)"] if jobs else []) + (
        [f"{services} service{'s' if services != 1 else ''}"] if services else [])
    return " and ".join(parts) or "jobs or services"


def _hand_over(plane, what: str = "jobs or services") -> None:
    """Start a background control plane that supervises what the app leaves running."""
    import sys

    from renderlocal.client.connect import connect

    try:
        remote = connect(plane.data_dir, plane.blueprint_path)
    except RenderLocalError as exc:
        print(f"render-local: jobs still run and no control plane supervises them ({exc}); the next one "
              "started adopts them", file=sys.stderr)
        return
    print(f"render-local: {what} still running: the control plane at {remote.endpoint.url} "
          f"(pid {remote.endpoint.pid}) keeps them (render-local down stops the services)", file=sys.stderr)


__all__ = ["RenderLocalApp", "run_tui"]
