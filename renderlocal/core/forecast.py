"""What a recurring job will cost per month, on each plan it could run on.

A cron service's runs per month come from its schedule (UTC, read by cronsim as
the scheduler reads it), counted over a whole calendar month; a job command run
by hand is given as runs per day. A run's duration is the median of the
service's recent finished runs, or one the user gives; each run bills as a job
does (whole seconds, rounded up, on the plan's per-second rate).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal

from renderlocal.core import billing
from renderlocal.core.errors import InvalidInput
from renderlocal.core.plans import Plan, plans_for
from renderlocal.core.statement import Month

RECENT_RUNS = 20  # the median of this many latest finished runs


def runs_in_month(schedule: str, month: Month) -> int:
    import cronsim

    try:
        moments = cronsim.CronSim(schedule, month.start - timedelta(seconds=1))  # it yields times after this
    except cronsim.CronSimError as exc:
        raise InvalidInput(f"schedule {schedule!r} is not a cron expression: {exc}") from None
    count = 0
    for moment in moments:
        if moment >= month.end:
            return count
        count += 1
    return count


def median_seconds(jobs, limit: int = RECENT_RUNS) -> tuple[int, int]:
    """Median run time (whole seconds, rounded up as billed) of the latest ``limit`` successful runs,
    and how many runs it was taken over."""
    # runs that succeeded: an OOM-kill, a failure or a cancel stops early and would pull the median down
    finished = [job for job in jobs if job.status == "succeeded" and job.started() is not None and job.finished() is not None]
    finished.sort(key=lambda job: job.finished(), reverse=True)
    recent = [billing.billable_seconds(job.started(), job.finished(), job.finished()) for job in finished[:limit]]
    if not recent:
        return 0, 0
    return int(Decimal(statistics.median(recent)).to_integral_value(rounding=ROUND_HALF_UP)), len(recent)


@dataclass
class Forecast:
    serviceId: str
    serviceName: str
    month: Month
    runs_per_month: int
    seconds: int
    runs_measured: int  # 0 when the duration was given
    schedule: str | None
    per_day: int | None
    plans: list[tuple[Plan, Decimal]]  # exact monthly cost on each plan of the family (JSON: 6 places, as costUSD)

    def to_json(self) -> dict:
        out = {"serviceId": self.serviceId, "serviceName": self.serviceName, "month": str(self.month),
               "runsPerMonth": self.runs_per_month, "medianSeconds": self.seconds,
               "runsMeasured": self.runs_measured,
               "plans": [{"planId": plan.id, "planName": plan.name, "monthlyUSD": billing.usd_text(amount)}
                         for plan, amount in self.plans]}
        if self.schedule is not None:
            out["schedule"] = self.schedule
        if self.per_day is not None:
            out["perDay"] = self.per_day
        return out


def forecast(service, jobs, month: Month, duration: int | None = None, per_day: int | None = None) -> Forecast:
    """``service``'s monthly cost on each plan of its family; ``jobs`` are its runs so far."""
    if duration is not None and duration <= 0:
        raise InvalidInput(f"--duration {duration} must be a positive number of seconds")
    if per_day is not None and per_day <= 0:
        raise InvalidInput(f"--per-day {per_day} must be a positive number of runs")
    if service.type == "cron" and per_day is None:
        runs = runs_in_month(service.schedule, month)
        schedule = service.schedule
    elif per_day is not None:
        runs = per_day * month.days
        schedule = None
    else:
        raise InvalidInput(f"{service.name} is a {service.type} service with no schedule: "
                           "say how often the job runs with --per-day N")
    if service.type == "cron" and per_day is None:
        jobs = [job for job in jobs if job.trigger == "cron"] or jobs
    measured = 0
    if duration is None:
        duration, measured = median_seconds(jobs)
        if measured == 0:
            raise InvalidInput(f"{service.name} has no successful runs to take a duration from: "
                               "run it once, or give one with --duration SECONDS")
    plans = [(plan, billing.cost(plan, duration) * runs) for plan in plans_for(service.type)]
    return Forecast(service.id, service.name, month, runs, duration, measured, schedule, per_day, plans)
