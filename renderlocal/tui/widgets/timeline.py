"""A job's life drawn to scale: created -> started -> finished (or now)."""

from __future__ import annotations

from datetime import datetime

from rich.console import Group
from rich.text import Text
from textual.widget import Widget

from renderlocal.core.clock import parse_stored
from renderlocal.core.statuses import JobStatus
from renderlocal.tui.format import STATUS_ICONS, STATUS_STYLES, clock_time, duration, reason_text

BAR_STYLES = {
    JobStatus.SUCCEEDED: "green",
    JobStatus.FAILED: "red",
    JobStatus.CANCELED: "#ffaf00",
    JobStatus.RUNNING: "#5fd7ff",
    JobStatus.PENDING: "#a8a8a8",
}


def _position(moment: datetime, origin: datetime, total: float, width: int) -> int:
    if total <= 0:
        return 0
    return max(0, min(width - 1, round((moment - origin).total_seconds() / total * (width - 1))))


def _free(line: list[str], start: int, length: int) -> bool:
    """Room for a label at [start, start+length), with a blank column on each side."""
    if start < 0 or start + length > len(line):
        return False
    lo, hi = max(0, start - 1), min(len(line), start + length + 1)
    return all(ch == " " for ch in line[lo:hi])


def _place(line: list[str], at: int, label: str, right: bool = False) -> bool:
    """Write ``label`` starting at ``at`` (or ending there); else on the other side; else not at all."""
    starts = [at - len(label) + 1, at] if right else [at, at - len(label) + 1]
    for start in starts:
        start = min(max(0, start), len(line) - len(label))
        if _free(line, start, len(label)):
            line[start : start + len(label)] = list(label)
            return True
    return False


def timeline(job, now: datetime, width: int) -> Group:
    width = max(20, width)
    created = parse_stored(job.createdAt)
    started, finished = job.started(), job.finished()
    end = finished or now
    if started is not None and end < started:
        end = started  # the engine can stamp a fast job's finish a hair before its start
    total = max(0.0, (end - created).total_seconds())
    status = job.status
    bar = Text()
    start_x = _position(started, created, total, width) if started else None
    end_x = width - 1
    cancel_at = next((parse_stored(e["at"]) for e in job.events if e.get("message") == "cancel requested"), None)
    cancel_x = _position(cancel_at, created, total, width) if cancel_at else None
    for x in range(width):
        if x == 0:
            char, style = "●", "bold"
        elif started is not None and x == start_x:
            char, style = "●", "bold"
        elif x == end_x:
            char, style = ("●" if finished else "▶"), "bold " + BAR_STYLES.get(status, "")
        elif cancel_x is not None and x == cancel_x:
            char, style = "✕", "bold #ffaf00"
        elif started is None or x < start_x:
            char, style = "░", BAR_STYLES[JobStatus.PENDING]
        else:
            char, style = "█", BAR_STYLES.get(status, "")
        bar.append(char, style)

    labels = [" "] * width
    _place(labels, 0, f"created {clock_time(created)}")
    if finished is not None:
        _place(labels, end_x, f"finished {clock_time(finished)}", right=True)
    else:
        _place(labels, end_x, f"now {clock_time(now)}", right=True)
    if started is not None:
        label = f"started {clock_time(started)}"
        if not _place(labels, start_x, label):
            # crowded: the nearest free room to the right of the mark
            for at in range(start_x + 1, width - len(label)):
                if _free(labels, at, len(label)):
                    labels[at : at + len(label)] = list(label)
                    break
    label_text = Text("".join(labels).rstrip(), style="dim")

    queued = ((started or end) - created).total_seconds()
    parts = [f"queued {duration(queued)}"]
    if started is not None:
        parts.append(("ran " if finished else "running for ") + duration((end - started).total_seconds()))
    parts.append(f"total {duration(total)}")
    spans = Text(" · ".join(parts))

    outcome = Text()
    outcome.append(f"{STATUS_ICONS.get(status, '?')} {status}", STATUS_STYLES.get(status, ""))
    reason = reason_text(job)
    if reason and reason != status:
        outcome.append(f"  {reason}", "red" if status == JobStatus.FAILED else "#ffaf00")
    elif status == JobStatus.SUCCEEDED:
        outcome.append("  exited with code 0", "green")
    elif status == JobStatus.CANCELED:
        code = f" (exit code {job.exitCode})" if job.exitCode is not None else ""
        outcome.append(f"  stopped on request{code}", "#ffaf00")
    if job.cancelRequestedAt and status != JobStatus.CANCELED:
        outcome.append("  (cancel requested)", "#ffaf00")
    return Group(bar, label_text, spans, outcome)


class JobTimeline(Widget):
    """Created, started and finished marks, spaced by the time between them."""

    DEFAULT_CSS = """
    JobTimeline { height: 4; }
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._job = None
        self._now: datetime | None = None

    def show(self, job, now: datetime) -> None:
        self._job, self._now = job, now
        self.refresh()

    def render(self):
        if self._job is None or self._now is None:
            return Text("")
        return timeline(self._job, self._now, self.content_region.width or self.size.width)
