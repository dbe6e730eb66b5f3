"""A job's facts: what it runs, on which plan, how it ended and what it cost."""

from __future__ import annotations

from datetime import datetime

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from renderlocal.core.clock import parse_stored
from renderlocal.core.statuses import JobStatus
from renderlocal.core.billing import billable_seconds
from renderlocal.tui.format import (duration, hourly_text, job_seconds, local_time, plan_label, rate_note, reason_text,
                                    status_text, usd)


def cost_text(job, now: datetime) -> Text:
    """The cost, the whole seconds billed (a run of 0.2s bills 1 s) and how the plan's rate is reckoned."""
    cost = Text(usd(job.cost(now), 8), style="bold")
    cost.append(" so far" if job.status == JobStatus.RUNNING else "", "bold")
    if job.started() is not None:
        cost.append(f"  billed for {billable_seconds(job.started(), job.finished(), now)} s", "dim")
    try:
        cost.append(f" ({rate_note(job.plan)})", "dim")
    except Exception:  # a plan id no longer known: the figure says enough
        pass
    return cost


def compact_summary(job, now: datetime) -> Text | Group:
    """Two lines for a small terminal (the header names the job and its service): how it went and
    what it cost, what it ran; a third says why it failed, when it did."""
    text = status_text(job.status)
    if job.exitCode is not None:
        text.append(f" exit code {job.exitCode}")
    seconds = job_seconds(job, now)
    if seconds is not None:
        text.append(f" · {'running for' if job.status == JobStatus.RUNNING else 'ran'} {duration(seconds)}", "dim")
    elif job.final:
        text.append(" · never ran", "dim")
    else:
        text.append(f" · waiting {duration((now - parse_stored(job.createdAt)).total_seconds())}", "dim")
    text.append(" · ", "dim")
    text.append(usd(job.cost(now), 8), "bold")
    if seconds is not None:
        text.append(f" billed for {billable_seconds(job.started(), job.finished(), now)} s", "dim")
    try:
        text.append(f" · {job.plan.name}", "dim")
    except Exception:
        text.append(f" · {job.planId}", "dim")
    text.append("\n")
    text.append(job.startCommand, "bold")
    text.no_wrap, text.overflow = True, "ellipsis"  # one line each
    reason = reason_text(job)
    if not reason or reason == job.status:
        return text
    why = Text(reason, style="red" if job.status == JobStatus.FAILED else "#ffaf00")
    return Group(text, why)


def summary(job, service_name: str, now: datetime) -> Table:
    grid = Table.grid(padding=(0, 2), expand=True)
    grid.add_column(style="dim", no_wrap=True)
    grid.add_column(ratio=1)
    grid.add_column(style="dim", no_wrap=True)
    grid.add_column(ratio=1)
    try:
        plan = job.plan
        plan_text = Text(f"{plan_label(plan)} · {hourly_text(plan)}  ")
        plan_text.append(job.planId, "dim")
    except Exception:
        plan_text = Text(job.planId)
    status = status_text(job.status)
    if job.exitCode is not None:
        status.append(f"  exit code {job.exitCode}", "")
    reason = reason_text(job)
    cost = cost_text(job, now)
    env = ", ".join(f"{k}={v}" for k, v in sorted(job.envOverrides.items())) or "none"
    seconds = job_seconds(job, now)
    grid.add_row("job", Text(job.id, style="bold"), "status", status)
    grid.add_row("service", f"{service_name}  ({job.serviceId})", "reason",
                 Text(reason or "-", style="red" if job.status == JobStatus.FAILED and reason else ""))
    grid.add_row("command", Text(job.startCommand, style="bold"), "created", local_time(parse_stored(job.createdAt)))
    grid.add_row("plan", plan_text, "started", local_time(job.started()))
    grid.add_row("env overrides", env, "finished", local_time(job.finished()))
    grid.add_row("build", job.buildId, "duration",
                 duration(seconds) + (" (running)" if job.status == JobStatus.RUNNING else "") if seconds is not None else "-")
    grid.add_row("", "", "cost", cost)
    return grid


class JobSummary(Static):
    DEFAULT_CSS = """
    JobSummary { height: auto; padding: 0 1; }
    """

    def show(self, job, service_name: str, now: datetime, compact: bool = False) -> None:
        self.update(compact_summary(job, now) if compact else summary(job, service_name, now))
