"""Plan comparisons: the same command run once on each of several plans of a service, one after
another (the default, so the runs do not slow each other) or all at once.

A comparison is a record in the store (``comparisons``) naming its plans and, as each run is
made, its job; the jobs are ordinary jobs. One thread per comparison starts the next run once the
previous ended; after a crash the supervisor's pass calls ``resume`` and the next control plane
goes on where this one stopped. A crash between a run's job being created and its id being
recorded leaves that job out of the comparison and runs the plan again.
"""

from __future__ import annotations

import threading
from typing import Callable

from renderlocal.core.errors import InvalidInput, NotFound, RenderLocalError
from renderlocal.core.ids import new_id
from renderlocal.core.models import Job, Service, stamp
from renderlocal.core.plans import plan_for_job, plans_for
from renderlocal.core.state import State

TABLE = "comparisons"


class PlanComparisons:
    """``create_job(service, command, plan_id, env) -> Job``; ``wait(job_id) -> Job`` blocks until it
    ended; ``peak_of(job_id) -> int | None`` blocks until it ended and says the most memory it used."""

    def __init__(self, state: State, create_job: Callable[..., Job], wait: Callable[[str], Job],
                 peak_of: Callable[[str], int | None] = lambda job_id: None):
        self.state = state
        self.create_job = create_job
        self.wait = wait
        self.peak_of = peak_of
        self._guard = threading.Lock()
        self._running: dict[str, threading.Thread] = {}

    def start(self, service: Service, command: str, plan_ids: list[str] | None, sequential: bool = True,
              env: dict | None = None) -> dict:
        plans = [plan_for_job(service.type, service.planId, plan_id) for plan_id in plan_ids] if plan_ids \
            else plans_for(service.type)  # unknown or wrong-family plans: InvalidInput naming them
        ids = list(dict.fromkeys(plan.id for plan in plans))
        if len(ids) < 2:
            raise InvalidInput("a comparison needs at least two plans (--plans A,B)")
        if not command.strip():
            raise InvalidInput("a comparison needs a start command (--start-command)")
        doc = {"id": new_id("cmp"), "serviceId": service.id, "startCommand": command, "planIds": ids,
               "sequential": sequential,
               "env": [{"key": key, "value": value} for key, value in (env or {}).items()], "jobIds": {}, "createdAt": stamp()}
        # The first run is made before the record: what stops every run (no build yet) is said now, and
        # leaves nothing behind that a later pass would run unasked; no pass sees it without its first job.
        first = self.create_job(service, command, ids[0], doc["env"])
        doc["jobIds"][ids[0]] = first.id
        self.state.store.insert(TABLE, doc)
        self._measuring(doc["id"], ids[0], first.id)
        self._run(doc["id"])
        return doc

    def resume(self) -> None:
        """Go on with every comparison that has plans left to run (the supervisor's pass)."""
        for doc in self.state.store.all(TABLE):
            if len(doc["jobIds"]) < len(doc["planIds"]) and not doc.get("gaveUp"):
                self._run(doc["id"])

    def _run(self, comparison_id: str) -> None:
        with self._guard:
            thread = self._running.get(comparison_id)
            if thread is not None and thread.is_alive():
                return
            thread = threading.Thread(target=self._go_on, args=(comparison_id,), name=f"compare-{comparison_id}",
                                      daemon=True)
            self._running[comparison_id] = thread
        thread.start()

    def _make_run(self, doc: dict, service: Service, plan_id: str) -> dict:
        job = self.create_job(service, doc["startCommand"], plan_id, doc["env"])
        doc = self.state.store.update(TABLE, doc["id"], lambda d: (d["jobIds"].update({plan_id: job.id}),
                                                                   d.pop("problem", None)))
        self._measuring(doc["id"], plan_id, job.id)
        return doc

    def _measuring(self, comparison_id: str, plan_id: str, job_id: str) -> None:
        threading.Thread(target=self._measure, args=(comparison_id, plan_id, job_id), name=f"peak-{job_id}",
                         daemon=True).start()

    def _measure(self, comparison_id: str, plan_id: str, job_id: str) -> None:
        try:
            peak = self.peak_of(job_id)
        except Exception:  # the engine went away: the run is shown without its peak
            return
        if peak:
            self.state.store.update(TABLE, comparison_id, lambda d: d.setdefault("peaks", {}).update({plan_id: peak}))

    def _go_on(self, comparison_id: str) -> None:
        doc = self.state.store.get(TABLE, comparison_id)
        try:
            service = self.state.get_service(doc["serviceId"])
            for plan_id in doc["planIds"]:
                if plan_id not in doc["jobIds"]:
                    doc = self._make_run(doc, service, plan_id)
                if doc["sequential"]:
                    self.wait(doc["jobIds"][plan_id])
        except NotFound as exc:  # the service went from the blueprint: the plans left never run
            problem = f"{exc}: the plans left were not run"
            self.state.store.update(TABLE, comparison_id, lambda d: d.update(problem=problem, gaveUp=True))
        except RenderLocalError as exc:  # the engine is down: each pass tries again
            problem = str(exc)
            self.state.store.update(TABLE, comparison_id, lambda d: d.update(problem=problem))

    def get(self, comparison_id: str) -> dict:
        return self.state.get_comparison(comparison_id)

