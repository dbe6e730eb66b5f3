"""Jobs, newest first: every service's or one service's, filtered as you type."""

from __future__ import annotations

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.message import Message
from textual.widgets import DataTable, Header, Input, Static

from renderlocal.core.clock import parse_stored
from renderlocal.core.models import Job
from renderlocal.core.statuses import JobStatus
from renderlocal.tui.format import (duration, job_seconds, local_time, reason_text, short_time, status_text,
                                    usd)
from renderlocal.tui.columns import Column
from renderlocal.tui.screens.base import LiveScreen
from renderlocal.tui.sorting import SortOrder
from renderlocal.tui.widgets.fitted_table import FittedTable
from renderlocal.tui.widgets.keys_footer import KeysFooter
from renderlocal.tui.widgets.resource_meter import level_style

# drop ranks: on a narrow terminal the creation time goes first, then the plan, the reason (the line
# under the table says it), the service, the memory (job detail has its meter); the job, its status,
# duration and cost always stay
COLUMNS = [Column("id", "Job", clip_to=13), Column("service", "Service", drop=3), Column("status", "Status"),
           Column("reason", "Why", drop=4), Column("command", "Command", clip_to=12, grows_first=True),
           Column("plan", "Plan", drop=5), Column("created", "Created", width=8, drop=6),
           Column("duration", "Duration", width=8), Column("memory", "Mem", width=4, drop=2, right=True),
           Column("cost", "Cost USD*", width=9, right=True)]
MEMORY_POLL_SECONDS = 2.0  # the control plane samples running jobs this often, while someone looks
STATUS_FILTERS = (None, JobStatus.RUNNING, JobStatus.PENDING, JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELED)
LIST_LIMIT = 1000  # newest jobs loaded; older ones stay a command away (render-local jobs list)


def _clip(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


class JobsScreen(LiveScreen):
    SUB_TITLE = "Jobs"
    BINDINGS = [
        Binding("enter", "open", "Open", show=False),
        Binding("slash", "filter", "Filter"),
        Binding("s", "status_filter", "Status", tooltip="Status filter"),
        Binding("n", "launch", "Launch", tooltip="Launch a job"),
        Binding("c", "cancel_job", "Cancel", tooltip="Cancel the job"),
        Binding("r", "rerun", "Rerun"),
        Binding("a", "all_services", "All services"),
        Binding("S", "sort", "Sort", show=False,  # the help screen and the palette name it
                tooltip="Sort: next column (or click a header)"),
        Binding("escape", "back", "Back", tooltip="Back / clear the filter"),
    ]

    def __init__(self, service_id: str | None = None) -> None:
        super().__init__()
        self.service_id = service_id
        self.status_filter: str | None = None
        self.text_filter = ""
        self.jobs: list[Job] = []
        self.names: dict[str, str] = {}
        self.shown: dict[str, str] = {}  # job id -> the status its row shows
        self.order = SortOrder()
        self.memory: dict[str, dict] = {}  # running job id -> its latest memory and CPU sample
        self.memory_reading = False

    class MemoryRead(Message):
        def __init__(self, latest: dict[str, dict]) -> None:
            super().__init__()
            self.latest = latest

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="jobs-bar", classes="bar"):
            yield Static(id="jobs-scope")
            filter_box = Input(placeholder="filter: id, service, command, status, plan…", id="jobs-filter")
            filter_box.display = False
            yield filter_box
        yield FittedTable(id="jobs", cursor_type="row", zebra_stripes=True)
        yield Static(id="job-detail-line", classes="detail")
        yield Static(id="jobs-note", classes="status-line")
        yield KeysFooter()

    def on_mount(self) -> None:
        self.set_interval(MEMORY_POLL_SECONDS, self._poll_memory)
        self.query_one("#jobs", FittedTable).sort = self.order
        self.query_one("#jobs", DataTable).focus()
        self._show_scope()

    # -- data --------------------------------------------------------------------------
    def load(self):
        state = self.app.plane.state
        names = {s.id: s.name for s in state.list_services(include_removed=True)}
        statuses = [self.status_filter] if self.status_filter else None
        return names, state.list_jobs(self.service_id, statuses, limit=LIST_LIMIT)

    def wants(self, change) -> bool:
        return change.kind in ("job", "service")

    def redraw(self) -> None:
        self._fill()  # running jobs' durations and costs

    def show(self, data) -> None:
        self.names, self.jobs = data
        self._show_scope()
        self._fill()

    def _visible(self) -> list[Job]:
        return self.order.apply(self._matching(), self._sort_value)

    def _sort_value(self, job: Job, column: str):
        now = self.app.now()
        if column == "duration":
            return job_seconds(job, now)
        if column == "cost":
            return job.cost(now)
        if column == "created":
            return job.createdAt
        if column == "memory":
            return (self.memory.get(job.id) or {}).get("memoryFraction") or 0.0
        return self._cells(job, now, [c for c in COLUMNS if c.key == column])[0]

    def _matching(self) -> list[Job]:
        needle = self.text_filter.lower().strip()
        if not needle:
            return self.jobs
        out = []
        for job in self.jobs:
            hay = " ".join([job.id, self.names.get(job.serviceId, job.serviceId), job.startCommand, job.status,
                            job.planId, _plan_name(job), reason_text(job)]).lower()
            if all(word in hay for word in needle.split()):
                out.append(job)
        return out

    def _fill(self) -> None:
        now = self.app.now()
        jobs = self._visible()
        table = self.query_one("#jobs", FittedTable)
        columns = [c for c in COLUMNS if not (self.service_id and c.key == "service")]  # one service: said above
        moving = {job.id for job in jobs if not job.final or self._changed(job)}
        table.show_rows(columns, [(job.id, self._cells(job, now, columns)) for job in jobs], moving)
        self.shown = {job.id: job.status for job in jobs}
        shown, total = len(jobs), len(self.jobs)
        note = Text()
        note.append(f"{shown} job{'s' if shown != 1 else ''}")
        if shown != total:
            note.append(f" of {total}")
        if total >= LIST_LIMIT:
            note.append(f" (the newest {LIST_LIMIT}; older: render-local jobs list)")
        note.append(" · * USD, billed per second (billing, 3, says how)", "dim")
        if not self.jobs:
            note.append(" · no jobs yet: press n to launch one" if not self.status_filter else
                        f" · none {self.status_filter}: s changes the status filter", "italic")
        elif not jobs:
            note.append(" · nothing matches the filter: esc clears it", "italic")
        self.query_one("#jobs-note", Static).update(note)
        self._show_detail()

    # -- running jobs' memory ------------------------------------------------------------
    def _poll_memory(self) -> None:
        """Ask for the running jobs' latest samples while any is listed (the OOM demo climbs here)."""
        if self.memory_reading or not self.in_view or not any(job.status == JobStatus.RUNNING for job in self.jobs):
            if self.memory and not any(job.status == JobStatus.RUNNING for job in self.jobs):
                self.memory = {}
            return
        self.memory_reading = True
        self._read_memory()

    @work(thread=True, group="memory", exit_on_error=False)
    def _read_memory(self) -> None:
        try:
            figures = self.app.plane.resource_figures()
        except Exception:  # the engine or the control plane away a moment: the next poll asks again
            figures = []
        self.post_message(self.MemoryRead({f["id"]: f["latest"] for f in figures if f.get("latest")}))

    def on_jobs_screen_memory_read(self, message: "JobsScreen.MemoryRead") -> None:
        message.stop()
        self.memory_reading = False
        if message.latest != self.memory:
            self.memory = message.latest
            self._fill()

    def on_data_table_row_highlighted(self, _event: DataTable.RowHighlighted) -> None:
        self._show_detail()

    def _show_detail(self) -> None:
        job = self.selected()
        panel = self.query_one("#job-detail-line", Static)
        if job is None:
            panel.display = False
            return
        panel.display = True
        text = Text()
        text.append(job.id, "bold")
        text.append(f"  {self.names.get(job.serviceId, job.serviceId)} · ", "dim")
        text.append_text(status_text(job.status))
        reason = reason_text(job)
        if reason and reason != job.status:
            text.append(f"  {reason}", "red" if job.status == JobStatus.FAILED else "#ffaf00")
        shown = self.query_one("#jobs", FittedTable).widths
        if "plan" not in shown:  # its column did not fit
            text.append(f"  on {_plan_name(job)}", "dim")
        text.append("\ncommand  ", "dim")
        text.append(job.startCommand)
        if self.has_class("-narrow") or self.has_class("-short"):  # the list gets the height
            panel.update(text)
            return
        text.append("\nstarted  ", "dim")
        text.append(local_time(job.started()))
        text.append("   finished  ", "dim")
        text.append(local_time(job.finished()))
        if job.envOverrides:
            text.append("   env  ", "dim")
            text.append(", ".join(f"{k}={v}" for k, v in sorted(job.envOverrides.items())))
        text.append("\nenter opens its log · c cancel · r rerun (same command, plan and env overrides)", "dim")
        panel.update(text)

    def on_resize(self) -> None:
        self._show_detail()

    def _changed(self, job: Job) -> bool:
        return self.shown.get(job.id) != job.status

    def _cells(self, job: Job, now, columns: list[Column]) -> list:
        cells = {
            "id": job.id,
            "service": self.names.get(job.serviceId, job.serviceId),
            "status": status_text(job.status),
            "reason": short_reason(job),
            "command": _clip(job.startCommand, 36),
            "plan": _plan_name(job),
            "created": short_time(parse_stored(job.createdAt), now),
            "duration": job_duration_text(job, now),
            "memory": self._memory_text(job),
            "cost": Text(usd(job.cost(now), 6), justify="right"),
        }
        return [cells[column.key] for column in columns]

    def _memory_text(self, job: Job) -> Text:
        """A running job's memory as a share of its plan's, coloured as job detail's meter."""
        latest = self.memory.get(job.id) if job.status == JobStatus.RUNNING else None
        fraction = (latest or {}).get("memoryFraction")
        return Text("" if fraction is None else f"{fraction:.0%}", style=level_style(fraction), justify="right")

    def _show_scope(self) -> None:
        scope = Text()
        if self.service_id:
            scope.append("service ", "dim")
            scope.append(self.names.get(self.service_id, self.service_id), "bold")
        else:
            scope.append("all services", "bold")
        scope.append(" · status ", "dim")
        scope.append(self.status_filter or "any", "bold")
        if self.text_filter:
            scope.append(" · filter ", "dim")
            scope.append(repr(self.text_filter), "bold")
        if self.order.column:
            scope.append(f" · {self.order.said(COLUMNS)}", "dim")
        self.sub_title = "Jobs of " + self.names.get(self.service_id, self.service_id) if self.service_id else "Jobs"
        self.query_one("#jobs-scope", Static).update(scope)

    def selected_id(self) -> str | None:
        return self.query_one("#jobs", FittedTable).selected_key()

    def selected(self) -> Job | None:
        job_id = self.selected_id()
        return next((job for job in self.jobs if job.id == job_id), None)

    # -- filtering ------------------------------------------------------------------------
    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "jobs-filter":
            self.text_filter = event.value
            self._show_scope()
            self._fill()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "jobs-filter":
            self.query_one("#jobs", DataTable).focus()

    def action_filter(self) -> None:
        box = self.query_one("#jobs-filter", Input)
        box.display = True
        box.focus()

    def action_status_filter(self) -> None:
        index = STATUS_FILTERS.index(self.status_filter)
        self.status_filter = STATUS_FILTERS[(index + 1) % len(STATUS_FILTERS)]
        self._show_scope()
        self.reload()

    def action_sort(self) -> None:
        self.order.next(list(self.query_one("#jobs", FittedTable).widths))
        self._show_scope()
        self._fill()

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        event.stop()
        self.order.click(str(event.column_key.value))
        self._show_scope()
        self._fill()

    def action_all_services(self) -> None:
        if self.service_id is not None:
            self.service_id = None
            self._show_scope()
            self.reload()

    def action_back(self) -> None:
        box = self.query_one("#jobs-filter", Input)
        if box.display and (box.has_focus or self.text_filter):
            box.value = ""
            box.display = False
            self.text_filter = ""
            self.query_one("#jobs", DataTable).focus()
            self._show_scope()
            self._fill()
        elif len(self.app.screen_stack) > 1:
            self.app.pop_screen()

    # -- job actions ------------------------------------------------------------------------
    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_open()

    def action_open(self) -> None:
        job = self.selected()
        if job is not None:
            from renderlocal.tui.screens.job_detail import JobDetailScreen

            self.app.push_screen(JobDetailScreen(job.id))

    def action_launch(self) -> None:
        service_id = self.service_id or (self.selected().serviceId if self.selected() else None)
        if service_id is None:
            self.notify("Pick a service first: launch from the services screen (1)", severity="warning")
            return
        self.app.open_launcher_by_id(service_id)

    def action_cancel_job(self) -> None:
        job = self.selected()
        if job is not None:
            self.app.confirm_cancel(job)

    def action_rerun(self) -> None:
        job = self.selected()
        if job is not None:
            self.app.rerun(job)


def _plan_name(job: Job) -> str:
    try:
        return job.plan.name
    except Exception:
        return job.planId


SHORT_REASONS = {"nonZeroExit": "exit {exitCode}", "oomKilled": "OOM-killed", "timedOut": "timed out",
                 "lost": "lost", "startFailed": "did not start"}


def job_duration_text(job: Job, now) -> Text:
    """How long it ran (so far); before it starts, how long it has waited, counting; a job that
    ended before it started never ran (a wait that stopped counting would look stuck)."""
    seconds = job_seconds(job, now)
    if seconds is not None:
        return Text(duration(seconds) + ("…" if job.status == JobStatus.RUNNING else ""))
    if job.final:
        return Text("never ran", style="dim")
    return Text(f"waiting {duration((now - parse_stored(job.createdAt)).total_seconds())}", style="dim")


def short_reason(job: Job) -> Text:
    """A failure's short why (the detail line and screen say it in full)."""
    reason = job.failureReason or {}
    short = SHORT_REASONS.get(reason.get("type", ""))
    return Text(short.format(exitCode=reason.get("exitCode", job.exitCode)) if short else "", style="red")
