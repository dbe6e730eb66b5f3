"""A plan comparison as the faces show it: a run per plan, with its job once made, and the
cheapest plan that succeeded (the API, the CLI and the app all show this view)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from renderlocal.core import billing
from renderlocal.core.models import Job
from renderlocal.core.plans import get_plan


def comparison_view(doc: dict, jobs: dict[str, Job], now: datetime) -> dict:
    """A comparison as the API answers it: a run per plan (with its job once made) and the
    cheapest plan that succeeded."""
    runs = []
    for plan_id in doc["planIds"]:
        plan = get_plan(plan_id)
        run = {"planId": plan_id, "planName": plan.name, "memoryMB": plan.memory_mb, "cpu": str(plan.cpu),
               "status": "waiting"}
        job = jobs.get(doc["jobIds"].get(plan_id, ""))
        if job is not None:
            seconds = billing.billable_seconds(job.started(), job.finished(), now)
            run.update(jobId=job.id, status=job.status, seconds=seconds, costUSD=billing.usd_text(job.cost(now)))
            if job.failureReason:
                run["failureReason"] = job.failureReason
            if (doc.get("peaks") or {}).get(plan_id):
                run["peakMemoryBytes"] = doc["peaks"][plan_id]
        runs.append(run)
    view = {"id": doc["id"], "serviceId": doc["serviceId"], "startCommand": doc["startCommand"],
            "sequential": doc["sequential"], "createdAt": doc["createdAt"], "runs": runs,
            **({"problem": doc["problem"]} if doc.get("problem") else {}),
            "finished": all(run["status"] in ("succeeded", "failed", "canceled") for run in runs)}
    succeeded = [run for run in runs if run["status"] == "succeeded"]
    if succeeded:
        view["cheapestPlanId"] = min(succeeded, key=lambda run: (Decimal(run["costUSD"]), run["memoryMB"]))["planId"]
    return view
