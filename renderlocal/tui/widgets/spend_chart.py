"""Spend per day as vertical bars (eighth-block precision), with the axes labelled."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from rich.console import Group
from rich.text import Text
from textual.widget import Widget

from renderlocal.tui.format import usd_short

BLOCKS = " ▁▂▃▄▅▆▇█"


def chart(days: list[tuple[date, Decimal]], width: int, height: int, last_label: str = "today") -> Group:
    rows = max(2, height - 2)
    top = max((amount for _, amount in days), default=Decimal(0))
    labels = [usd_short(top), usd_short(top / 2) if top else "", "$0"]
    label_width = max(len(label) for label in labels) + 1
    count = max(1, len(days))
    column = max(1, min(4, (width - label_width - 1) // count))
    bar_width = max(1, column - 1) if column > 1 else 1
    lines = []
    levels = [0 if top == 0 else int((amount / top * rows * 8).to_integral_value()) for _, amount in days]
    for row in range(rows):
        floor = (rows - 1 - row) * 8
        if row == 0:
            label = labels[0]
        elif row == rows // 2 and top:
            label = labels[1]
        else:
            label = ""
        line = Text(label.rjust(label_width - 1) + " ", style="dim")
        line.append("│", "dim")
        for index, level in enumerate(levels):
            fill = max(0, min(8, level - floor))
            if level > 0 and row == rows - 1 and fill == 0:
                fill = 1  # a day with any spend shows at least a sliver
            style = "bold #5fd7ff" if index == count - 1 else "#5f87d7"
            line.append(BLOCKS[fill] * bar_width, style)
            if column > bar_width:
                line.append(" " * (column - bar_width))
        lines.append(line)
    axis = Text("$0".rjust(label_width - 1) + " ", style="dim")
    axis.append("└" + "─" * (column * count), "dim")
    lines.append(axis)
    if days:
        first = days[0][0]
        middle = days[len(days) // 2][0]
        scale = [" "] * (label_width + 1 + column * count)
        for at, text in ((label_width + 1, first.strftime("%b %d")),
                         (label_width + 1 + column * (len(days) // 2), middle.strftime("%b %d")),
                         (label_width + 1 + column * (count - 1), last_label)):
            start = min(at, len(scale) - len(text))
            scale[start : start + len(text)] = list(text)
        lines.append(Text("".join(scale).rstrip(), style="dim"))
    return Group(*lines)


class SpendChart(Widget):
    DEFAULT_CSS = """
    SpendChart { height: 10; }
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.days: list[tuple[date, Decimal]] = []
        self.last_label = "today"

    def show(self, days: list[tuple[date, Decimal]], last_label: str = "today") -> None:
        """``last_label``: what the last bar is called (a past month's ends on a date, not today)."""
        self.days = list(days)
        self.last_label = last_label
        self.refresh()

    def render(self):
        width = self.content_region.width or self.size.width or 80
        height = self.content_region.height or self.size.height or 10
        return chart(self.days, width, height, self.last_label)
