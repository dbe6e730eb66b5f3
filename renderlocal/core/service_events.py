"""A service's events in Render's shape (``GET /v1/services/{id}/events``), derived from the
records that outlive every process: builds, deploys, jobs and the service's suspension.

Render's event ids are ``evt-`` and 20 characters; here each is derived from what it is about
(a job's id and the event's type), so the same event keeps its id and a cursor stays valid.
"""

from __future__ import annotations

import hashlib

from renderlocal.core.models import Build, Deploy, Job, Service
from renderlocal.core.state import State
from renderlocal.core.statuses import DeployStatus, DeployTrigger

EVENT_TYPES = (
    "build_started", "build_ended", "deploy_started", "deploy_ended", "job_run_ended",
    "cron_job_run_started", "cron_job_run_ended", "service_suspended", "service_resumed",
)
RECENT_JOBS = 1000  # events cover the newest jobs; older ones are in the job list
_ENDED = {"succeeded": "succeeded", "live": "succeeded", "deactivated": "succeeded", "failed": "failed",
          "build_failed": "failed", "update_failed": "failed", "pre_deploy_failed": "failed", "canceled": "canceled"}
_STATUS_CODE = {"succeeded": 2, "failed": 3, "canceled": 4}  # Render's deprecated integer status: ours
_CRON_STATUS = {"succeeded": "successful", "failed": "unsuccessful", "canceled": "canceled"}


def event_id(source_id: str, kind: str) -> str:
    digest = int(hashlib.sha256(f"{source_id}/{kind}".encode()).hexdigest(), 16)
    alphabet = "0123456789abcdefghijklmnopqrstuvwxyz"
    chars = []
    for _ in range(20):
        digest, index = divmod(digest, 36)
        chars.append(alphabet[index])
    return "evt-" + "".join(chars)


def service_events(state: State, service: Service) -> list[dict]:
    """Every event of the service, newest first."""
    events = []
    for build in state.list_builds(service.id):
        events += _build_events(service, build)
    for deploy in state.list_deploys(service.id):
        events += _deploy_events(service, deploy)
    for job in state.list_jobs(service.id, limit=RECENT_JOBS):
        events += _job_events(service, job)
    for suspension in service.suspensions:
        source = service.id + suspension["suspendedAt"]
        events.append(_event(service, source, "service_suspended", suspension["suspendedAt"], {}))
        if suspension.get("resumedAt"):
            events.append(_event(service, source, "service_resumed", suspension["resumedAt"], {}))
    return sorted(events, key=lambda e: (e["timestamp"], e["id"]), reverse=True)


def _event(service: Service, source_id: str, kind: str, at: str, details: dict) -> dict:
    return {"id": event_id(source_id, kind), "timestamp": at, "serviceId": service.id, "type": kind,
            "details": details}


def _trigger(manual: bool) -> dict:
    """Render's trigger flags ("manual": from the dashboard, here the app or the CLI's build)."""
    return {"firstBuild": False, "envUpdated": False, "manual": manual, "deployedByRender": False,
            "clearCache": False, "rollback": False}


def _build_events(service: Service, build: Build) -> list[dict]:
    events = [_event(service, build.id, "build_started", build.createdAt,
                     {"buildId": build.id, "trigger": _trigger(manual=build.trigger == "manual")})]
    ended = _ENDED.get(build.status)
    if ended and build.finishedAt:
        reason = {"failure": _failure(build.failureReason)} if ended == "failed" and build.failureReason else {}
        events.append(_event(service, build.id, "build_ended", build.finishedAt, {
            "buildId": build.id, "buildStatus": ended, "status": _STATUS_CODE[ended], "reason": reason}))
    return events


def _deploy_events(service: Service, deploy: Deploy) -> list[dict]:
    trigger = _trigger(manual=deploy.trigger == DeployTrigger.MANUAL)
    events = [_event(service, deploy.id, "deploy_started", deploy.createdAt, {"deployId": deploy.id, "trigger": trigger})]
    ended = _ENDED.get(deploy.status)
    when = deploy.liveAt if deploy.status in (DeployStatus.LIVE, DeployStatus.DEACTIVATED) else deploy.finishedAt
    if ended and when:
        reason = {"failure": _failure(deploy.failureReason)} if ended == "failed" and deploy.failureReason else {}
        events.append(_event(service, deploy.id, "deploy_ended", when, {
            "deployId": deploy.id, "deployStatus": ended, "status": _STATUS_CODE[ended], "reason": reason}))
    return events


def _job_events(service: Service, job: Job) -> list[dict]:
    """``job_run_ended`` (a cron run: ``cron_job_run_started`` and ``_ended`` as well)."""
    events = []
    if job.trigger == "cron" and job.startedAt:
        events.append(_event(service, job.id, "cron_job_run_started", job.startedAt, {"cronJobRunId": job.id}))
    if job.final and job.finishedAt:
        reason = _failure(job.failureReason, job)
        events.append(_event(service, job.id, "job_run_ended", job.finishedAt,
                             {"jobId": job.id, "status": job.status, "reason": reason}))
        if job.trigger == "cron":
            events.append(_event(service, job.id, "cron_job_run_ended", job.finishedAt,
                                 {"cronJobRunId": job.id, "status": _CRON_STATUS[job.status], "reason": reason}))
    return events


def _failure(failure: dict | None, job: Job | None = None) -> dict:
    """Render's failure reason: ``evicted`` always, ``nonZeroExit`` (the code), ``oomKilled``
    (the limit), ``timedOutSeconds``."""
    reason = {"evicted": bool(failure and failure.get("type") == "lost")}
    failure = failure or {}
    kind = failure.get("type")
    if kind == "oomKilled":
        reason["oomKilled"] = {"memoryLimit": f"{failure.get('memoryLimitMB', 0)}Mi"}
    elif kind == "timedOut":
        reason["timedOutSeconds"] = int(job.timeoutSeconds if job else failure.get("timeoutSeconds", 0))
    elif failure.get("exitCode"):
        reason["nonZeroExit"] = int(failure["exitCode"])
    return reason
