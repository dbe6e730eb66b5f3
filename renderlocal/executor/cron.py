"""Cron services fire on their schedule (UTC, five fields, as Render reads them).

Each run is a job on the cron service's last successful build, with its own
start command and cron plan, billed per second like any job. At most one run
of a service is active at a time, as on Render: a run that comes due while the
previous one still runs is skipped. Runs that came due while no control plane
ran are not made up for, only the latest is; a new service starts counting
when it is first seen. The clock is injectable: tests drive a schedule by
moving it, not by waiting.
"""

from __future__ import annotations

from datetime import datetime
from typing import Callable

from renderlocal.core.clock import parse_stored, utcnow
from renderlocal.core.errors import Conflict, InvalidInput
from renderlocal.core.models import Job, Service, stamp
from renderlocal.core.state import State
from renderlocal.executor.services import ServiceCatalog


def due_time(schedule: str, after: datetime, now: datetime) -> datetime | None:
    """The latest time the schedule fired after ``after`` and up to ``now``, if any."""
    import cronsim

    latest = None
    for moment in cronsim.CronSim(schedule, after):
        if moment > now:
            return latest
        latest = moment
    return latest


class CronScheduler:
    def __init__(self, state: State, services: ServiceCatalog, start_run: Callable[[Service], Job],
                 clock: Callable[[], datetime] = utcnow):
        self.state = state
        self.services = services
        self.start_run = start_run
        self.clock = clock

    def tick(self) -> list[Job]:
        """Start the runs that came due; returns them."""
        now = self.clock()
        started = []
        for service in self.state.list_services():
            if service.type != "cron" or service.suspended or not service.lastSuccessfulBuildId:
                continue
            last = parse_stored(service.lastCronRunAt)
            if last is None:  # first seen: it counts from now
                self.services.update(service.id, lastCronRunAt=stamp(now))
                continue
            due = due_time(service.schedule, last, now)
            if due is None:
                continue
            self.services.update(service.id, lastCronRunAt=stamp(due))
            if self.running(service) is None:
                started.append(self.start_run(service))
        return started

    def trigger(self, service: Service) -> Job:
        """A run now, whatever the schedule says (``cron trigger``)."""
        if service.type != "cron":
            raise InvalidInput(f"{service.name} is a {service.type} service, not a cron job: use jobs create")
        running = self.running(service)
        if running is not None:
            raise Conflict(f"a run of {service.name} is still running ({running.id}): one at a time, as on Render")
        return self.start_run(service)

    def running(self, service: Service) -> Job | None:
        return next((job for job in self.state.unsettled_jobs()
                     if job.serviceId == service.id and job.trigger == "cron" and not job.final), None)
