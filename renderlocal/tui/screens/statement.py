"""This month's statement (UTC): one line per service, kind and plan, adding up to the total to
the cent, with spend per day as bars (``render-local billing statement`` prints the same)."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Footer, Header, Static

from renderlocal.core.statement import RATES_NOTE, ROUNDING_NOTE, Month, Statement, statement_of
from renderlocal.tui.columns import Column
from renderlocal.tui.screens.base import LiveScreen
from renderlocal.tui.widgets.fitted_table import FittedTable
from renderlocal.tui.widgets.spend_chart import SpendChart

COLUMNS = [
    Column("service", "Service", clip_to=12, grows_first=True),
    Column("kind", "Kind"),
    Column("plan", "Plan", drop=2),
    Column("runs", "Runs", right=True, drop=1),
    Column("seconds", "Seconds", right=True),
    Column("usd", "USD", right=True),
    Column("exact", "Exact USD", right=True, drop=3),
]


class StatementScreen(LiveScreen):
    SUB_TITLE = "Statement"
    BINDINGS = [Binding("escape", "back", "Back"), Binding("left", "month(-1)", "Month before"),
                Binding("right", "month(1)", "Month after")]

    def __init__(self) -> None:
        super().__init__()
        self.month: Month | None = None
        self.running = 0
        self.loaded_at = None  # the clock when it was last added up

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(id="statement-title")
        yield FittedTable(id="statement-lines", cursor_type="row", zebra_stripes=True)
        yield Static(id="statement-chart-title", classes="section-title")
        yield SpendChart(id="statement-chart")
        yield Footer()

    def load(self) -> Statement:
        now = self.app.now()
        self.loaded_at = now
        return statement_of(self.app.plane.state, self.month or Month.of(now), now)

    def wants(self, change) -> bool:
        return change.kind in ("job", "deploy")

    def tick(self) -> None:
        if self.running and self.in_view and self.app.now() != self.loaded_at:  # running runs add up by the second
            self.reload()

    def show(self, statement: Statement) -> None:
        self.month = statement.month
        self.running = statement.running
        title = Text()
        title.append(f"{statement.month} (UTC)  ", "bold")
        title.append("Total ", "dim")
        title.append(f"${statement.total}", "bold")
        title.append(f"  (exact ${statement.exact_total:.6f})", "dim")
        if statement.running:
            title.append(f"  {statement.running} running, still adding up", "bold #5fd7ff")
        title.append(f"\n{RATES_NOTE}; {ROUNDING_NOTE}", "dim italic")
        self.query_one("#statement-title", Static).update(title)
        rows = [(f"{line.serviceId}/{line.kind}/{line.plan.id}", [
            line.serviceName, line.kind, f"{line.plan.name} ({line.plan.id})",
            Text(str(line.runs), justify="right"), Text(f"{line.seconds:,}", justify="right"),
            Text(f"{line.amount}", justify="right", style="bold"), Text(f"{line.exact:.6f}", justify="right"),
        ]) for line in statement.lines]
        if not rows:
            rows = [("none", [Text("nothing ran this month", style="dim italic"), "", "", "", "", "", ""])]
        self.query_one("#statement-lines", FittedTable).show_rows(COLUMNS, rows)
        self.query_one("#statement-chart-title", Static).update(f"Spend per day in {statement.month} (UTC)")
        last = statement.days[-1][0] if statement.days else None
        self.query_one("#statement-chart", SpendChart).show(statement.days, last.strftime("%b %d") if last else "")

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_month(self, step: int) -> None:
        month = self.month or Month.of(self.app.now())
        self.month = month.next() if step > 0 else month.previous()
        self.reload()
