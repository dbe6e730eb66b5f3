"""Services: what each one runs, its builds, its plan and watch mode."""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Header, Static

from renderlocal.core.clock import parse_stored
from renderlocal.core.models import Build, Deploy, Service
from renderlocal.core.statuses import BuildStatus
from renderlocal.tui.format import STATUS_STYLES, ago, duration, hourly, hourly_text, progress_bar, status_text
from renderlocal.tui.columns import Column
from renderlocal.tui.screens.base import LiveScreen
from renderlocal.tui.sorting import SortOrder
from renderlocal.tui.screens.service_detail import service_state
from renderlocal.tui.widgets.fitted_table import FittedTable
from renderlocal.tui.widgets.keys_footer import KeysFooter

# drop ranks: on a narrow terminal the runtime goes first, then the URL, the plan's size and price, the
# last successful build (the panel below says it), the plan, the type; name, state, latest build and
# watch always stay
COLUMNS = [Column("name", "Name", clip_to=12), Column("type", "Type", drop=2), Column("runtime", "Runtime", drop=8),
           Column("plan", "Plan", drop=3), Column("price", "Size · rate", drop=6), Column("state", "State"),
           Column("url", "URL", drop=7), Column("last", "Last successful build", drop=4),
           Column("latest", "Latest build"), Column("watch", "Watch")]


@dataclass
class ServiceRow:
    service: Service
    last: Build | None
    latest: Build | None
    deploys: list[Deploy]


def service_plan_texts(service: Service) -> tuple[str, str]:
    """The plan's name, and its memory and hourly rate."""
    try:
        plan = service.plan
    except Exception:
        return service.planId, ""
    return plan.name, f"{plan.memory_text} · {hourly_text(plan)}"


class ServicesScreen(LiveScreen):
    TITLE = "render-local"
    SUB_TITLE = "Services"
    BINDINGS = [
        # short labels keep the footer's "? Keys" and "q Quit" in view on a laptop's terminal;
        # the help screen and the palette show the tooltips
        Binding("n", "launch", "Launch", tooltip="Launch a job"),
        Binding("b", "build", "Build", tooltip="Build now"),
        Binding("d", "deploy", "Deploy"),
        Binding("s", "suspend", "Suspend", tooltip="Suspend or resume"),
        Binding("o", "open", "Open", tooltip="Open: deploys, jobs, instance log"),
        Binding("w", "toggle_watch", "Watch", tooltip="Watch on/off: rebuild on change"),
        Binding("l", "builds", "Builds", tooltip="Builds and their logs"),
        Binding("j", "service_jobs", "Its jobs"),
        Binding("S", "sort", "Sort", show=False,  # the help screen and the palette name it
                tooltip="Sort: next column (or click a header)"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, ServiceRow] = {}
        self.order = SortOrder()

    def on_mount(self) -> None:
        self.query_one("#services", FittedTable).sort = self.order

    def compose(self) -> ComposeResult:
        yield Header()
        yield FittedTable(id="services", cursor_type="row", zebra_stripes=True)
        yield Static(id="service-detail", classes="detail")
        yield KeysFooter()

    # -- data -------------------------------------------------------------------------
    def load(self) -> list[ServiceRow]:
        state = self.app.plane.state
        builds = {b.id: b for b in state.list_builds()}
        deploys: dict[str, list[Deploy]] = {}
        for deploy in state.list_deploys():
            deploys.setdefault(deploy.serviceId, []).append(deploy)
        return [ServiceRow(s, builds.get(s.lastSuccessfulBuildId), builds.get(s.latestBuildId), deploys.get(s.id, []))
                for s in state.list_services()]

    def wants(self, change) -> bool:
        return change.kind in ("service", "build", "deploy")

    def redraw(self) -> None:
        self.show(list(self.rows.values()))  # "3m ago" and build durations move with the clock

    def show(self, rows: list[ServiceRow]) -> None:
        self.rows = {row.service.id: row for row in rows}
        self.app.services_cache = [row.service for row in rows]
        now = self.app.now()
        self.query_one("#services", FittedTable).show_rows(COLUMNS, [
            (row.service.id, self._cells(row, now)) for row in self.order.apply(rows, self._sort_value)])
        self.sub_title = " · ".join(filter(None, ["Services", self.order.said(COLUMNS)]))
        if not rows:
            self.query_one("#service-detail", Static).update(
                "No services: render-local reads them from render.yaml (--blueprint).")
        else:
            self._show_detail()

    def _sort_value(self, row: ServiceRow, column: str):
        if column in ("price", "plan"):
            try:
                plan = row.service.plan
            except Exception:  # a plan id no longer known
                return None
            return hourly(plan) if column == "price" else plan.memory_mb
        if column in ("last", "latest"):
            build = row.last if column == "last" else row.latest
            return build.createdAt if build else None
        return self._cells(row, self.app.now())[[c.key for c in COLUMNS].index(column)]

    def action_sort(self) -> None:
        self.order.next(list(self.query_one("#services", FittedTable).widths))
        self.redraw()

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        event.stop()
        self.order.click(str(event.column_key.value))
        self.redraw()

    def _cells(self, row: ServiceRow, now) -> list:
        service = row.service
        last = row.last
        if last is not None:
            last_text = Text(f"{last.id}  ")
            last_text.append(ago(parse_stored(last.finishedAt or last.createdAt), now), "dim")
        else:
            last_text = Text("none yet (b builds)", style="dim italic")
        latest = row.latest
        if latest is not None:
            latest_text = status_text(latest.status)
            progress = latest.progress if latest.status == BuildStatus.BUILDING else None
            if progress:  # the Dockerfile step it is at, as a bar
                latest_text.append("  " + progress_bar(progress["step"], progress["steps"]), "#5fd7ff")
                latest_text.append(f" {progress['step']}/{progress['steps']}", "dim")
            else:
                latest_text.append("  " + ago(parse_stored(latest.createdAt), now), "dim")
        else:
            latest_text = Text("-", style="dim")
        watch = Text("● on", style="bold green") if service.watch else Text("○ off", style="dim")
        name = Text(service.name, style="bold")
        if not service.inBlueprint:
            name.append(" (removed)", "dim")
        url = Text(service.url or "", style="#5fd7ff")
        plan, price = service_plan_texts(service)
        return [name, service.type, service.runtime, plan, Text(price, style="dim"),
                service_state(service, row.deploys), url, last_text, latest_text, watch]

    def selected_id(self) -> str | None:
        return self.query_one("#services", FittedTable).selected_key()

    def selected(self) -> Service | None:
        service_id = self.selected_id()
        row = self.rows.get(service_id)
        return row.service if row else None

    def on_data_table_row_highlighted(self, _event: DataTable.RowHighlighted) -> None:
        self._show_detail()

    def _show_detail(self) -> None:
        service_id = self.selected_id()
        row = self.rows.get(service_id)
        detail = self.query_one("#service-detail", Static)
        if row is None:
            detail.update("")
            return
        service = row.service
        text = Text()
        text.append(service.name, "bold")
        text.append(f"  {service.id}\n", "dim")
        text.append("start command  ", "dim")
        text.append((service.own_start_command or "(none: give one when launching)") + "\n")
        if service.schedule:
            text.append("schedule       ", "dim")
            text.append(f"{service.schedule} (UTC)\n")
        text.append("env vars       ", "dim")
        text.append((", ".join(sorted(service.envVars)) or "none") + "\n")
        latest = row.latest
        if latest is not None and latest.status == BuildStatus.FAILED:
            reason = latest.failureReason or {}
            text.append("latest build   ", "dim")
            text.append(f"{latest.id} failed", STATUS_STYLES[BuildStatus.FAILED])
            message = reason.get("message", "")
            if reason.get("step"):
                message = f"{reason['step']}: {message}"
            text.append(f": {message}\n", "red")
            if row.last is not None:
                text.append("               new jobs still run the last successful build " + row.last.id + "\n", "dim")
        elif latest is not None and latest.status == BuildStatus.BUILDING:
            started = parse_stored(latest.startedAt or latest.createdAt)
            text.append("latest build   ", "dim")
            text.append(f"{latest.id} building for {duration((self.app.now() - started).total_seconds())}")
            if latest.progress:
                text.append(f" · step {latest.progress['step']}/{latest.progress['steps']}: {latest.progress['text']}",
                            "dim")
            text.append("\n")
        shown = self.query_one("#services", FittedTable).widths
        if "runtime" not in shown or "price" not in shown:  # their columns did not fit
            plan, price = service_plan_texts(service)
            text.append("runs           ", "dim")
            text.append(f"{service.runtime} · {plan} · {price}\n")
        if row.last is not None and "last" not in shown:
            text.append("last build     ", "dim")  # its column did not fit
            text.append(f"{row.last.id}  ")
            text.append(ago(parse_stored(row.last.finishedAt or row.last.createdAt), self.app.now()) + "\n", "dim")
        if service.url:
            text.append("url            ", "dim")
            text.append(service.url + "\n", "#5fd7ff")
        text.append("keys: n/enter launch a job · b build · d deploy · s suspend/resume · o open (events, instances' "
                    "log) · w watch · l builds · j jobs", "dim")
        detail.update(text)

    # -- actions ------------------------------------------------------------------------
    def _need_service(self) -> Service | None:
        service = self.selected()
        if service is None:
            self.notify("No service selected", severity="warning")
        return service

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_launch()

    def action_launch(self) -> None:
        service = self._need_service()
        if service is not None:
            self.app.open_launcher(service)

    def action_build(self) -> None:
        service = self._need_service()
        if service is not None:
            self.app.start_build(service)

    def action_deploy(self) -> None:
        service = self._need_service()
        if service is not None:
            self.app.deploy_service(service)

    def action_suspend(self) -> None:
        service = self._need_service()
        if service is not None:
            self.app.toggle_suspend(service)

    def action_open(self) -> None:
        service = self._need_service()
        if service is not None:
            from renderlocal.tui.screens.service_detail import ServiceScreen

            self.app.push_screen(ServiceScreen(service.id))

    def action_toggle_watch(self) -> None:
        service = self._need_service()
        if service is not None:
            self.app.toggle_watch(service)

    def action_builds(self) -> None:
        service = self._need_service()
        if service is not None:
            from renderlocal.tui.screens.builds import BuildsScreen

            self.app.push_screen(BuildsScreen(service.id))

    def action_service_jobs(self) -> None:
        service = self._need_service()
        if service is not None:
            from renderlocal.tui.screens.jobs import JobsScreen

            self.app.push_screen(JobsScreen(service.id))

