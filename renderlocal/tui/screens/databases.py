"""Databases and Key Value: their state and how to connect (passwords masked until asked)."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Header, Static

from renderlocal.core.models import Database
from renderlocal.tui.screens.base import LiveScreen
from renderlocal.tui.columns import Column
from renderlocal.tui.widgets.fitted_table import FittedTable
from renderlocal.tui.widgets.keys_footer import KeysFooter

# the URL for this machine's psql or GUI in the table; the selected one's internal URL (what services
# and jobs get) and the whole URL for this machine
# under it; on a narrow terminal the plan goes, the kind and that URL are clipped (the note has it whole)
COLUMNS = [Column("name", "Name"), Column("kind", "Kind", clip_to=13), Column("plan", "Plan", drop=1),
           Column("status", "Status"), Column("here", "From this machine", clip_to=16, grows_first=True)]
STATUS_STYLES = {"available": "bold green", "creating": "bold #000000 on #5fd7ff", "unavailable": "dim"}
MASK = "••••••••"


class DatabasesScreen(LiveScreen):
    SUB_TITLE = "Databases"
    BINDINGS = [Binding("p", "toggle_passwords", "Show/hide passwords")]

    def __init__(self) -> None:
        super().__init__()
        self.stores: list = []
        self.passwords: dict[str, str] = {}
        self.reveal = False

    def compose(self) -> ComposeResult:
        yield Header()
        yield FittedTable(id="databases", cursor_type="row", zebra_stripes=True)
        yield Static(id="databases-note", classes="detail")
        yield KeysFooter()

    def load(self):
        state = self.app.plane.state
        stores = [*state.list_databases(), *state.list_key_values()]
        return stores, {s.id: state.password_of(s.id) for s in stores if isinstance(s, Database)}

    def wants(self, change) -> bool:
        return change.kind in ("database", "keyvalue")

    def show(self, data) -> None:
        self.stores, self.passwords = data
        self._fill()

    def _fill(self) -> None:
        self.query_one("#databases", FittedTable).show_rows(COLUMNS, [(store.id, self._cells(store))
                                                                      for store in self.stores])
        self._describe()

    def on_data_table_row_highlighted(self, _event: DataTable.RowHighlighted) -> None:
        self._describe()

    def _describe(self) -> None:
        """The note under the table: the selected store's internal URL and, if it is down, why."""
        note = Text()
        table = self.query_one("#databases", DataTable)
        if not self.stores:
            note.append("No databases or Key Value in the blueprint (render.yaml: databases:, type: keyvalue).",
                        "italic")
        else:
            store = self.stores[min(max(table.cursor_row, 0), len(self.stores) - 1)]
            note.append(f"{store.name}", "bold").append(" inside the network (what services and jobs get): ")
            note.append(self._secret(store, lambda password: store.internal_url(password))
                        if isinstance(store, Database) else store.internal_url())
            here = self._cells(store)[-1]
            note.append("\nfrom this machine: ").append(here if here != "-" else "its port is picked when it starts")
            if isinstance(store, Database):
                note.append(f"\npsql: render-local psql {store.name}")
            if store.status == "unavailable" and store.statusMessage:
                note.append("\nunavailable: ", "bold").append(store.statusMessage)
            note.append("\n\np shows the passwords · they start with the first job, deploy or up that needs them "
                        "and keep their data (down --volumes removes it)", "dim")
        self.query_one("#databases-note", Static).update(note)

    def _secret(self, store, url_of) -> str:
        password = self.passwords.get(store.id, "")
        return url_of(password).replace(password, password if self.reveal else MASK) if password else url_of("")

    def _cells(self, store) -> list:
        status = Text(store.status, style=STATUS_STYLES.get(store.status, ""))
        if isinstance(store, Database):
            running = (store.image or "").partition(":")[2] or store.version
            kind = f"PostgreSQL {running}" + (f" (asked {store.version})" if running != store.version else "")
            here = self._secret(store, store.external_url) if store.hostPort else "-"
        else:
            kind, here = "Key Value", store.external_url() if store.hostPort else "-"
        return [Text(store.name, style="bold"), kind, store.plan, status, here]

    def action_toggle_passwords(self) -> None:
        self.reveal = not self.reveal
        self._fill()
