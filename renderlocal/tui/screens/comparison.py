"""A plan comparison: the same command on each plan, as bars of duration and cost side by side,
the outcome (an OOM-kill on a small plan is part of the answer) and the cheapest plan that succeeded."""

from __future__ import annotations

from decimal import Decimal

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Footer, Header, Static

from renderlocal.core.plans import get_plan
from renderlocal.core.comparison import comparison_view
from renderlocal.tui.columns import Column
from renderlocal.tui.screens.base import LiveScreen
from renderlocal.tui.widgets.fitted_table import FittedTable

BAR = "█"
COLUMNS = [
    Column("plan", "Plan"),
    Column("outcome", "Outcome"),
    Column("seconds", "Seconds", right=True),
    Column("duration", "Duration"),
    Column("usd", "USD", right=True),
    Column("cost", "Cost"),
    Column("peak", "Peak memory", right=True, drop=1),
    Column("size", "Size", drop=2),
]
BAR_CELLS = 16  # 6 on a narrow terminal: the bars stay whole beside the figures


class ComparisonScreen(LiveScreen):
    SUB_TITLE = "Plan comparison"
    BINDINGS = [Binding("escape", "back", "Back"), Binding("enter", "open_job", "Job")]

    def __init__(self, comparison_id: str) -> None:
        super().__init__()
        self.comparison_id = comparison_id
        self.view: dict | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(id="comparison-title")
        yield FittedTable(id="comparison-runs", cursor_type="row", zebra_stripes=True)
        yield Static(id="comparison-verdict")
        yield Footer()

    def load(self):
        state = self.app.plane.state
        doc = state.get_comparison(self.comparison_id)
        jobs = {job_id: state.get_job(job_id) for job_id in doc["jobIds"].values()}
        return comparison_view(doc, jobs, self.app.now())

    def wants(self, change) -> bool:
        return change.kind == "comparison" and change.id == self.comparison_id or (
            change.kind == "job" and self.view is not None and any(run.get("jobId") == change.id for run in self.view["runs"]))

    def tick(self) -> None:
        if self.view is not None and not self.view["finished"] and self.in_view:
            self.reload()  # running runs add up by the second

    def show(self, view: dict) -> None:
        self.view = view
        mode = "one after another" if view["sequential"] else "all at once"
        title = Text()
        title.append(view["startCommand"], "bold")
        title.append(f"  on {len(view['runs'])} plans, {mode}", "dim")
        self.query_one("#comparison-title", Static).update(title)
        longest = max((run.get("seconds", 0) for run in view["runs"]), default=0) or 1
        dearest = max((Decimal(run.get("costUSD", "0")) for run in view["runs"]), default=Decimal(0)) or Decimal(1)
        cheapest = view.get("cheapestPlanId")
        cells = BAR_CELLS if self.app.size.width >= 120 else 6
        rows = []
        for run in view["runs"]:
            seconds = run.get("seconds")
            cost = Decimal(run["costUSD"]) if "costUSD" in run else None
            mark = "bold green" if run["planId"] == cheapest else ""
            peak = run.get("peakMemoryBytes")
            plan = get_plan(run["planId"])
            rows.append((run["planId"], [
                Text(("★ " if run["planId"] == cheapest else "  ") + run["planName"], style=mark),
                outcome_text(run),
                Text("" if seconds is None else str(seconds), justify="right"),
                Text(bar(seconds or 0, longest, cells), style="#5fd7ff"),
                Text("" if cost is None else f"{cost:f}", justify="right"),
                Text(bar(cost or 0, dearest, cells), style="#ffaf00"),
                Text(f"{peak / 2**20:.0f} MB" if peak else "", justify="right"),
                f"{plan.memory_text}, {run['cpu']} CPU",
            ]))
        self.query_one("#comparison-runs", FittedTable).show_rows(COLUMNS, rows)
        verdict = Text()
        if cheapest:
            verdict.append(f"★ {get_plan(cheapest).name} ({cheapest}) is the cheapest plan that succeeded", "bold green")
        elif view["finished"]:
            verdict.append("no plan ran it to success", "bold red")
        else:
            verdict.append("running…", "italic")
        if view.get("problem"):
            verdict.append(f"  {view['problem']}", "bold red")
        self.query_one("#comparison-verdict", Static).update(verdict)

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_open_job(self) -> None:
        key = self.query_one("#comparison-runs", FittedTable).selected_key()
        run = next((r for r in (self.view or {}).get("runs", []) if r["planId"] == key), None)
        if run and run.get("jobId"):
            from renderlocal.tui.screens.job_detail import JobDetailScreen

            self.app.push_screen(JobDetailScreen(run["jobId"]))


def bar(value, top, cells: int = BAR_CELLS) -> str:
    """A bar of up to ``cells`` cells; a run that took any time shows at least one."""
    if not value:
        return ""
    return BAR * max(1, round(float(value) / float(top) * cells))


def outcome_text(run: dict) -> Text:
    reason = run.get("failureReason") or {}
    if reason.get("type") == "oomKilled":
        return Text("OOM-killed", style="bold red")
    if run["status"] == "failed":
        return Text(reason.get("message", "failed"), style="bold red")
    styles = {"succeeded": "bold green", "running": "bold #000000 on #5fd7ff", "waiting": "italic #a8a8a8",
              "pending": "italic #a8a8a8", "canceled": "bold #ffaf00"}
    return Text(run["status"], style=styles.get(run["status"], ""))
