"""A DataTable that shows the columns its width has room for (see ``columns.fit``)."""

from __future__ import annotations

from textual.widgets import DataTable

from renderlocal.tui.columns import SCROLLBAR, Column, clip, fit, natural_widths
from renderlocal.tui.sorting import SortOrder


class FittedTable(DataTable):
    """``show_rows(columns, rows)`` draws ``rows`` ((key, cells), cells in ``columns``' order)
    with the columns that fit; a resize lays the last rows out again. Same layout and keys:
    the cells are updated in place (only those of ``changed`` keys, when given), the cursor stays."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.sort: SortOrder | None = None  # the list's sort, shown as an arrow on its column's header
        self.sorted_by: tuple[str | None, bool] = (None, False)  # what the headers' arrow says now
        self.columns_wanted: list[Column] = []
        self.rows_shown: list[tuple[str, list]] = []
        self.widths: dict[str, int] = {}  # the columns shown and their widths

    def show_rows(self, columns: list[Column], rows: list[tuple[str, list]], changed: set[str] | None = None) -> None:
        self.columns_wanted, self.rows_shown = columns, rows
        sorted_by = (self.sort.column, self.sort.descending) if self.sort is not None else (None, False)
        natural = natural_widths(columns, [cells for _, cells in rows], sorted_by[0])
        widths = fit(columns, natural, (self.size.width or self.app.size.width) - SCROLLBAR)
        shown = [c for c in columns if c.key in widths]

        def cells_of(cells: list) -> list:
            return [clip(cell, widths[c.key]) for c, cell in zip(columns, cells) if c.key in widths]

        keys = [key for key, _ in rows]
        if widths == self.widths and sorted_by == self.sorted_by and keys == [str(k.value) for k in self.rows]:
            for key, cells in rows:
                if changed is None or key in changed:
                    for column, cell in zip(shown, cells_of(cells)):
                        self.update_cell(key, column.key, cell)
            return
        selected = self.selected_key()
        new_layout = widths != self.widths or sorted_by != self.sorted_by
        self.clear(columns=new_layout)
        if new_layout:
            for column in shown:
                arrow = ("▼" if sorted_by[1] else "▲") if sorted_by[0] == column.key else ""
                self.add_column(column.header(arrow), key=column.key, width=widths[column.key])
            self.widths, self.sorted_by = widths, sorted_by
        for key, cells in rows:
            self.add_row(*cells_of(cells), key=key)
        if selected in keys:
            self.move_cursor(row=keys.index(selected))

    def selected_key(self) -> str | None:
        if self.row_count == 0:
            return None
        return str(self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value)

    def on_resize(self) -> None:
        if self.columns_wanted:
            self.show_rows(self.columns_wanted, self.rows_shown)
