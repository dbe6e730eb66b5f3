"""What a data dir holds, for reading: services, builds, jobs, logs.

Every face reads through this view (the TUI draws from it, the API answers
from it); only the control plane (``renderlocal/executor``) writes. Files are
replaced atomically, so a reader in another process never sees half a write.
"""

from __future__ import annotations

from pathlib import Path

from renderlocal.core.errors import InvalidInput, NotFound
from renderlocal.core.ids import looks_like_id
from renderlocal.core.jobstore import JOB_SHAPE, JobStore
from renderlocal.core.logstore import LogStore
from renderlocal.core.models import Build, Database, Deploy, Job, KeyValue, Service, read_password
from renderlocal.core.statuses import JOB_STATUSES, BuildStatus
from renderlocal.core.store import RECORD_SHAPES, Store, report_to_stderr


class State:
    """``problems``: one line for each store file found damaged here, and what became of it (said
    once on stderr too; the control plane shows them with its warnings)."""

    def __init__(self, data_dir: Path, on_change=None):
        self.data_dir = Path(data_dir)
        self.problems: list[str] = []
        self.store = Store(self.data_dir / "store", on_change=on_change, report=self._report, shapes=RECORD_SHAPES)
        self.job_store = JobStore(self.data_dir / "store" / "jobs", on_change=on_change, report=self._report,
                                  job_shape=JOB_SHAPE)
        self.logs = LogStore(self.data_dir / "logs")

    def _report(self, problem: str) -> None:
        if problem not in self.problems:
            self.problems.append(problem)
            report_to_stderr(problem)

    # -- services ----------------------------------------------------------------
    def list_services(self, include_removed: bool = False) -> list[Service]:
        return self._named("services", Service, include_removed)

    def get_service(self, ref: str) -> Service:
        """A service by id or by name."""
        return _by_ref(self.list_services(include_removed=True), ref, "service", "services")

    def _named(self, table: str, record_class, include_removed: bool) -> list:
        """The records of a table of the blueprint's things; those it no longer has only if asked."""
        records = [record_class.from_doc(doc) for doc in self.store.all(table)]
        return [r for r in records if include_removed or r.inBlueprint]

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
        if not looks_like_id(resource_id) or resource_id.startswith(("job-", "bld-", "dep-", "dpg-", "red-")):
            return [resource_id]  # a data store logs as itself
        resources = []
        for deploy in self.list_deploys(resource_id):
            resources.extend(instance["id"] for instance in deploy.instances)
            if self.logs.path(deploy.id).exists():
                resources.append(deploy.id)
        return list(dict.fromkeys(resources))

    # -- rehearsals and plan comparisons (render-local's own records) --------------------------
    def get_rehearsal(self, rehearsal_id: str) -> dict:
        doc = self.store.get("rehearsals", rehearsal_id) if looks_like_id(rehearsal_id, "rhs") else None
        if doc is None:
            raise NotFound(f"unknown rehearsal {rehearsal_id!r}")
        return doc

    def get_comparison(self, comparison_id: str) -> dict:
        doc = self.store.get("comparisons", comparison_id) if looks_like_id(comparison_id, "cmp") else None
        if doc is None:
            raise NotFound(f"unknown plan comparison {comparison_id!r}")
        return doc

    # -- data stores -------------------------------------------------------------------
    def list_databases(self, include_removed: bool = False) -> list[Database]:
        return self._named("databases", Database, include_removed)

    def get_database(self, ref: str) -> Database:
        """A Postgres database by id or name."""
        return _by_ref(self.list_databases(include_removed=True), ref, "database", "databases")

    def list_key_values(self, include_removed: bool = False) -> list[KeyValue]:
        return self._named("keyvalues", KeyValue, include_removed)

    def get_key_value(self, ref: str) -> KeyValue:
        return _by_ref(self.list_key_values(include_removed=True), ref, "Key Value", "Key Value")

    def get_data_store(self, ref: str) -> "Database | KeyValue":
        """A database or Key Value, by id or name."""
        try:
            return self.get_database(ref)
        except NotFound:
            pass
        try:
            return self.get_key_value(ref)
        except NotFound:
            names = [d.name for d in self.list_databases()] + [k.name for k in self.list_key_values()]
            raise NotFound(f"unknown database or Key Value {ref!r}; known: {', '.join(names) or 'none'}") from None

    def password_of(self, store_id: str) -> str:
        """A data store's password, made once and kept owner-only (``secrets/<id>``); Key Value has none."""
        return read_password(self.data_dir, store_id)

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


def _by_ref(records: list, ref: str, what: str, plural: str):
    """The record whose id or name is ``ref``; an error naming those the blueprint has, if none is."""
    for record in records:
        if ref in (record.id, record.name):
            return record
    names = ", ".join(r.name for r in records if r.inBlueprint) or "none"
    raise NotFound(f"unknown {what} {ref!r}; {plural}: {names}")
