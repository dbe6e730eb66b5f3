"""Which columns of a table fit the terminal: each column has a drop rank (the
highest goes first), and a column that may be clipped (a command, an id) gives up
its width down to a floor before any column is dropped."""

from __future__ import annotations

from dataclasses import dataclass

from rich.cells import cell_len
from rich.text import Text

CELL_PADDING = 2  # a DataTable cell's padding, one column each side
SCROLLBAR = 2  # a DataTable's vertical scrollbar, kept free so a longer list does not change the columns


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    width: int = 0  # the least natural width: a figure that grows with the clock does not change the layout
    drop: int = 0  # 0: always shown; the highest rank is dropped first
    clip_to: int | None = None  # clipped down to this width before anything is dropped
    grows_first: bool = False  # of the clipped columns, this one gets the room left first
    right: bool = False

    def header(self, arrow: str = "") -> Text | str:
        """The label, with ▲ or ▼ when the list is sorted by this column."""
        label = f"{self.label} {arrow}" if arrow else self.label
        return Text(label, justify="right") if self.right else label


def natural_widths(columns: list[Column], rows: list[list], sorted_by: str | None = None) -> dict[str, int]:
    """Each column's width to show every cell whole (never less than its label, with room for the
    sort arrow on the ``sorted_by`` column, or its ``width``)."""
    widths = {c.key: max(c.width, cell_len(c.label) + (2 if c.key == sorted_by else 0)) for c in columns}
    for row in rows:
        for column, cell in zip(columns, row):
            widths[column.key] = max(widths[column.key], cell.cell_len if isinstance(cell, Text) else cell_len(str(cell)))
    return widths


def fit(columns: list[Column], natural: dict[str, int], width: int) -> dict[str, int]:
    """The columns shown, in their order, and the width each gets within ``width`` cells."""
    def floor(column: Column) -> int:
        return min(natural[column.key], column.clip_to) if column.clip_to is not None else natural[column.key]

    def need(shown: list[Column]) -> int:
        return sum(floor(c) + CELL_PADDING for c in shown)

    shown = list(columns)
    for column in sorted((c for c in columns if c.drop), key=lambda c: -c.drop):
        if need(shown) <= width:
            break
        shown.remove(column)
    widths = {c.key: floor(c) for c in shown}
    spare = width - need(shown)
    for column in sorted(shown, key=lambda c: not c.grows_first):  # what is left goes back to the clipped ones
        extra = max(0, min(spare, natural[column.key] - widths[column.key]))
        widths[column.key] += extra
        spare -= extra
    return widths


def clip(cell, width: int):
    """A cell cut to ``width`` cells with an ellipsis (a Text keeps its styles)."""
    text = cell if isinstance(cell, Text) else Text(str(cell))
    if text.cell_len <= width:
        return cell
    text = text.copy()
    text.truncate(width, overflow="ellipsis")
    return text
