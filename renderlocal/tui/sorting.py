"""How a list is sorted: by a column picked with ``S`` or a click on its header, or in its own
order (newest first for jobs, the blueprint's for services)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable

from rich.text import Text


@dataclass
class SortOrder:
    column: str | None = None  # None: the list's own order
    descending: bool = False

    def click(self, column: str) -> None:
        """A header clicked: sort by it; clicked again: the other way."""
        if self.column == column:
            self.descending = not self.descending
        else:
            self.column, self.descending = column, False

    def next(self, columns: list[str]) -> None:
        """``S``: the next column shown, and after the last the list's own order again."""
        if self.column not in columns:
            self.column = columns[0] if columns else None
        else:
            index = columns.index(self.column) + 1
            self.column = columns[index] if index < len(columns) else None
        self.descending = False

    def apply(self, items: Iterable, values: Callable[[object, str], object]) -> list:
        """``items`` in this order; ``values(item, column)`` gives what is compared (ties keep their
        place in the list's own order, so equal rows never swap on a redraw)."""
        items = list(items)
        if self.column is None:
            return items
        return sorted(items, key=lambda item: _comparable(values(item, self.column)), reverse=self.descending)

    def said(self, columns: list) -> str:
        """``sorted by Duration ▼``; empty in the list's own order."""
        if self.column is None:
            return ""
        label = next((c.label for c in columns if c.key == self.column), self.column)
        return f"sorted by {label} {'▼' if self.descending else '▲'}"


def _comparable(value) -> tuple:
    """Numbers before text, text without case or style; None (no value) last."""
    if value is None:
        return (2, "")
    if isinstance(value, Text):
        value = value.plain
    if isinstance(value, str):
        return (1, value.lower())
    return (0, value)
