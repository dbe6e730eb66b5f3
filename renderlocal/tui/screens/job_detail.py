"""One job: its facts, its timeline and its live log."""

from __future__ import annotations

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.widgets import Header, Input, Static

from renderlocal.core.errors import NotFound
from renderlocal.core.models import Job
from renderlocal.tui.logtail import LogTail
from renderlocal.tui.screens.base import LiveScreen
from renderlocal.tui.widgets.job_summary import JobSummary
from renderlocal.tui.widgets.log_view import LogView
from renderlocal.tui.widgets.resource_meter import ResourceMeter
from renderlocal.tui.widgets.timeline import JobTimeline
from renderlocal.tui.widgets.keys_footer import KeysFooter

LOG_POLL_SECONDS = 0.25
METER_SECONDS = 2.0  # the control plane samples every 2 s


class JobDetailScreen(LiveScreen):
    SUB_TITLE = "Job"

    class LogRead(Message):
        """New lines of the job's log (a worker read them); ``finished``: the job had ended, its log complete."""

        def __init__(self, lines, finished: bool) -> None:
            super().__init__()
            self.lines = lines
            self.finished = finished

    # the job's keys first: a narrow footer cuts off its end, never cancel or rerun
    BINDINGS = [
        Binding("c", "cancel_job", "Cancel", tooltip="Cancel the job"),
        Binding("r", "rerun", "Rerun", tooltip="Rerun: same command, plan, env"),
        Binding("escape", "back", "Back"),
        Binding("slash", "search", "Search"),
        Binding("n", "next_match", "Next match", show=False),
        Binding("N", "previous_match", "Previous match", show=False),
        Binding("f", "toggle_follow", "Follow"),
        Binding("w", "toggle_wrap", "Wrap"),
        Binding("t", "toggle_timestamps", "Times"),
        Binding("m", "toggle_only_matches", "Matches", tooltip="Matching lines only"),
        Binding("s", "shell", "Shell", show=False, tooltip="A shell in the running job (docker exec)"),
        Binding("o", "pager", "Pager", show=False, tooltip="The whole log in $PAGER (less)"),
        Binding("e", "editor", "Editor", show=False, tooltip="A copy of the whole log in $EDITOR"),
    ]

    class MeterRead(Message):
        """The job's memory and CPU figures (None: none to show)."""

        def __init__(self, figures: dict | None) -> None:
            super().__init__()
            self.figures = figures

    def __init__(self, job_id: str, max_lines: int = 5000) -> None:
        super().__init__()
        self.meter_reading = False
        self.job_id = job_id
        self.job: Job | None = None
        self.service_name = ""
        self.max_lines = max_lines
        self.tail: LogTail | None = None
        self.log_reading = False
        self.log_done = False

    def compose(self) -> ComposeResult:
        yield Header()
        yield JobSummary(id="job-summary")
        yield ResourceMeter(id="job-meter")
        yield JobTimeline(id="job-timeline")
        yield LogView(max_lines=self.max_lines, id="job-log", placeholder="(no output yet)")
        yield Input(placeholder="search the log (regular expression or text); enter keeps it, esc clears",
                    id="log-search")
        yield Static(id="log-status", classes="status-line")
        yield KeysFooter()

    def on_mount(self) -> None:
        self.query_one("#log-search", Input).display = False
        self.tail = LogTail(self.app.plane.state.logs, self.job_id, keep=self.max_lines)
        self.query_one("#job-log", LogView).focus()
        self.set_interval(LOG_POLL_SECONDS, self._poll_log)
        self._poll_log()
        self.query_one("#job-meter", ResourceMeter).display = False
        self.set_interval(METER_SECONDS, self._poll_meter)

    # -- the job ------------------------------------------------------------------------
    def load(self):
        state = self.app.plane.state
        job = state.get_job(self.job_id)
        try:
            name = state.get_service(job.serviceId).name
        except NotFound:  # a service since removed from the blueprint and the store
            name = job.serviceId
        return job, name

    def wants(self, change) -> bool:
        return change.kind == "job" and change.id == self.job_id

    def show(self, data) -> None:
        self.job, self.service_name = data
        self.sub_title = f"Job {self.job.id} · {self.service_name}"
        self._render_job()

    def tick(self) -> None:
        # while the job can still change, read it again each second: its figures never wait on a change
        # event alone (one lost on a reconnect left a finished job shown pending)
        if self.job is not None and not self.job.settled and self.in_view:
            self.reload()
        super().tick()

    def redraw(self) -> None:
        if self.job is not None:
            self._render_job()  # the cost and the timeline move with the clock

    def _render_job(self) -> None:
        now = self.app.now()
        compact = self.has_class("-narrow") or self.has_class("-short")  # the log gets the height
        self.query_one("#job-summary", JobSummary).show(self.job, self.service_name, now, compact)
        self.query_one("#job-timeline", JobTimeline).show(self.job, now)

    def on_resize(self) -> None:
        self.redraw()

    # -- live memory and CPU (the control plane samples them while a face asks) ----------------
    def _poll_meter(self) -> None:
        running = self.job is not None and self.job.status == "running"
        meter = self.query_one("#job-meter", ResourceMeter)
        if not running:
            meter.display = False
            return
        if self.in_view and self.app.live and not self.meter_reading:
            self.meter_reading = True
            self._read_meter()

    @work(thread=True, group="meter", exit_on_error=False)
    def _read_meter(self) -> None:
        try:
            figures = self.app.plane.resource_figures(self.job_id)
        except Exception:  # it ended between the two reads, or the control plane is restarting
            figures = None
        self.post_message(self.MeterRead(figures))

    def on_job_detail_screen_meter_read(self, message: "JobDetailScreen.MeterRead") -> None:
        message.stop()
        self.meter_reading = False
        meter = self.query_one("#job-meter", ResourceMeter)
        meter.display = message.figures is not None and self.job is not None and self.job.status == "running"
        meter.show(message.figures)

    # -- the log ------------------------------------------------------------------------
    def _poll_log(self) -> None:
        if not self.in_view or self.tail is None or self.log_reading or self.log_done:
            return
        self.log_reading = True
        self._read_log(self.tail, self.job is not None and self.job.settled)

    @work(thread=True, group="log", exit_on_error=False)
    def _read_log(self, tail: LogTail, finished: bool) -> None:
        try:
            lines = tail.read()
        except OSError:
            lines = []
        self.post_message(self.LogRead(lines, finished))

    def on_job_detail_screen_log_read(self, message: "JobDetailScreen.LogRead") -> None:
        message.stop()
        self.log_reading = False
        lines, finished = message.lines, message.finished
        view = self.query_one("#job-log", LogView)
        view.older_not_loaded = self.tail.partial
        if lines:
            view.append(lines)
        elif finished:
            self.log_done = True  # the job ended and every line is in
            if view.line_count == 0:
                view.placeholder = "(this job printed nothing)"
                view.refresh()
        self._update_status()

    def on_log_view_changed(self, _event: LogView.Changed) -> None:
        self._update_status()

    def _update_status(self) -> None:
        view = self.query_one("#job-log", LogView)
        self.query_one("#log-status", Static).update(view.status_text())

    # -- log keys ------------------------------------------------------------------------
    @property
    def view(self) -> LogView:
        return self.query_one("#job-log", LogView)

    def action_toggle_follow(self) -> None:
        self.view.follow = not self.view.follow

    def action_toggle_timestamps(self) -> None:
        self.view.timestamps = not self.view.timestamps

    def action_toggle_wrap(self) -> None:
        self.view.wrap = not self.view.wrap

    def action_toggle_only_matches(self) -> None:
        if not self.view.search:
            self.notify("Search first (/), then m shows only the matching lines", severity="warning")
            return
        self.view.only_matches = not self.view.only_matches

    def action_search(self) -> None:
        box = self.query_one("#log-search", Input)
        box.display = True
        box.value = self.view.search
        box.focus()

    def action_next_match(self) -> None:
        if not self.view.next_match():
            self.notify("No matches" if self.view.search else "Search first (/)", severity="warning")

    def action_previous_match(self) -> None:
        if not self.view.next_match(backwards=True):
            self.notify("No matches" if self.view.search else "Search first (/)", severity="warning")

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "log-search":
            self.view.search = event.value

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "log-search":
            event.input.display = bool(event.value)
            self.view.focus()
            if event.value:
                self.view.next_match(backwards=True)

    def action_back(self) -> None:
        box = self.query_one("#log-search", Input)
        if box.has_focus or self.view.search:
            box.value = ""
            box.display = False
            self.view.search = ""
            self.view.only_matches = False
            self.view.focus()
            return
        self.app.pop_screen()

    # -- job keys ------------------------------------------------------------------------
    def action_cancel_job(self) -> None:
        if self.job is not None:
            self.app.confirm_cancel(self.job)

    def action_rerun(self) -> None:
        if self.job is not None:
            self.app.rerun(self.job, from_screen=self)

    def action_shell(self) -> None:
        """A shell in the job's container, the app suspended meanwhile (as ``render-local ssh``)."""
        self.app.command(lambda: self.app.plane.running_container(self.job_id), self.app.open_shell)

    def action_pager(self) -> None:
        """The whole log (every line, not the last 5,000) in $PAGER, the app suspended meanwhile."""
        self.app.page_log(self.job_id)

    def action_editor(self) -> None:
        """A copy of the whole log in $EDITOR (to search, cut and save), the app suspended meanwhile."""
        self.app.page_log(self.job_id, editor=True)

