"""A service's builds, newest first, and the log of the highlighted one."""

from __future__ import annotations

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.widgets import DataTable, Header, Static

from renderlocal.core.clock import parse_stored
from renderlocal.core.models import Build, Service
from renderlocal.core.statuses import BuildStatus
from renderlocal.tui.format import duration, progress_bar, short_time, status_text
from renderlocal.tui.logtail import LogTail
from renderlocal.tui.screens.base import BACK, LiveScreen
from renderlocal.tui.widgets.log_view import LogView
from renderlocal.tui.columns import Column
from renderlocal.tui.widgets.fitted_table import FittedTable
from renderlocal.tui.widgets.keys_footer import KeysFooter

# on a narrow terminal the failure goes first (the log below shows it), then the trigger, the creation time
COLUMNS = [Column("id", "Build"), Column("status", "Status"), Column("trigger", "Trigger", drop=3),
           Column("created", "Created", drop=2), Column("took", "Took"),
           Column("reason", "Failure", drop=4, clip_to=16, grows_first=True)]


def build_reason(build: Build) -> str:
    reason = build.failureReason or {}
    message = reason.get("message", "")
    if reason.get("step"):
        message = f"{reason['step']}: {message}"
    return message.replace("\n", " ")


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


class BuildsScreen(LiveScreen):
    SUB_TITLE = "Builds"
    BINDINGS = [
        BACK,
        Binding("b", "build", "Build now"),
        Binding("c", "cancel_build", "Cancel build"),
        Binding("f", "toggle_follow", "Follow"),
        Binding("t", "toggle_timestamps", "Timestamps"),
        Binding("w", "toggle_wrap", "Wrap"),
    ]

    class LogRead(Message):
        def __init__(self, tail: LogTail, lines) -> None:
            super().__init__()
            self.tail = tail
            self.lines = lines

    def __init__(self, service_id: str) -> None:
        super().__init__()
        self.service_id = service_id
        self.service: Service | None = None
        self.builds: dict[str, Build] = {}
        self.tail: LogTail | None = None
        self.log_build: str | None = None
        self.log_reading = False
        self.drained: str | None = None  # the ended build whose whole log is shown

    def compose(self) -> ComposeResult:
        yield Header()
        yield FittedTable(id="builds", cursor_type="row", zebra_stripes=True)
        yield Static(id="build-log-title", classes="section-title")
        yield LogView(id="build-log", placeholder="(no build selected)")
        yield Static(id="build-log-status", classes="status-line")
        yield KeysFooter()

    def on_mount(self) -> None:
        self.set_interval(0.25, self._poll_log)

    def load(self):
        state = self.app.plane.state
        return state.get_service(self.service_id), state.list_builds(self.service_id)

    def wants(self, change) -> bool:
        return change.kind in ("build", "service")

    def redraw(self) -> None:
        if self.service is not None:
            self.show((self.service, list(self.builds.values())))  # a running build's duration

    def show(self, data) -> None:
        service, builds = data
        self.service = service
        fresh = bool(self.builds) and bool(builds) and builds[0].id not in self.builds
        self.sub_title = f"Builds of {service.name}"
        self.builds = {b.id: b for b in builds}
        now = self.app.now()
        table = self.query_one("#builds", FittedTable)
        table.show_rows(COLUMNS, [(build.id, self._cells(build, now, service)) for build in builds])
        if builds and (self.log_build is None or fresh):
            table.move_cursor(row=0)
            self._switch_log(builds[0].id)
        if not builds:
            self.query_one("#build-log-title", Static).update(
                Text(f"{service.name} has no builds yet: press b to build it", style="italic"))

    def _cells(self, build: Build, now, service) -> list:
        created = parse_stored(build.createdAt)
        started, finished = parse_stored(build.startedAt) or created, parse_stored(build.finishedAt)
        took = duration(((finished or now) - started).total_seconds())
        bid = Text(build.id)
        if build.id == service.lastSuccessfulBuildId:
            bid.append("  ★ jobs run this", "bold green")
        status = status_text(build.status)
        if build.status == BuildStatus.BUILDING and build.progress:  # the Dockerfile step it is at, as a bar
            status.append("  " + progress_bar(build.progress["step"], build.progress["steps"]), "#5fd7ff")
            status.append(f" {build.progress['step']}/{build.progress['steps']}", "dim")
        return [bid, status, build.trigger, short_time(created, now),
                took if finished else f"{took}…", Text(_clip(build_reason(build), 72), style="red")]

    def selected_id(self) -> str | None:
        return self.query_one("#builds", FittedTable).selected_key()

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key is not None and event.row_key.value != self.log_build:
            self._switch_log(str(event.row_key.value))

    def _switch_log(self, build_id: str) -> None:
        self.log_build = build_id
        self.tail = LogTail(self.app.plane.state.logs, build_id)
        view = self.query_one("#build-log", LogView)
        view.clear()
        view.placeholder = "(this build has not logged anything yet)"
        self.query_one("#build-log-title", Static).update(Text(f"Log of {build_id}", style="bold"))
        self._poll_log()

    def _poll_log(self) -> None:
        if not self.in_view or self.tail is None or self.log_reading:
            return
        build = self.builds.get(self.log_build or "")
        if build is not None and build.status != BuildStatus.BUILDING and self.drained == build.id:
            return
        self.log_reading = True
        self._read_log(self.tail)

    @work(thread=True, group="log", exit_on_error=False)
    def _read_log(self, tail: LogTail) -> None:
        try:
            lines = tail.read()
        except OSError:
            lines = []
        self.post_message(self.LogRead(tail, lines))

    def on_builds_screen_log_read(self, message: "BuildsScreen.LogRead") -> None:
        message.stop()
        self.log_reading = False
        tail, lines = message.tail, message.lines
        if tail is not self.tail:
            return
        view = self.query_one("#build-log", LogView)
        view.older_not_loaded = tail.partial
        view.append(lines)
        build = self.builds.get(tail.resource_id)
        if build is not None and build.status != BuildStatus.BUILDING and not lines:
            self.drained = build.id
        self.query_one("#build-log-status", Static).update(view.status_text())

    def on_log_view_changed(self, event: LogView.Changed) -> None:
        self.query_one("#build-log-status", Static).update(event.view.status_text())

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_build(self) -> None:
        if self.service is not None:
            self.app.start_build(self.service)

    def action_cancel_build(self) -> None:
        build = self.builds.get(self.selected_id() or "")
        if build is not None:
            self.app.confirm_cancel_build(build)

    def action_toggle_follow(self) -> None:
        view = self.query_one("#build-log", LogView)
        view.follow = not view.follow

    def action_toggle_timestamps(self) -> None:
        view = self.query_one("#build-log", LogView)
        view.timestamps = not view.timestamps

    def action_toggle_wrap(self) -> None:
        view = self.query_one("#build-log", LogView)
        view.wrap = not view.wrap

