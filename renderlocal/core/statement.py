"""A month's billing statement: one line per service, kind and plan, adding up to the cent.

Months are UTC calendar months, as an invoice's are. A run's time is counted in
the month it fell in: a service instance up since last month bills this month
only for the seconds since the 1st. Each run bills whole seconds, rounded up,
and a started job at least one (as ``Job.cost``); a line's exact amount is the
sum of its runs' exact costs. Lines are then rounded to the cent so that they
add up to the total rounded to the cent: each line is rounded down and the
cents left over go to the lines with the largest remainders (the largest
remainder method), so no line is more than a cent from its exact amount.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal

from renderlocal.core import billing
from renderlocal.core.errors import InvalidInput
from renderlocal.core.plans import Plan

CENT = Decimal("0.01")
KIND_ORDER = {"job": 0, "cron run": 1, "instance": 2}
RATES_NOTE = ("billed per second: a service plan's monthly rate / 2,592,000 s (a 30-day month), "
              "a cron plan's per-minute rate / 60")
ROUNDING_NOTE = ("whole seconds per run, rounded up (a started job bills at least 1 s); "
                 "lines rounded to the cent so they add up to the total")


@dataclass(frozen=True)
class Month:
    year: int
    month: int

    @classmethod
    def parse(cls, text: str) -> "Month":
        try:
            moment = datetime.strptime(text, "%Y-%m")
        except ValueError:
            raise InvalidInput(f"--month {text!r} is not a month: write YYYY-MM, e.g. 2026-11") from None
        if not 1970 <= moment.year <= 9998:  # the months a job can have run in, with room for the next one
            raise InvalidInput(f"--month {text!r} is out of range: from 1970-01 to 9998-12")
        return cls(moment.year, moment.month)

    @classmethod
    def of(cls, moment: datetime) -> "Month":
        moment = moment.astimezone(timezone.utc)
        return cls(moment.year, moment.month)

    @property
    def start(self) -> datetime:
        return datetime(self.year, self.month, 1, tzinfo=timezone.utc)

    @property
    def end(self) -> datetime:
        return self.next().start

    def next(self) -> "Month":
        return Month(self.year + self.month // 12, self.month % 12 + 1)

    def previous(self) -> "Month":
        return Month(self.year - (self.month == 1), (self.month - 2) % 12 + 1)

    @property
    def days(self) -> int:
        return (self.end - self.start).days

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"


@dataclass
class StatementLine:
    serviceId: str
    serviceName: str
    kind: str  # "job", "cron run" or "instance"
    plan: Plan
    seconds: int = 0
    runs: int = 0
    exact: Decimal = Decimal(0)
    amount: Decimal = Decimal(0)  # rounded to the cent, see the module's note

    def to_json(self) -> dict:
        return {"serviceId": self.serviceId, "serviceName": self.serviceName, "kind": self.kind,
                "planId": self.plan.id, "seconds": self.seconds, "runs": self.runs,
                "amountUSD": format(self.amount, "f"), "exactUSD": billing.usd_text(self.exact)}


@dataclass
class Statement:
    month: Month
    lines: list[StatementLine] = field(default_factory=list)
    exact_total: Decimal = Decimal(0)
    total: Decimal = Decimal(0)
    running: int = 0  # runs still going: their lines grow until they end
    days: list[tuple[date, Decimal]] = field(default_factory=list)  # exact spend per UTC day

    def to_json(self) -> dict:
        return {"month": str(self.month), "lines": [line.to_json() for line in self.lines],
                "totalUSD": format(self.total, "f"), "exactTotalUSD": billing.usd_text(self.exact_total), "running": self.running,
                "rates": RATES_NOTE, "rounding": ROUNDING_NOTE,
                "days": [{"date": day.isoformat(), "amountUSD": format(amount.quantize(CENT, rounding=ROUND_HALF_UP), "f")}
                         for day, amount in self.days]}


def _kind(run) -> str:
    if getattr(run, "kind", "job") == "instance":
        return "instance"
    return "cron run" if getattr(run, "trigger", "api") == "cron" else "job"


def seconds_in(start: datetime, end: datetime, month: Month) -> tuple[int, float]:
    """Billable whole seconds of [start, end] inside ``month``, and the exact seconds (for the chart).
    A run that started in the month bills at least its first second."""
    lo, hi = max(start, month.start), min(end, month.end)
    exact = (hi - lo).total_seconds()
    if exact <= 0:
        return (1, 0.0) if month.start <= start < month.end else (0, 0.0)
    whole = math.ceil(exact)
    return (max(1, whole) if month.start <= start else whole), exact


def build_statement(runs, service_names: dict[str, str], month: Month, now: datetime) -> Statement:
    """Statement of ``month`` from ``runs``: jobs (``Job``) and service instances (``InstanceRun``)."""
    statement = Statement(month)
    lines: dict[tuple[str, str, str], StatementLine] = {}
    per_day: dict[date, Decimal] = {}
    for run in runs:
        started = run.started()
        if started is None:
            continue
        end = run.finished() or now
        seconds, exact_seconds = seconds_in(started, end, month)
        if seconds == 0:
            continue
        if run.finished() is None:
            statement.running += 1
        plan = run.plan
        key = (run.serviceId, _kind(run), plan.id)
        line = lines.setdefault(key, StatementLine(run.serviceId, service_names.get(run.serviceId, run.serviceId),
                                                   key[1], plan))
        amount = billing.cost(plan, seconds)
        line.seconds += seconds
        line.runs += 1
        line.exact += amount
        _spread_by_day(per_day, max(started, month.start), min(end, month.end), exact_seconds, amount)
    statement.lines = sorted(lines.values(), key=lambda l: (l.serviceName, KIND_ORDER[l.kind], l.plan.id))
    statement.exact_total = sum((line.exact for line in statement.lines), Decimal(0))
    statement.total = statement.exact_total.quantize(CENT, rounding=ROUND_HALF_UP)
    _round_lines(statement.lines, statement.total)
    statement.days = [(day, per_day.get(day, Decimal(0)))
                      for day in (date(month.year, month.month, n) for n in range(1, month.days + 1))]
    return statement


def _round_lines(lines: list[StatementLine], total: Decimal) -> None:
    for line in lines:
        line.amount = line.exact.quantize(CENT, rounding=ROUND_DOWN)
    left = int((total - sum((line.amount for line in lines), Decimal(0))) / CENT)
    by_remainder = sorted(lines, key=lambda l: (-(l.exact - l.amount), l.serviceName, l.kind, l.plan.id))
    for line in by_remainder[:left]:
        line.amount += CENT


def _spread_by_day(per_day: dict, start: datetime, end: datetime, exact_seconds: float, amount: Decimal) -> None:
    """A run's amount over the UTC days it ran on, in proportion to its seconds on each."""
    if exact_seconds <= 0:
        day = start.astimezone(timezone.utc).date()
        per_day[day] = per_day.get(day, Decimal(0)) + amount
        return
    cursor = start
    while cursor < end:
        day = cursor.astimezone(timezone.utc).date()
        boundary = min(end, datetime(day.year, day.month, day.day, tzinfo=timezone.utc) + timedelta(days=1))
        share = Decimal((boundary - cursor).total_seconds()) / Decimal(exact_seconds)
        per_day[day] = per_day.get(day, Decimal(0)) + amount * share
        cursor = boundary



def statement_of(state, month: Month, now: datetime) -> Statement:
    """The statement of ``month`` from a data dir's ``State``: its jobs and its services' instances."""
    from renderlocal.core.spend import instance_runs

    services = {s.id: s for s in state.list_services(include_removed=True)}
    names = {service_id: service.name for service_id, service in services.items()}
    runs = [*state.list_jobs(), *instance_runs(state.list_deploys(), services)]
    return build_statement(runs, names, month, now)
