"""A job's facts: what it runs, on which plan, how it ended and what it cost."""

from __future__ import annotations

from datetime import datetime

from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from renderlocal.core.clock import parse_stored
from renderlocal.core.statuses import JobStatus
from renderlocal.tui.format import (PRORATED, duration, hourly_text, job_seconds, local_time, plan_label,
                                    reason_text, status_text, usd)


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
    cost = Text(usd(job.cost(now), 8), style="bold")
    cost.append("  so far" if job.status == JobStatus.RUNNING else "", "bold")
    cost.append(f"  ({PRORATED})", "dim")
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

    def show(self, job, service_name: str, now: datetime) -> None:
        self.update(summary(job, service_name, now))
