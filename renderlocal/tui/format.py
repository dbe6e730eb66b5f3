"""How the terminal app writes times, durations, money and statuses.

Times are UTC inside and shown in local time; money is Decimal USD.
"""

from __future__ import annotations

from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from rich.text import Text

from renderlocal.core import billing
from renderlocal.core.statuses import BuildStatus, DeployStatus, JobStatus
from renderlocal.core.plans import Plan

STATUS_STYLES = {
    JobStatus.SUCCEEDED: "bold green",
    JobStatus.FAILED: "bold red",
    JobStatus.CANCELED: "bold #ffaf00",  # amber
    JobStatus.RUNNING: "bold #000000 on #5fd7ff",  # highlighted
    JobStatus.PENDING: "italic #a8a8a8",
    BuildStatus.BUILDING: "bold #000000 on #5fd7ff",
    DeployStatus.LIVE: "bold green",
    DeployStatus.DEACTIVATED: "dim",
    DeployStatus.CREATED: "italic #a8a8a8",
    DeployStatus.PRE_DEPLOY_IN_PROGRESS: "bold #000000 on #5fd7ff",
    DeployStatus.UPDATE_IN_PROGRESS: "bold #000000 on #5fd7ff",
    DeployStatus.PRE_DEPLOY_FAILED: "bold red",
    DeployStatus.UPDATE_FAILED: "bold red",
}
STATUS_ICONS = {
    JobStatus.SUCCEEDED: "✔",
    JobStatus.FAILED: "✘",
    JobStatus.CANCELED: "⊘",
    JobStatus.RUNNING: "▶",
    JobStatus.PENDING: "…",
    BuildStatus.BUILDING: "⚙",
    DeployStatus.LIVE: "●",
    DeployStatus.DEACTIVATED: "○",
    DeployStatus.CREATED: "…",
    DeployStatus.PRE_DEPLOY_IN_PROGRESS: "⚙",
    DeployStatus.UPDATE_IN_PROGRESS: "⚙",
    DeployStatus.PRE_DEPLOY_FAILED: "✘",
    DeployStatus.UPDATE_FAILED: "✘",
}
BILLING_NOTE = "USD billed per second: a monthly price over a 30-day month, or a cron plan's per-minute rate"
"""How every cost shown is reckoned, said once per screen that shows costs."""


def rate_note(plan: Plan) -> str:
    """How this plan's rate becomes a cost: cron plans have a per-minute rate, the others a monthly price."""
    if plan.cents_per_minute is not None:
        return f"{format(plan.cents_per_minute.normalize(), 'f')}¢/min, billed per second"
    return f"${format(plan.monthly_usd.normalize(), 'f')}/month, {billing.PRORATION_NOTE}"


def status_text(status: str | None, width: int | None = None) -> Text:
    """A coloured status with an icon (colour is never the only signal)."""
    status = status or JobStatus.PENDING
    label = f"{STATUS_ICONS.get(status, '?')} {status}"
    if width:
        label = label.ljust(width)
    return Text(label, style=STATUS_STYLES.get(status, ""))


def local(moment: datetime | None) -> datetime | None:
    return moment.astimezone() if moment is not None else None


def local_time(moment: datetime | None, seconds: bool = True) -> str:
    """Local date and time, e.g. 2025-01-31 14:02:03."""
    if moment is None:
        return "-"
    return local(moment).strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")


def short_time(moment: datetime | None, now: datetime) -> str:
    """Local time; the date only when it is not today."""
    if moment is None:
        return "-"
    mine, today = local(moment), local(now)
    if mine.date() == today.date():
        return mine.strftime("%H:%M:%S")
    if mine.year == today.year:
        return mine.strftime("%b %d %H:%M")
    return mine.strftime("%Y-%m-%d")


def clock_time(moment: datetime | None) -> str:
    return "-" if moment is None else local(moment).strftime("%H:%M:%S")


def duration(seconds: float | None) -> str:
    """0.4s, 12s, 3m 05s, 2h 03m, 4d 07h."""
    if seconds is None:
        return "-"
    seconds = max(0.0, seconds)
    if seconds < 10:
        return f"{seconds:.1f}s"
    whole = int(seconds)
    if whole < 60:
        return f"{whole}s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h {minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d {hours:02d}h"


def ago(moment: datetime | None, now: datetime) -> str:
    if moment is None:
        return "-"
    seconds = (now - moment).total_seconds()
    if seconds < 0:
        return "just now"
    if seconds < 60:
        return f"{int(seconds)}s ago"
    if seconds < 3600:
        return f"{int(seconds // 60)}m ago"
    if seconds < 86400:
        return f"{int(seconds // 3600)}h ago"
    return f"{int(seconds // 86400)}d ago"


def usd(amount: Decimal, places: int = 6) -> str:
    """$0.000270: always fixed-point (str() of a zero Decimal with 8 places says 0E-8)."""
    quantized = amount.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    if quantized == 0:
        quantized = abs(quantized)  # never "-0.00"
    return "$" + format(quantized, "f")


def usd_short(amount: Decimal) -> str:
    """Money in a narrow column: enough places to show a fraction of a cent."""
    if amount == 0:
        return "$0"
    if amount >= 1:
        return usd(amount, 2)
    if amount >= Decimal("0.01"):
        return usd(amount, 4)
    return usd(amount, 6)


def hourly(plan: Plan) -> Decimal:
    return billing.rate_per_hour(plan)


def hourly_text(plan: Plan) -> str:
    rate = hourly(plan)
    places = 4 if rate >= Decimal("0.01") else 6
    return f"{usd(rate, places)}/h"


def plan_label(plan: Plan) -> str:
    """Standard · 2 GB · 1 CPU."""
    return f"{plan.name} · {plan.memory_text} · {_cpu(plan.cpu)} CPU"


def _cpu(cpu: Decimal) -> str:
    return format(cpu.normalize(), "f")


def cpu_text(plan: Plan) -> str:
    return f"{_cpu(plan.cpu)} CPU"


def job_seconds(job, now: datetime) -> float | None:
    """How long the job ran (so far, while running); None before it starts."""
    started = job.started()
    if started is None:
        return None
    end = job.finished() or now
    return max(0.0, (end - started).total_seconds())


def reason_text(job) -> str:
    """Why a job ended badly, as one line (empty when it did not)."""
    reason = job.failureReason or {}
    message = reason.get("message") or ""
    if job.status == JobStatus.CANCELED and not message:
        return JobStatus.CANCELED.value
    if job.exitCode not in (None, 0) and reason.get("type") != "nonZeroExit" and message:
        message += f" (exit {job.exitCode})"
    return message


def progress_bar(step: int, steps: int, width: int = 8) -> str:
    """A build's progress through its Dockerfile's steps (the current one counted half done)."""
    done = (max(0, step - 1) + 0.5) / steps if steps else 0
    filled = min(width, int(done * width + 0.5))
    return "█" * filled + "░" * (width - filled)
