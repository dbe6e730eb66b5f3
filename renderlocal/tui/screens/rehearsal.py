"""A migration rehearsal: the job's live log beside the locks it holds, then what it changed
(rows per table, the schema diff), and the choice to keep the result or roll back."""

from __future__ import annotations

from rich.syntax import Syntax
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.widgets import DataTable, Footer, Header, Static

from renderlocal.core.row_counts import row_change
from renderlocal.tui.logtail import LogTail
from renderlocal.tui.screens.base import LiveScreen
from renderlocal.tui.widgets.log_view import LogView

LOG_POLL_SECONDS = 0.25
BAR_WIDTH = 20


class RehearsalScreen(LiveScreen):
    SUB_TITLE = "Rehearsal"

    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("k", "keep", "Keep result"),
        Binding("b", "roll_back", "Roll back"),
        Binding("j", "open_job", "Job"),
    ]

    class LogRead(Message):
        def __init__(self, lines) -> None:
            super().__init__()
            self.lines = lines

    class Decided(Message):
        def __init__(self, text: str, error: Exception | None) -> None:
            super().__init__()
            self.text = text
            self.error = error

    def __init__(self, rehearsal_id: str) -> None:
        super().__init__()
        self.rehearsal_id = rehearsal_id
        self.doc: dict | None = None
        self.tail: LogTail | None = None
        self.log_reading = False
        self.deciding = False

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(id="rehearsal-status")
        with Horizontal(id="rehearsal-live"):
            with Vertical(id="rehearsal-log-box"):
                yield Static("Job log", classes="section-title")
                yield LogView(id="rehearsal-log", placeholder="(the job starts after the snapshot)")
            with Vertical(id="rehearsal-locks-box"):
                yield Static("Locks held (strongest first, longest hold)", classes="section-title")
                yield DataTable(id="rehearsal-locks", cursor_type="row", zebra_stripes=True)
        with VerticalScroll(id="rehearsal-report"):
            yield DataTable(id="rehearsal-rows", cursor_type="row", zebra_stripes=True)
            yield Static(id="rehearsal-diff")
        yield Footer()

    def on_mount(self) -> None:
        locks = self.query_one("#rehearsal-locks", DataTable)
        locks.add_column("Table", key="table")
        locks.add_column("Mode", key="mode")
        locks.add_column(Text("Seconds", justify="right"), key="seconds")
        locks.add_column("", key="bar")
        rows = self.query_one("#rehearsal-rows", DataTable)
        for key, title in (("table", "Table"), ("before", "Rows before"), ("after", "Rows after"), ("change", "Change")):
            rows.add_column(Text(title, justify="right") if key != "table" else title, key=key)
        self.query_one("#rehearsal-report").display = False
        super().on_mount()
        self.set_interval(LOG_POLL_SECONDS, self._poll_log)

    # -- the rehearsal ----------------------------------------------------------------------------
    def load(self):
        return self.app.plane.state.get_rehearsal(self.rehearsal_id)

    def wants(self, change) -> bool:
        return (change.kind == "rehearsal" and change.id == self.rehearsal_id) or (
            change.kind == "job" and self.doc is not None and change.id == self.doc.get("jobId"))

    def show(self, doc: dict) -> None:
        self.doc = doc
        if doc.get("jobId") and self.tail is None:
            self.tail = LogTail(self.app.plane.state.logs, doc["jobId"])
        self.sub_title = f"Rehearsal {doc['id']} · {doc['startCommand']}"
        self.query_one("#rehearsal-status", Static).update(status_text(doc))
        self._show_locks(doc.get("locks") or [])
        report = doc.get("report")
        box = self.query_one("#rehearsal-report")
        box.display = report is not None
        if report is not None:
            self._show_report(report)

    def _show_locks(self, locks: list[dict]) -> None:
        table = self.query_one("#rehearsal-locks", DataTable)
        table.clear()
        longest = max((lock["seconds"] for lock in locks), default=0) or 1
        for lock in locks:
            style = "bold red" if lock["mode"] == "ACCESS EXCLUSIVE" else ""
            bar = "█" * max(1, round(lock["seconds"] / longest * BAR_WIDTH))
            table.add_row(lock["table"], Text(lock["mode"], style=style), Text(f"{lock['seconds']:g}", justify="right"),
                          Text(bar, style=style or "#5fd7ff"))

    def _show_report(self, report: dict) -> None:
        rows = self.query_one("#rehearsal-rows", DataTable)
        rows.clear()
        for row in report["rowCounts"]:
            before, after = row["before"], row["after"]
            rows.add_row(row["table"], *(Text("-" if value is None else f"{value:,}", justify="right")
                                         for value in (before, after)), Text(row_change(before, after), justify="right"))
        diff = report["schemaDiff"]
        self.query_one("#rehearsal-diff", Static).update(
            Syntax(diff, "diff", theme="ansi_dark", word_wrap=True) if diff else Text("schema: unchanged", style="dim"))

    # -- the job's log --------------------------------------------------------------------------
    def _poll_log(self) -> None:
        if self.tail is None or self.log_reading or not self.in_view:
            return
        self.log_reading = True
        self._read_log(self.tail)

    @work(thread=True, group="log", exit_on_error=False)
    def _read_log(self, tail: LogTail) -> None:
        try:
            lines = tail.read()
        except OSError:
            lines = []
        self.post_message(self.LogRead(lines))

    def on_rehearsal_screen_log_read(self, message: "RehearsalScreen.LogRead") -> None:
        message.stop()
        self.log_reading = False
        if message.lines:
            self.query_one("#rehearsal-log", LogView).append(message.lines)

    # -- keys -------------------------------------------------------------------------------------
    def action_back(self) -> None:
        self.app.pop_screen()

    def action_open_job(self) -> None:
        if self.doc and self.doc.get("jobId"):
            from renderlocal.tui.screens.job_detail import JobDetailScreen

            self.app.push_screen(JobDetailScreen(self.doc["jobId"]))

    def action_keep(self) -> None:
        self._decide(True)

    def action_roll_back(self) -> None:
        from renderlocal.tui.screens.confirm import ConfirmScreen

        if self._decidable():
            question = f"Roll the database back to {self.doc['snapshot']}? Everything the migration did is undone."
            self.app.push_screen(ConfirmScreen(question, yes="Roll back", no="Keep it"),
                                 lambda yes: self._decide(False) if yes else None)

    def _decidable(self) -> bool:
        if self.doc is None or self.doc["status"] not in ("finished", "failed") or not self.doc.get("snapshot"):
            self.notify("Wait until the rehearsal has finished", severity="warning")
            return False
        if self.doc.get("decision") or self.deciding:
            self.notify(f"Already {self.doc.get('decision') or 'deciding'}", severity="warning")
            return False
        return True

    def _decide(self, keep: bool) -> None:
        if keep and not self._decidable():
            return
        self.deciding = True
        self._send_decision(keep)

    @work(thread=True, group="decide", exit_on_error=False)
    def _send_decision(self, keep: bool) -> None:
        try:
            self.app.plane.decide_rehearsal(self.rehearsal_id, keep)
            self.post_message(self.Decided("Kept the result" if keep else "Rolled back", None))
        except Exception as exc:  # the control plane said why: show it
            self.post_message(self.Decided("", exc))

    def on_rehearsal_screen_decided(self, message: "RehearsalScreen.Decided") -> None:
        message.stop()
        self.deciding = False
        if message.error is not None:
            self.app.report_error(message.error)
        else:
            self.notify(message.text)
        self.reload()


def status_text(doc: dict) -> Text:
    status = doc["status"]
    text = Text()
    text.append(f" {status} ", style={"finished": "bold green", "failed": "bold red"}.get(status, "bold #000000 on #5fd7ff"))
    report = doc.get("report")
    if report:
        reason = (report.get("failureReason") or {}).get("message")
        text.append(f"  job {report['outcome']}" + (f" ({reason})" if reason else "")
                    + f" · {report['seconds']} s · ${report['costUSD']}")
    elif doc.get("problem"):
        text.append(f"  {doc['problem']}")
    elif doc.get("steps"):
        text.append(f"  {doc['steps'][-1]['text']}")
    if doc.get("decision"):
        text.append(f"  · {'kept' if doc['decision'] == 'kept' else 'rolled back to ' + doc['snapshot']}", style="bold")
    elif status in ("finished", "failed") and doc.get("snapshot"):
        text.append("  · k keeps the result, b rolls back", style="italic")
    return text
