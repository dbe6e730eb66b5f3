"""A running job's memory and CPU against its plan's, with the last samples as a sparkline
(the OOM demo shows memory climbing to the limit before the kill)."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

SPARKS = "▁▂▃▄▅▆▇█"
HISTORY = 20  # samples drawn (2 s apart: the last 40 s)


def sparkline(fractions: list[float | None]) -> str:
    return "".join(" " if f is None else SPARKS[min(len(SPARKS) - 1, max(0, int(f * len(SPARKS))))]
                   for f in fractions[-HISTORY:])


def level_style(fraction: float | None) -> str:
    if fraction is None:
        return "dim"
    return "bold red" if fraction >= 0.9 else "#ffaf00" if fraction >= 0.7 else "#5fd7ff"


class ResourceMeter(Static):
    DEFAULT_CSS = """
    ResourceMeter { height: 1; padding: 0 1; }
    """

    def show(self, figures: dict | None) -> None:
        """``figures``: the control plane's ``resource_figures`` of one job (None: nothing to show)."""
        latest = (figures or {}).get("latest")
        if not latest:
            self.update(Text("memory and CPU: measuring…", style="dim italic") if figures else "")
            return
        history = figures.get("history") or [latest]
        text = Text()
        memory, limit = latest.get("memoryBytes"), latest["memoryLimitBytes"]
        text.append("memory ", "dim")
        if memory is not None:
            text.append(f"{memory / 2**20:.0f} MB", level_style(latest.get("memoryFraction")))
        text.append(f" of {limit / 2**20:.0f} MB ", "dim")
        text.append(sparkline([s.get("memoryFraction") for s in history]), level_style(latest.get("memoryFraction")))
        text.append("   CPU ", "dim")
        cpu = latest.get("cpu")
        text.append("…" if cpu is None else f"{cpu:.2f}", level_style(latest.get("cpuFraction")))
        text.append(f" of {latest['cpuLimit']:g} ", "dim")
        text.append(sparkline([s.get("cpuFraction") for s in history]), level_style(latest.get("cpuFraction")))
        self.update(text)
