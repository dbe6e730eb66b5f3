"""Spend: by service and by plan, today and this month, and per day."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Header, Static

from renderlocal.tui.format import BILLING_NOTE, usd
from renderlocal.tui.columns import Column
from renderlocal.tui.screens.base import LiveScreen
from renderlocal.tui.widgets.fitted_table import FittedTable
from renderlocal.core.spend import SpendReport, build_report, instance_runs
from renderlocal.tui.widgets.spend_chart import SpendChart
from renderlocal.tui.widgets.keys_footer import KeysFooter


# on a narrow terminal each table drops the job count, then today's figure (the totals above say it)
SPEND_COLUMNS = [Column("today", "Today*", drop=1, right=True), Column("month", "This month*", right=True),
                 Column("jobs", "Jobs", drop=2, right=True)]


class BillingScreen(LiveScreen):
    SUB_TITLE = "Billing"
    BINDINGS = [Binding("m", "statement", "Month statement")]

    def __init__(self) -> None:
        super().__init__()
        self.running = 0  # jobs still running in the last report

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(id="billing-totals")
        with Horizontal(id="billing-tables"):
            with Vertical(classes="billing-box"):
                yield Static("By service", classes="section-title")
                yield FittedTable(id="by-service", cursor_type="row", zebra_stripes=True)
            with Vertical(classes="billing-box"):
                yield Static("By plan", classes="section-title")
                yield FittedTable(id="by-plan", cursor_type="row", zebra_stripes=True)
        yield Static(id="chart-title", classes="section-title")
        yield SpendChart(id="spend-chart")
        yield KeysFooter()

    def load(self) -> SpendReport:
        state = self.app.plane.state
        services = {s.id: s for s in state.list_services(include_removed=True)}
        names = {service_id: service.name for service_id, service in services.items()}
        instances = instance_runs(state.list_deploys(), services)
        return build_report(state.list_jobs(), names, self.app.now(), instances)

    def wants(self, change) -> bool:
        return change.kind in ("job", "service", "deploy")

    def tick(self) -> None:
        if self.running and self.in_view:  # running jobs add up by the second: count again
            self.reload()

    def show(self, report: SpendReport) -> None:
        self.running = report.running
        totals = Text()
        totals.append("Today ", "dim")
        totals.append(usd(report.total_today, 6) + "*", "bold")
        totals.append(f"   This month (since {report.month_start:%b %d}) ", "dim")
        totals.append(usd(report.total_month, 6) + "*", "bold")
        totals.append(f"   {report.jobs_month} job{'s' if report.jobs_month != 1 else ''} this month", "dim")
        if report.running:
            totals.append(f"   {report.running} running, still adding up", "bold #5fd7ff")
        totals.append(f"\n* {BILLING_NOTE}; a job's cost is spread over the local days it ran", "dim italic")
        self.query_one("#billing-totals", Static).update(totals)
        for table_id, first, rows in (("#by-service", "Service", report.by_service),
                                      ("#by-plan", "Plan", report.by_plan)):
            cells = [(row.label, [row.label, Text(usd(row.today, 6), justify="right"),
                                  Text(usd(row.month, 6), justify="right"),
                                  Text(str(row.jobs_month), justify="right")]) for row in rows]
            if not rows:
                cells = [("none", [Text("no spend this month", style="dim italic"), "", "", ""])]
            self.query_one(table_id, FittedTable).show_rows([Column("label", first, clip_to=10)] + SPEND_COLUMNS, cells)
        days = report.days
        self.query_one("#chart-title", Static).update(
            f"Spend per day, {days[0][0]:%b %d} to today*" if days else "Spend per day")
        self.query_one("#spend-chart", SpendChart).show(days)

    def action_statement(self) -> None:
        self.app.open_statement()
