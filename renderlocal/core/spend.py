"""What jobs cost, summed by service, by plan and by local calendar day.

A job's cost (prorated per second over a 30-day month) is spread over the
local days it ran, in proportion to the seconds it ran on each.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from renderlocal.core import billing
from renderlocal.core.clock import parse_stored
from renderlocal.core.models import Service
from renderlocal.core.plans import Plan, get_plan
from renderlocal.core.statuses import JobStatus

CHART_DAYS = 30
ZERO = Decimal(0)


@dataclass
class SpendRow:
    label: str
    today: Decimal = ZERO
    month: Decimal = ZERO
    jobs_month: int = 0


@dataclass
class SpendReport:
    today: date
    month_start: date
    by_service: list[SpendRow] = field(default_factory=list)
    by_plan: list[SpendRow] = field(default_factory=list)
    days: list[tuple[date, Decimal]] = field(default_factory=list)  # oldest first, ends today
    total_today: Decimal = ZERO
    total_month: Decimal = ZERO
    running: int = 0
    jobs_month: int = 0


def _local_midnight(day: date) -> datetime:
    """The instant local ``day`` starts (a naive time read as local, DST-correct)."""
    return datetime.combine(day, time()).astimezone()


def split_by_day(start: datetime, end: datetime) -> dict[date, float]:
    """Seconds of [start, end] falling on each local calendar day."""
    out: dict[date, float] = {}
    if end <= start:
        out[start.astimezone().date()] = 0.0
        return out
    cursor = start
    while cursor < end:
        day = cursor.astimezone().date()
        boundary = min(end, _local_midnight(day + timedelta(days=1)))
        if boundary <= cursor:  # a clock oddity: never loop forever
            boundary = end
        out[day] = out.get(day, 0.0) + (boundary - cursor).total_seconds()
        cursor = boundary
    return out


@dataclass(frozen=True)
class InstanceRun:
    """A service instance's time, billed per second on the service's plan as a job is."""

    serviceId: str
    plan: Plan
    start: datetime
    end: datetime | None  # None: still running
    kind = "instance"

    @property
    def status(self) -> str:
        return JobStatus.RUNNING if self.end is None else JobStatus.SUCCEEDED

    def started(self) -> datetime:
        return self.start

    def finished(self) -> datetime | None:
        return self.end

    def cost(self, now: datetime) -> Decimal:
        return billing.cost(self.plan, billing.billable_seconds(self.start, self.end, now))


def instance_runs(deploys, services: dict[str, Service]) -> list[InstanceRun]:
    """Every instance any deploy ran, on its service's plan."""
    runs = []
    for deploy in deploys:
        service = services.get(deploy.serviceId)
        if service is None:
            continue
        for instance in deploy.instances:
            start = parse_stored(instance.get("startedAt"))
            if start is not None:
                plan = get_plan(instance["planId"]) if instance.get("planId") else service.plan  # older records: none
                runs.append(InstanceRun(deploy.serviceId, plan, start, parse_stored(instance.get("stoppedAt"))))
    return runs


def job_cost_by_day(job, now: datetime) -> dict[date, Decimal]:
    """A job's (or an instance run's) cost, spread over the local days it ran."""
    started = job.started()
    if started is None:
        return {}
    total = job.cost(now)
    spans = split_by_day(started, job.finished() or now)
    seconds = sum(spans.values())
    if seconds <= 0:
        return {next(iter(spans)): total}
    return {day: total * Decimal(part) / Decimal(seconds) for day, part in spans.items()}


def build_report(jobs, service_names: dict[str, str], now: datetime, instances=()) -> SpendReport:
    """Spend of ``jobs`` and of service ``instances`` (``InstanceRun``s), by service (jobs and
    instances apart), by plan and by day."""
    today = now.astimezone().date()
    month_start = today.replace(day=1)
    chart_start = today - timedelta(days=CHART_DAYS - 1)
    report = SpendReport(today=today, month_start=month_start)
    per_day: dict[date, Decimal] = defaultdict(Decimal)
    services: dict[str, SpendRow] = {}
    plans: dict[str, SpendRow] = {}
    for job in [*jobs, *instances]:
        if job.status == JobStatus.RUNNING:
            report.running += 1
        by_day = job_cost_by_day(job, now)
        if not by_day:
            continue
        month = sum((c for d, c in by_day.items() if month_start <= d <= today), ZERO)
        day_cost = by_day.get(today, ZERO)
        for day, amount in by_day.items():
            if chart_start <= day <= today:
                per_day[day] += amount
        if month == 0 and day_cost == 0 and not any(month_start <= d <= today for d in by_day):
            continue
        name = service_names.get(job.serviceId, job.serviceId)
        plan = job.plan
        is_instance = getattr(job, "kind", "job") == "instance"
        by_service = (job.serviceId, "instances") if is_instance else job.serviceId
        label = f"{name} · instances" if is_instance else name
        for table, key, label in ((services, by_service, label), (plans, plan.id, f"{plan.name} ({plan.id})")):
            row = table.setdefault(key, SpendRow(label))
            row.today += day_cost
            row.month += month
            row.jobs_month += 0 if is_instance else 1
        report.total_today += day_cost
        report.total_month += month
        report.jobs_month += 0 if is_instance else 1
    report.by_service = sorted(services.values(), key=lambda r: (-r.month, r.label))
    report.by_plan = sorted(plans.values(), key=lambda r: (-r.month, r.label))
    report.days = [(chart_start + timedelta(days=n), per_day.get(chart_start + timedelta(days=n), ZERO))
                   for n in range(CHART_DAYS)]
    return report
