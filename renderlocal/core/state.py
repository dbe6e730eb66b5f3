"""What a data dir holds, for reading: services, builds, jobs, logs.

Every face reads through this view (the TUI draws from it, the API answers
from it); only the control plane (``renderlocal/executor``) writes. Files are
replaced atomically, so a reader in another process never sees half a write.
"""

from __future__ import annotations

from pathlib import Path

from renderlocal.core.errors import InvalidInput, NotFound
from renderlocal.core.ids import looks_like_id
from renderlocal.core.jobstore import JobStore
from renderlocal.core.logstore import LogStore
from renderlocal.core.models import Build, Deploy, Job, Service
from renderlocal.core.statuses import JOB_STATUSES, BuildStatus
from renderlocal.core.store import Store


class State:
    def __init__(self, data_dir: Path, on_change=None):
        self.data_dir = Path(data_dir)
        self.store = Store(self.data_dir / "store", on_change=on_change)
        self.job_store = JobStore(self.data_dir / "store" / "jobs", on_change=on_change)
        self.logs = LogStore(self.data_dir / "logs")

    # -- services ----------------------------------------------------------------
    def list_services(self, include_removed: bool = False) -> list[Service]:
        services = [Service.from_doc(doc) for doc in self.store.all("services")]
        return [s for s in services if include_removed or s.inBlueprint]

    def get_service(self, ref: str) -> Service:
        """A service by id or by name."""
        services = self.list_services(include_removed=True)
        for service in services:
            if ref in (service.id, service.name):
                return service
        names = ", ".join(s.name for s in services if s.inBlueprint) or "none"
        raise NotFound(f"unknown service {ref!r}; services: {names}")

    # -- builds --------------------------------------------------------------------
    def get_build(self, build_id: str) -> Build:
        doc = self.store.get("builds", build_id) if looks_like_id(build_id, "bld") else None
        if doc is None:
            raise NotFound(f"unknown build {build_id!r}")
        return Build.from_doc(doc)

    def list_builds(self, service_id: str | None = None) -> list[Build]:
        """Builds newest first (all services, or one's)."""
        docs = self.store.find("builds", serviceId=service_id) if service_id else self.store.all("builds")
        return sorted((Build.from_doc(d) for d in docs), key=lambda b: b.createdAt, reverse=True)

    def running_builds(self) -> list[Build]:
        return [Build.from_doc(d) for d in self.store.find("builds", status=BuildStatus.BUILDING)]

    # -- deploys -------------------------------------------------------------------
    def get_deploy(self, deploy_id: str) -> Deploy:
        doc = self.store.get("deploys", deploy_id) if looks_like_id(deploy_id, "dep") else None
        if doc is None:
            raise NotFound(f"unknown deploy {deploy_id!r}")
        return Deploy.from_doc(doc)

    def list_deploys(self, service_id: str | None = None) -> list[Deploy]:
        """Deploys newest first (all services, or one's)."""
        docs = self.store.find("deploys", serviceId=service_id) if service_id else self.store.all("deploys")
        return sorted((Deploy.from_doc(d) for d in docs), key=lambda d: (d.createdAt, d.id), reverse=True)

    def log_resources(self, resource_id: str) -> list[str]:
        """What a log query of ``resource_id`` reads: a job's or build's log, or a service's:
        every instance it ran and every deploy's pre-deploy output."""
        if not looks_like_id(resource_id) or resource_id.startswith(("job-", "bld-", "dep-")):
            return [resource_id]
        resources = []
        for deploy in self.list_deploys(resource_id):
            resources.extend(instance["id"] for instance in deploy.instances)
            if self.logs.path(deploy.id).exists():
                resources.append(deploy.id)
        return list(dict.fromkeys(resources))

    # -- jobs ------------------------------------------------------------------------
    def get_job(self, job_id: str) -> Job:
        doc = self.job_store.get(job_id) if looks_like_id(job_id, "job") else None  # ids become file names
        if doc is None:
            raise NotFound(f"unknown job {job_id!r}")
        return Job.from_doc(doc)

    def list_jobs(self, service_id: str | None = None, statuses=None, limit: int | None = None,
                  before: Job | None = None, where=None) -> list[Job]:
        """Jobs newest first (createdAt, then id); ``before``: the page starts after that job.

        ``where`` is an extra test on the stored document (e.g. time filters).
        """
        wanted = set(statuses or ())
        unknown = wanted - set(JOB_STATUSES)
        if unknown:
            raise InvalidInput(f"unknown status {', '.join(sorted(unknown))}; valid: {', '.join(JOB_STATUSES)}",
                               field="status")

        def match(doc):
            return ((service_id is None or doc["serviceId"] == service_id) and (not wanted or doc["status"] in wanted)
                    and (where is None or where(doc)))

        after = (before.createdAt, before.id) if before is not None else None
        return [Job.from_doc(doc) for doc in self.job_store.query(match, limit, after)]

    def unsettled_jobs(self) -> list[Job]:
        """Jobs still running, or ended with their log not yet complete."""
        jobs = [Job.from_doc(doc) for doc in self.job_store.live()]
        return [job for job in jobs if not job.settled]
