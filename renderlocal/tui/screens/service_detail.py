"""One service: its state and URL, its events (deploys, jobs, cron runs) on one timeline,
and the live log of its instances."""

from __future__ import annotations

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.widgets import Header, Static

from renderlocal.core.clock import parse_stored
from renderlocal.core.errors import NotFound
from renderlocal.core.models import Deploy, Job, Service
from renderlocal.tui.format import short_time, status_text
from renderlocal.tui.logtail import MergedLogTail
from renderlocal.tui.screens.base import BACK, LiveScreen
from renderlocal.tui.widgets.log_view import LogView
from renderlocal.tui.columns import Column
from renderlocal.tui.widgets.fitted_table import FittedTable
from renderlocal.tui.widgets.keys_footer import KeysFooter

EVENT_COLUMNS = [Column("at", "When"), Column("what", "What"), Column("id", "Id", clip_to=13),
                 Column("status", "Status"), Column("message", "Detail", clip_to=10, grows_first=True)]
RECENT_JOBS = 50


def service_state(service: Service, deploys: list[Deploy]) -> Text:
    """What the service is doing now, in a word or two."""
    if service.suspended:
        return Text("⏸ suspended", style="bold #ffaf00")
    if service.type == "cron":
        return Text("on schedule" if service.lastSuccessfulBuildId else "not built", style="dim")
    latest = deploys[0] if deploys else None
    if latest is not None and not latest.final:
        return Text("⚙ deploying", style="bold #000000 on #5fd7ff")
    live = next((d for d in deploys if d.id == service.liveDeployId and d.status == "live"), None)
    if live is None:
        return Text("not deployed", style="dim")
    state = Text("● live", style="bold green")
    if latest is not None and latest.id != live.id and latest.status.endswith("failed"):
        state.append(" · last deploy failed", "red")
    return state


def events_of(deploys: list[Deploy], jobs: list[Job]) -> list[tuple[str, str, str, str, str]]:
    """(at, what, id, status, message) of every deploy step and every job's start and end, newest first."""
    rows = []
    for deploy in deploys:
        for event in deploy.events:
            rows.append((event["at"], "deploy", deploy.id, event["status"], event["message"]))
    for job in jobs:
        what = "cron run" if job.trigger == "cron" else "job"
        rows.extend((event["at"], what, job.id, event["status"], event["message"]) for event in job.events)
    return sorted(rows, key=lambda row: row[0], reverse=True)


class ServiceScreen(LiveScreen):
    SUB_TITLE = "Service"
    BINDINGS = [
        BACK,
        Binding("d", "deploy", "Deploy"),
        Binding("s", "suspend", "Suspend/resume"),
        Binding("R", "rehearse", "Rehearse migration"),
        Binding("f", "toggle_follow", "Follow"),
        Binding("t", "toggle_timestamps", "Times"),
        Binding("w", "toggle_wrap", "Wrap"),
    ]

    class LogRead(Message):
        def __init__(self, lines) -> None:
            super().__init__()
            self.lines = lines

    def __init__(self, service_id: str) -> None:
        super().__init__()
        self.service_id = service_id
        self.service: Service | None = None
        self.deploys: list[Deploy] = []
        self.events: list = []
        self.tail: MergedLogTail | None = None
        self.log_reading = False

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(id="service-summary", classes="detail")
        yield FittedTable(id="service-events", cursor_type="row", zebra_stripes=True)
        yield Static(Text("Instances' log", style="bold"), classes="section-title")
        yield LogView(id="service-log", placeholder="(no instance has logged anything yet)")
        yield Static(id="service-log-status", classes="status-line")
        yield KeysFooter()

    def on_mount(self) -> None:
        state = self.app.plane.state
        self.tail = MergedLogTail(state.logs, lambda: [p for p in state.log_resources(self.service_id)
                                                       if not p.startswith("dep-")])
        self.set_interval(0.25, self._poll_log)

    def load(self):
        state = self.app.plane.state
        service = state.get_service(self.service_id)
        deploys = state.list_deploys(service.id)
        jobs = state.list_jobs(service.id, limit=RECENT_JOBS)
        return service, deploys, jobs

    def wants(self, change) -> bool:
        return change.kind in ("service", "deploy") or (change.kind == "job")

    def redraw(self) -> None:
        if self.service is not None:
            self._summary()

    def show(self, data) -> None:
        self.service, self.deploys, jobs = data
        self.sub_title = f"Service {self.service.name}"
        self._summary()
        now = self.app.now()
        rows = [(str(index), [short_time(parse_stored(at), now), what, item_id, status_text(status), message])
                for index, (at, what, item_id, status, message) in enumerate(events_of(self.deploys, jobs)[:200])]
        self.query_one("#service-events", FittedTable).show_rows(EVENT_COLUMNS, rows)

    def _summary(self) -> None:
        service = self.service
        text = Text()
        text.append(service.name, "bold")
        text.append(f"  {service.id} · {service.type} · {service.plan.name}  ", "dim")
        text.append_text(service_state(service, self.deploys))
        if service.url:
            text.append("\nurl        ", "dim")
            text.append(service.url, "bold #5fd7ff")
        if service.runs:
            live = next((d for d in self.deploys if d.id == service.liveDeployId), None)
            running = [i for i in (live.instances if live else []) if not i.get("stoppedAt")]
            text.append("\ninstances  ", "dim")
            text.append(f"{len(running)} of {service.numInstances} running")
            text.append(f"  on the private network as {service.name} and {service.internalHost}", "dim")
        if service.disk:
            text.append("\ndisk       ", "dim")
            text.append(f"{service.disk['name']} at {service.disk['mountPath']} ({service.disk['sizeGB']} GB), "
                        "in its instances only: never in jobs")
        failed = next((d for d in self.deploys if d.failureReason), None)
        if failed is not None and self.deploys and failed.id == self.deploys[0].id:
            text.append("\nlast deploy ", "dim")
            text.append(f"{failed.id} {failed.status}: {failed.failureReason.get('message', '')}", "red")
        text.append("\nkeys: d deploy · s suspend/resume · f t w the log · esc back", "dim")
        self.query_one("#service-summary", Static).update(text)

    # -- the instances' log -----------------------------------------------------------------------
    def _poll_log(self) -> None:
        if not self.in_view or self.tail is None or self.log_reading:
            return
        self.log_reading = True
        self._read_log(self.tail)

    @work(thread=True, group="log", exit_on_error=False)
    def _read_log(self, tail: MergedLogTail) -> None:
        try:
            lines = tail.read()
        except (OSError, NotFound):
            lines = []
        self.post_message(self.LogRead(lines))

    def on_service_screen_log_read(self, message: "ServiceScreen.LogRead") -> None:
        message.stop()
        self.log_reading = False
        view = self.query_one("#service-log", LogView)
        view.older_not_loaded = self.tail.partial
        if message.lines:
            view.append(message.lines)
        self.query_one("#service-log-status", Static).update(view.status_text())

    def on_log_view_changed(self, event: LogView.Changed) -> None:
        self.query_one("#service-log-status", Static).update(event.view.status_text())

    # -- keys ----------------------------------------------------------------------------------------
    def action_back(self) -> None:
        self.app.pop_screen()

    def action_deploy(self) -> None:
        if self.service is not None:
            self.app.deploy_service(self.service)

    def action_suspend(self) -> None:
        if self.service is not None:
            self.app.toggle_suspend(self.service)

    def action_rehearse(self) -> None:
        self.app.rehearse(self.service_id)

    def action_toggle_follow(self) -> None:
        view = self.query_one("#service-log", LogView)
        view.follow = not view.follow

    def action_toggle_timestamps(self) -> None:
        view = self.query_one("#service-log", LogView)
        view.timestamps = not view.timestamps

    def action_toggle_wrap(self) -> None:
        view = self.query_one("#service-log", LogView)
        view.wrap = not view.wrap
