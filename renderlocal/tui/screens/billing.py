"""Spend: by service and by plan, today and this month, and per day."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Footer, Header, Static

from renderlocal.tui.format import PRORATED, usd
from renderlocal.tui.screens.base import LiveScreen
from renderlocal.core.spend import SpendReport, build_report, instance_runs
from renderlocal.tui.widgets.spend_chart import SpendChart


class BillingScreen(LiveScreen):
    SUB_TITLE = "Billing"
    BINDINGS = []

    def __init__(self) -> None:
        super().__init__()
        self.running = 0  # jobs still running in the last report

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(id="billing-totals")
        with Horizontal(id="billing-tables"):
            with Vertical(classes="billing-box"):
                yield Static(f"By service · USD, {PRORATED}", classes="section-title")
                yield DataTable(id="by-service", cursor_type="row", zebra_stripes=True)
            with Vertical(classes="billing-box"):
                yield Static(f"By plan · USD, {PRORATED}", classes="section-title")
                yield DataTable(id="by-plan", cursor_type="row", zebra_stripes=True)
        yield Static(id="chart-title", classes="section-title")
        yield SpendChart(id="spend-chart")
        yield Footer()

    def on_mount(self) -> None:
        for table_id, first in (("#by-service", "Service"), ("#by-plan", "Plan")):
            table = self.query_one(table_id, DataTable)
            table.add_column(first, key="label")
            table.add_column(Text("Today*", justify="right"), key="today")
            table.add_column(Text("This month*", justify="right"), key="month")
            table.add_column(Text("Jobs", justify="right"), key="jobs")
        super().on_mount()

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
        totals.append(f"\n* every figure is USD {PRORATED}, as Render bills jobs; a job's cost is spread over "
                      "the local days it ran", "dim italic")
        self.query_one("#billing-totals", Static).update(totals)
        for table_id, rows in (("#by-service", report.by_service), ("#by-plan", report.by_plan)):
            table = self.query_one(table_id, DataTable)
            cells = {row.label: [row.label, Text(usd(row.today, 6), justify="right"),
                                 Text(usd(row.month, 6), justify="right"),
                                 Text(str(row.jobs_month), justify="right")] for row in rows}
            if rows and [str(k.value) for k in table.rows] == list(cells):
                for label, values in cells.items():  # same rows: update in place, the cursor stays
                    for key, value in zip(("label", "today", "month", "jobs"), values):
                        table.update_cell(label, key, value)
                continue
            table.clear()
            for label, values in cells.items():
                table.add_row(*values, key=label)
            if not rows:
                table.add_row(Text("no spend this month", style="dim italic"), "", "", "")
        days = report.days
        self.query_one("#chart-title", Static).update(
            f"Spend per day, {days[0][0]:%b %d} to today · USD, {PRORATED}" if days else "Spend per day")
        self.query_one("#spend-chart", SpendChart).show(days)
