"""render-local's terminal app: services, builds, jobs, live logs and spend.

Nothing here talks to the Docker engine while importing or composing: builds,
job launches, cancels and crash recovery run in worker threads, and the
control plane connects to the engine on first use.
"""

from __future__ import annotations

import os
import threading

from datetime import datetime
from functools import partial
from typing import Callable, Iterable

from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.dom import DOMNode
from textual.screen import ModalScreen, Screen

from renderlocal.core.clock import utcnow
from renderlocal.core.errors import RenderLocalError
from renderlocal.tui.screens.base import LiveScreen
from renderlocal.tui.screens.billing import BillingScreen
from renderlocal.tui.screens.builds import BuildsScreen
from renderlocal.tui.screens.confirm import ConfirmScreen
from renderlocal.tui.screens.help import HelpScreen
from renderlocal.tui.screens.job_detail import JobDetailScreen
from renderlocal.tui.screens.jobs import JobsScreen
from renderlocal.tui.screens.launch import LaunchScreen
from renderlocal.tui.screens.services import ServicesScreen

TICK_SECONDS = 1.0
RECOVER_SECONDS = 5.0

SCREEN_NAMES = {
    ServicesScreen: "Services",
    BuildsScreen: "Builds",
    JobsScreen: "Jobs",
    JobDetailScreen: "Job detail",
    BillingScreen: "Billing",
    LaunchScreen: "Launch a job",
    ConfirmScreen: "Confirm",
}


class RenderLocalApp(App):
    """The app. ``clock`` returns the current aware UTC time (tests freeze it);
    ``live=False`` skips crash recovery and watch mode (for snapshots of fixed
    data); ``cursor_blink=False`` freezes text cursors; ``notices`` are shown
    once at start."""

    CSS_PATH = "app.tcss"
    TITLE = "render-local"
    MODES = {"services": ServicesScreen, "jobs": JobsScreen, "billing": BillingScreen}
    BINDINGS = [
        Binding("1", "switch_mode('services')", "Services"),
        Binding("2", "switch_mode('jobs')", "Jobs"),
        Binding("3", "switch_mode('billing')", "Billing"),
        Binding("question_mark", "help", "Keys"),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(self, plane, clock: Callable[[], datetime] | None = None, *, live: bool = True,
                 cursor_blink: bool = True, notices: list[str] | None = None) -> None:
        super().__init__()
        self.plane = plane
        self.notices = list(notices or [])
        self.clock = clock or utcnow
        self.live = live
        self.cursor_blink = cursor_blink
        self.services_cache: list = []
        self._recovering = False
        self._engine_error: str | None = None

    # -- time ------------------------------------------------------------------------
    def now(self) -> datetime:
        return self.clock()

    @property
    def quitting(self) -> bool:
        return bool(getattr(self, "_exit", False))

    def check_action(self, action: str, parameters) -> bool | None:
        if self.quitting:
            return False
        if action == "switch_mode" and isinstance(self.screen, ModalScreen):
            return False  # finish (or close) the dialog first
        return True

    def push_screen(self, screen, *args, **kwargs):
        if self.quitting:
            return None  # a key or a callback arriving while the app closes opens nothing
        return super().push_screen(screen, *args, **kwargs)

    # -- start-up and the heartbeat --------------------------------------------------------
    def on_mount(self) -> None:
        self.switch_mode("services")
        self.set_interval(TICK_SECONDS, self._tick)
        for warning in self.plane.warnings:
            self.notify(warning, title="render.yaml", severity="warning", timeout=12)
        for notice in self.notices:
            self.notify(notice, severity="warning", timeout=12)
        self.background(self.plane.list_services, done=self._set_services)
        if self.live:
            self._recover()
            self.set_interval(RECOVER_SECONDS, self._recover)
            self.background(self.plane.sync_watchers, name="watch")

    def _set_services(self, services) -> None:
        self.services_cache = list(services)

    def _tick(self) -> None:
        screen = self.screen
        if isinstance(screen, LiveScreen):
            screen.tick()
        elif len(self.screen_stack) > 1 and isinstance(self.screen_stack[-2], LiveScreen):
            self.screen_stack[-2].tick()  # under a dialog: keep the figures moving

    def _recover(self) -> None:
        """Adopt jobs nobody supervises (a crashed render-local's, or a CLI's that exited)."""
        if self._recovering:
            return
        self._recovering = True

        def work():
            try:
                self.plane.engine  # no engine: say so once, try again later
                adopted, error = self.plane.recover(follow=True), None
            except Exception as exc:
                adopted, error = [], exc
            self.call_from_thread_safe(self._recovered, adopted, error)

        self.run_worker(work, thread=True, group="recover", exit_on_error=False)

    def _recovered(self, adopted: list[str], error: Exception | None) -> None:
        self._recovering = False
        if error is not None:
            text = str(error)
            if text != self._engine_error:
                self._engine_error = text
                self.notify(text + " · builds and jobs wait for it; the rest works", title="Docker engine",
                            severity="error", timeout=15)
            return
        if self._engine_error is not None:
            self._engine_error = None
            self.notify("The Docker engine answers again", title="Docker engine")
        if adopted:
            self.notify(f"Supervising {len(adopted)} job{'s' if len(adopted) != 1 else ''} "
                        "that no render-local was watching", title="Recovered")

    # -- threads -------------------------------------------------------------------------
    def call_from_thread_safe(self, callback: Callable, *args) -> None:
        """Run ``callback(*args)`` on the UI thread, without waiting (and never after exit)."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return

        def run():
            owner = getattr(callback, "__self__", None)
            if isinstance(owner, DOMNode) and owner is not self and not owner.is_attached:
                return  # its screen was closed meanwhile
            context = getattr(self, "_context", None)  # Textual's active-app context, when it has one
            try:
                if context is None:
                    callback(*args)
                else:
                    with context():
                        callback(*args)
            except Exception as exc:  # a bug must not take the app down
                self.report_error(exc)

        try:
            loop.call_soon_threadsafe(run)
        except RuntimeError:
            pass

    def background(self, work: Callable, *, done: Callable | None = None, failed: Callable | None = None,
                   name: str = "task") -> None:
        """Run ``work()`` in a thread; ``done(result)`` or an error notice on the UI thread."""

        def run():
            try:
                result = work()
            except Exception as exc:
                self.call_from_thread_safe(failed or self.report_error, exc)
                return
            if done is not None:
                self.call_from_thread_safe(done, result)

        self.run_worker(run, thread=True, group=name, exit_on_error=False)

    def report_error(self, error: Exception) -> None:
        if isinstance(error, RenderLocalError):
            self.notify(str(error), severity="error", timeout=10)
        else:
            self.notify(f"{type(error).__name__}: {error}", title="Unexpected error", severity="error", timeout=15)

    def apply_blink(self, screen: Screen) -> None:
        if not self.cursor_blink:
            for widget in screen.query("Input, TextArea"):
                widget.cursor_blink = False

    def reload_screen(self) -> None:
        for screen in self.screen_stack:
            if isinstance(screen, LiveScreen):
                screen.reload()

    # -- operations every screen offers -------------------------------------------------------
    def open_launcher(self, service) -> None:
        def launched(jobs) -> None:
            if not jobs:
                return
            if len(jobs) == 1:
                self.notify(f"{jobs[0].id} launched: {jobs[0].startCommand}", title="Job launched")
                self.push_screen(JobDetailScreen(jobs[0].id))
            else:
                self.notify(f"{len(jobs)} jobs launched on {service.name}", title="Fan-out launched")
                self.push_screen(JobsScreen(service.id))

        self.push_screen(LaunchScreen(service), launched)

    def open_launcher_by_id(self, service_id: str) -> None:
        self.background(lambda: self.plane.get_service(service_id), done=self.open_launcher)

    def start_build(self, service, then: Callable | None = None) -> None:
        self.notify(f"Building {service.name}…", title="Build")

        def built(build) -> None:
            if build.status == "succeeded":
                self.notify(f"{service.name}: build {build.id} succeeded; new jobs run it", title="Build")
            elif build.status == "canceled":
                self.notify(f"{service.name}: build {build.id} canceled; jobs keep running the last successful build",
                            title="Build canceled", severity="warning")
            else:
                reason = build.failureReason or {}
                where = f"{reason['step']}: " if reason.get("step") else ""
                self.notify(f"{service.name}: build {build.id} failed: {where}{reason.get('message', '')}",
                            title="Build failed", severity="error", timeout=15)
            self.reload_screen()
            if then:
                then()

        self.background(lambda: self.plane.build(service.id, wait=True), done=built, name="build")
        self.set_timer(0.3, self.reload_screen)  # show it building

    def toggle_watch(self, service) -> None:
        on = not service.watch

        def done(_service) -> None:
            self.notify(f"{service.name}: watch mode {'on: a change to its files rebuilds it' if on else 'off'}",
                        title="Watch")
            self.reload_screen()

        self.background(lambda: self.plane.set_watch(service.id, on), done=done, name="watch")

    def confirm_cancel(self, job, then: Callable | None = None) -> None:
        if job.final:
            self.notify(f"{job.id} already ended ({job.status}); nothing to cancel", severity="warning")
            return
        question = (f"Cancel job {job.id}?\n\n  {job.startCommand}\n\n"
                    "Its command gets SIGTERM, then SIGKILL after the grace period. This cannot be undone.")
        self._confirm_then(ConfirmScreen(question, yes="Cancel the job", no="Keep it running"),
                           lambda: self.plane.jobs.cancel(job.id),
                           f"{job.id}: cancel requested (SIGTERM, then SIGKILL after the grace period)", then)

    def confirm_cancel_build(self, build, then: Callable | None = None) -> None:
        if build.status != "building":
            self.notify(f"{build.id} already ended ({build.status}); nothing to cancel", severity="warning")
            return
        question = (f"Cancel build {build.id}?\n\n"
                    "Its running step is killed; jobs keep running the service's last successful build.")
        self._confirm_then(ConfirmScreen(question, yes="Cancel the build", no="Keep building"),
                           lambda: self.plane.builds.cancel(build.id),
                           f"{build.id}: cancel requested; its running step is stopped", then)

    def _confirm_then(self, confirm: ConfirmScreen, work: Callable, notice: str, then: Callable | None) -> None:
        """Ask; on yes run ``work`` in the background, then say so and reload."""

        def answered(yes: bool | None) -> None:
            if not yes:
                return

            def done(_result) -> None:
                self.notify(notice, title="Cancel")
                self.reload_screen()
                if then:
                    then()

            self.background(work, done=done, name="cancel")

        self.push_screen(confirm, answered)

    def rerun(self, job) -> None:
        env = [f"{key}={value}" for key, value in job.envOverrides.items()]

        def done(new) -> None:
            self.notify(f"{new.id}: rerun of {job.id}", title="Rerun")
            self.push_screen(JobDetailScreen(new.id))

        self.notify(f"Rerunning {job.id}: {job.startCommand}", title="Rerun")
        self.background(lambda: self.plane.create_job(job.serviceId, job.startCommand, job.planId, env),
                        done=done, name="launch")

    # -- keys and the command palette ---------------------------------------------------------
    def key_sections(self) -> list[tuple[str, list[tuple[str, str]]]]:
        def rows(bindings) -> list[tuple[str, str]]:
            out = []
            for binding in bindings:
                if isinstance(binding, tuple):
                    binding = Binding(*binding)
                keys = " / ".join(self.get_key_display(Binding(key.strip(), binding.action))
                                  for key in binding.key.split(","))
                out.append((keys, binding.description or binding.action))
            return out

        everywhere = rows(self.BINDINGS) + [("^p", "Command palette: any action")]
        log_keys = [("↑ ↓", "Scroll (up turns follow off)"), ("pgup pgdn", "Page (up turns follow off)"),
                    ("home end", "Top / bottom (end follows)"), ("← →", "Sideways (wrap off)")]
        sections = [("Everywhere", everywhere)]
        for screen_class in (ServicesScreen, BuildsScreen, JobsScreen, JobDetailScreen, BillingScreen, LaunchScreen):
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
                            partial(self.switch_mode, "services"))
        yield SystemCommand("Go to jobs", "Every job, newest first (2)", partial(self.switch_mode, "jobs"))
        yield SystemCommand("Go to billing", "Spend by service, plan and day (3)", partial(self.switch_mode, "billing"))
        yield SystemCommand("Show all keys", "Every key binding of every screen (?)", self.action_help)
        yield SystemCommand("Log stream", "Forward logs to a syslog endpoint; what was sent and dropped",
                            self.open_log_stream)
        name = SCREEN_NAMES.get(type(screen))
        if name and not isinstance(screen, (LaunchScreen, ConfirmScreen)):
            for binding in screen.BINDINGS:
                if isinstance(binding, tuple):
                    binding = Binding(*binding)
                key = self.get_key_display(Binding(binding.key.split(",")[0], binding.action))
                yield SystemCommand(f"{name}: {binding.description}", f"key {key}",
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
            yield SystemCommand(f"Toggle watch mode of {service.name}",
                                f"Now {'on' if service.watch else 'off'}: rebuild when its files change",
                                partial(self._toggle_watch_by_id, service.id))

    def open_log_stream(self) -> None:
        from renderlocal.tui.screens.log_stream import LogStreamScreen

        self.push_screen(LogStreamScreen(self.plane))

    def _push_jobs(self, service_id: str) -> None:
        self.push_screen(JobsScreen(service_id))

    def _push_builds(self, service_id: str) -> None:
        self.push_screen(BuildsScreen(service_id))

    def _toggle_watch_by_id(self, service_id: str) -> None:
        self.background(lambda: self.plane.get_service(service_id), done=self.toggle_watch)


def run_tui(plane) -> None:
    """Open the terminal app on ``plane`` (already refreshed); returns when it quits."""
    notices = []
    try:
        plane.start_forwarding()  # a long-running face forwards logs to the log stream, if one is set
    except Exception as exc:  # the app is still useful without it
        notices.append(f"log stream forwarding did not start: {exc}")
    app = RenderLocalApp(plane, notices=notices)
    api: dict = {}
    threading.Thread(target=_serve_api, args=(plane, app, api), name="api-start", daemon=True).start()
    try:
        app.run()
    finally:
        if "handle" in api:
            api["handle"].stop()
        plane.close()


def _serve_api(plane, app, api: dict) -> None:
    """The local API while the app is open; imported off the UI thread (uvicorn is slow to load)."""
    port = int(os.environ.get("RENDER_LOCAL_API_PORT", "8000"))
    try:
        from renderlocal.api.server import start_in_thread

        try:
            api["handle"] = start_in_thread(plane, "127.0.0.1", port)
        except Exception:  # the port is taken (another render-local?): any free one
            api["handle"] = start_in_thread(plane, "127.0.0.1", 0)
        message = f"API on {api['handle'].url} (token: render-local token)"
    except Exception as exc:
        message = f"the local API did not start: {exc}"
    try:
        app.call_from_thread(app.notify, message, timeout=6)
    except Exception:
        pass  # the app already quit


__all__ = ["RenderLocalApp", "run_tui"]
