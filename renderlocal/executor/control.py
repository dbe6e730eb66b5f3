"""The control plane of one data dir: the only object that talks to the Docker
engine and writes state (services, builds, jobs, log stream settings).

Exactly one process holds it at a time (``election.py``): ``render-local
serve``, the terminal app, or the one a CLI starts in the background. Faces
call its commands in process (the app, when it is the control plane) or
through its API (``renderlocal/api``), and read what it wrote through
``core.state.State``. Its ``changes`` feed says what it wrote, so faces redraw
when something changed instead of polling.
"""

from __future__ import annotations

import os
import threading
import typing
from pathlib import Path

from renderlocal.core.clock import utcnow
from renderlocal.core.datadir import resolve_blueprint, resolve_data_dir
from renderlocal.core.errors import Conflict, NotFound, RenderLocalError
from renderlocal.core.logstreams import LogStreams
from renderlocal.core.models import Build, Deploy, Job, Service
from renderlocal.core.statuses import DeployTrigger, JobStatus
from renderlocal.core.state import State
from renderlocal.executor.builds import Builder
from renderlocal.executor.comparisons import PlanComparisons
from renderlocal.executor.changes import ChangeFeed
from renderlocal.executor.election import ExecutorLock
from renderlocal.executor.engine import Engine
from renderlocal.executor.cron import CronScheduler
from renderlocal.executor.datastores import DataStores
from renderlocal.executor.deploys import Deployer
from renderlocal.executor.jobs import JobRunner
from renderlocal.executor.meters import ResourceMeters
from renderlocal.executor.network import PrivateNetwork
from renderlocal.executor.proxy import ProxyPool
from renderlocal.executor.rehearsals import Rehearsals
from renderlocal.executor.services import ServiceCatalog


class ControlPlane:
    def __init__(self, data_dir=None, blueprint=None, engine=None, clock=utcnow):
        self.data_dir: Path = resolve_data_dir(data_dir)
        os.chmod(self.data_dir, 0o700)  # holds secrets and the API token
        self.blueprint_path: Path = resolve_blueprint(blueprint)
        self.changes = ChangeFeed()
        self.state = State(self.data_dir, on_change=self.changes.publish)
        self.engine = Engine(engine)
        self.services = ServiceCatalog(self.state, self.blueprint_path)
        self.log_streams = LogStreams(self.state)
        self.network = PrivateNetwork(self.engine, self.data_dir)
        self.proxies = ProxyPool()
        self.datastores = DataStores(self.engine, self.state, self.network, self.data_dir)
        self.jobs = self._job_runner_class()(self.engine, self.state.job_store, self.state.logs, self.state.get_build,
                                             self.data_dir, self.network, self._prepare)
        self.builds = Builder(self.engine, self.state, self.services, self.data_dir, self._builds_jobs_run,
                              self._built)
        self.deploys = self._deployer_class()(self.engine, self.state, self.services, self.network, self.proxies,
                                              self.data_dir, self._prepare)
        self.cron = CronScheduler(self.state, self.services, self._cron_run, clock)
        self.comparisons = PlanComparisons(self.state, self.jobs.create, self.jobs.wait, self._peak_memory)
        self.rehearsals = Rehearsals(self.state, self.postgres_admin, self.jobs.create, self.jobs.wait)
        self.meters = ResourceMeters(self.engine, self.state, self.jobs.container_of)
        self.lock = ExecutorLock(self.data_dir)
        self.watchers: dict = {}  # service id -> ServiceWatcher
        self.forwarder = None  # LogForwarder, once started
        self.supervisor = None  # the loop, once started
        self.closed = False
        self._life = threading.Lock()  # start() and close() one at a time (the app may quit while it starts)
        self._watch_guard = threading.Lock()

    def _job_runner_class(self) -> type[JobRunner]:
        if self.engine.backend == "swarm":  # imported only then: the local path loads nothing of it
            from renderlocal.executor.swarm_jobs import SwarmJobRunner

            return SwarmJobRunner
        return JobRunner

    def _deployer_class(self) -> type[Deployer]:
        if self.engine.backend == "swarm":
            from renderlocal.executor.swarm_deploys import SwarmDeployer

            return SwarmDeployer
        return Deployer

    @property
    def logs(self):
        return self.state.logs

    @property
    def warnings(self) -> list[str]:
        """What the last blueprint sync could not do, and what the data stores run instead."""
        return self.services.warnings + self.datastores.notes

    # -- life ---------------------------------------------------------------------------
    def start(self, wait: float = 0, loop: bool = True, on_problem=None, on_adopted=None) -> "ControlPlane":
        """Become the data dir's control plane (``ControlPlaneRunning`` if another is), sync the
        blueprint, adopt what a crashed one left, and run the supervisor loop (``loop``)."""
        import docker  # noqa: F401  here, before the threads that use it start: two threads importing
        # the SDK at once can meet it half-initialized ("cannot import name 'Context'"), seen in the app

        from renderlocal.executor.supervisor import Supervisor

        with self._life:
            if self.closed:
                raise Conflict(f"the control plane of {self.data_dir} in this process was closed")
            self.lock.acquire(wait)
            try:
                if self.engine.backend == "swarm":
                    self.engine.client  # not a swarm manager: refused now, before any job is taken
                self.services.refresh()
                self.supervisor = Supervisor(self, on_problem=on_problem, on_adopted=on_adopted)
                self.start_forwarding()
                if loop:
                    self.supervisor.start()
                    self.meters.start()
            except BaseException:
                self._stop_duties(0)
                self.lock.release()
                raise
        return self

    def close(self, drain_seconds: float = 5.0) -> None:
        """Stop the loop, the watchers and the forwarder (after up to ``drain_seconds`` of sending),
        then let another process be the control plane. Jobs still running are adopted by the next one."""
        with self._life:
            self.closed = True
            self.jobs.released.set()
            self._stop_duties(drain_seconds)
            self.lock.release()

    def _stop_duties(self, drain_seconds: float) -> None:
        if self.supervisor is not None:
            self.supervisor.stop()
        self.meters.stop()
        with self._watch_guard:
            for watcher in self.watchers.values():
                watcher.stop()
            self.watchers.clear()
        if self.forwarder is not None:
            self.forwarder.stop(drain_seconds)
            self.forwarder = None
        self.proxies.close()  # the URLs go with this process; the next control plane serves them again
        try:
            self.network.remove_if_unused()
        except Exception:  # the engine does not answer: the network stays, and the next control plane reuses it
            pass

    def __enter__(self) -> "ControlPlane":
        return self.start()

    def __exit__(self, *_exc) -> None:
        self.close()

    def _executing(self) -> None:
        if not self.lock.held:
            raise Conflict(f"this process is not the control plane of {self.data_dir}: start() it first")

    def recover(self) -> list[str]:
        """End builds and deploys nobody runs, rebuild lost job records from their containers,
        supervise every unfinished job, keep the live deploys running; returns the ids of the
        jobs it began to supervise."""
        self._executing()
        self.builds.recover()
        self.jobs.recreate_missing_records()
        adopted = self.jobs.reconcile(self.state.unsettled_jobs())
        self.deploys.reconcile()
        self.datastores.reconcile()
        return adopted

    def busy(self) -> bool:
        """Whether a job, a build or a deploy runs here right now, or a service is up (an idle
        control plane stops: a running service keeps one up, as its URL needs it)."""
        return self.builds.building() or self.deploys.deploying() or self.keeps_running()

    def keeps_running(self) -> bool:
        """Whether something here outlives this process and wants a control plane: a job, or a
        live service (its URL is served by the control plane)."""
        return self.jobs.supervising() or any(s.liveDeployId and not s.suspended for s in self.state.list_services())

    # -- reads (faces use ``state``; these are for the API and tests) ----------------------
    def refresh(self) -> None:
        """Sync the blueprint if it changed since the last sync."""
        self.services.refresh()

    def list_services(self, include_removed: bool = False) -> list[Service]:
        return self.state.list_services(include_removed)

    def get_service(self, ref: str) -> Service:
        return self.state.get_service(ref)

    def running_container(self, ref: str, what: str = "a shell") -> dict:
        """What a shell (``render-local ssh``) or a resource meter looks into: a running job (its id),
        or a service's running instance (an instance id, or the service's id or name: its first).
        ``{"kind": "job"|"instance", "id", "serviceId", "planId", "containerId"}``."""
        if ref.startswith("job-"):
            job = self.state.get_job(ref)
            if job.status != JobStatus.RUNNING or not job.containerId:
                raise Conflict(f"job {job.id} is {job.status}; only a running job has {what}")
            container = self.jobs.container_of(job)
            if container is None:
                raise Conflict(f"job {job.id} runs on another node of the swarm: {what} is only for one on this engine")
            return {"kind": "job", "id": job.id, "serviceId": job.serviceId, "planId": job.planId,
                    "containerId": container}
        service_ref, _dash, suffix = ref.rpartition("-")
        # an instance id: its service's id and 5 characters (6 for a swarm deploy's tenth instance)
        by_instance = ref.startswith(("srv-", "crn-")) and ref.count("-") == 2 and len(suffix) in (5, 6)
        service = self.state.get_service(service_ref if by_instance else ref)
        if service.type == "cron":
            raise Conflict(f"{service.name} is a cron job: it has no instances; a run of it is a job "
                           "(render-local ssh JOB while it runs)")
        if service.suspended:
            raise Conflict(f"{service.name} is suspended: it has no running instance "
                           f"(render-local services resume {service.name})")
        live = self.state.get_deploy(service.liveDeployId) if service.liveDeployId else None
        instances = [i for i in (live.instances if live else []) if not i.get("stoppedAt")]
        if by_instance:
            instances = [i for i in instances if i["id"] == ref]
            if not instances:
                raise NotFound(f"unknown instance {ref!r} of {service.name}, or it stopped")
        for instance in instances:  # a swarm instance not placed yet has no container; on another node, not here
            if instance.get("containerId") and self.engine.is_running(instance["containerId"]):
                return {"kind": "instance", "id": instance["id"], "serviceId": service.id, "planId": service.planId,
                        "containerId": instance["containerId"]}
        raise Conflict(f"{service.name} has no running instance (render-local up {service.name} deploys it)")

    def resource_figures(self, ref: str | None = None):
        """Memory and CPU against the plan's, of a running job or instance (``ref``, as
        running_container takes it): the latest sample and a short history; without ``ref``,
        every running one's latest."""
        if ref is None:
            return self.meters.view_all()
        return self.meters.view(self.running_container(ref, "live resource figures"))

    def listen(self, callback) -> "typing.Callable[[], None]":
        """``callback(change)`` for every write, from the writing thread; returns the way to stop."""
        return self.changes.listen(callback)

    # -- commands: what every face can ask ------------------------------------------------
    def create_job(self, service_ref: str, start_command: str | None = None, plan_id: str | None = None,
                   env=None, secrets: dict | None = None, timeout_seconds=None, cancel_grace=None) -> Job:
        """A pending job on the service's last successful build; it is launched and supervised here."""
        self._executing()
        self.refresh()  # the env snapshot is the blueprint as it is now
        service = self.state.get_service(service_ref)
        return self.jobs.create(service, start_command, plan_id, env, secrets, timeout_seconds, cancel_grace)

    def compare_plans(self, service_ref: str, start_command: str, plan_ids: list[str] | None = None,
                      sequential: bool = True, env=None) -> dict:
        """The command run once on each plan (every plan of the service's family unless named)."""
        from renderlocal.core.envvars import parse_env_overrides

        self._executing()
        self.refresh()
        service = self.state.get_service(service_ref)
        return self.comparisons.start(service, start_command, plan_ids, sequential, parse_env_overrides(env))

    # -- a database's data: dumps, snapshots, rehearsals (executor/postgres_admin.py, rehearsals.py) ---
    def postgres_admin(self, database_ref):
        """The tools for a database's data (by record, id or name), once it is available."""
        from renderlocal.executor.postgres_admin import PostgresAdmin

        database = self.state.get_database(getattr(database_ref, "id", database_ref))
        return PostgresAdmin(self.engine, database, self.state.password_of(database.id))

    def _peak_memory(self, job_id: str) -> int | None:
        from renderlocal.executor.peak_memory import peak_memory

        return peak_memory(self.engine, self.state.get_job, job_id, container_of=self.jobs.container_of)

    def rehearse(self, service_ref: str, start_command: str, plan_id: str | None = None,
                 database_ref: str | None = None) -> dict:
        self._executing()
        self.refresh()
        return self.rehearsals.start(self.state.get_service(service_ref), start_command, plan_id, database_ref)

    def decide_rehearsal(self, rehearsal_id: str, keep: bool) -> dict:
        self._executing()
        return self.rehearsals.decide(rehearsal_id, keep)

    def cancel_job(self, job_id: str) -> Job:
        self._executing()
        self.state.get_job(job_id)  # unknown ids: NotFound
        return self.jobs.cancel(job_id)

    def build(self, service_ref: str, trigger: str = "manual", wait: bool = False) -> Build:
        """Start a build of the service; with ``wait``, return it finished."""
        self._executing()
        build, thread = self.builds.start(self.state.get_service(service_ref), trigger)
        if wait:
            thread.join()
            return self.state.get_build(build.id)
        return build

    def cancel_build(self, build_id: str) -> Build:
        self._executing()
        return self.builds.cancel(build_id)

    def deploy(self, service_ref: str, trigger=DeployTrigger.API, wait: bool = False) -> Deploy:
        """Deploy the service's last successful build; with ``wait``, return it live or failed."""
        self._executing()
        self.refresh()  # the instances get the blueprint's env as it is now
        deploy = self.deploys.create(self.state.get_service(service_ref), trigger)
        return self.deploys.wait(deploy.id, timeout=None) if wait else deploy

    def cancel_deploy(self, deploy_id: str) -> Deploy:
        self._executing()
        return self.deploys.cancel(deploy_id)

    def suspend(self, service_ref: str) -> Service:
        self._executing()
        return self.deploys.suspend(self.state.get_service(service_ref))

    def resume(self, service_ref: str) -> Deploy | None:
        self._executing()
        return self.deploys.resume(self.state.get_service(service_ref))

    def up(self, service_refs: list[str] | None = None) -> tuple[list[Build], list[Deploy], list[str]]:
        """Bring every service (or those named) up: a build for each that has no successful build
        (it is deployed once it succeeds), a deploy for each built one not live yet. A cron job only
        needs its build: it fires on its schedule. Every database and Key Value (or those the named
        services need) starts in the background. Returns the builds, deploys and data store ids."""
        self._executing()
        self.refresh()
        services = [self.state.get_service(ref) for ref in service_refs] if service_refs else self.state.list_services()
        builds, deploys = [], []
        stores = [d.id for d in self.datastores.all()] if not service_refs else \
            list(dict.fromkeys(i for s in services for i in s.needs))
        if stores:
            self.datastores.mark_starting(stores)
            threading.Thread(target=self._start_data_stores, args=(stores,), name="up-data-stores", daemon=True).start()
        for service in services:
            if service.suspended or self.deploys.live(service) is not None:
                continue
            if not service.lastSuccessfulBuildId:
                build, _thread = self.builds.start(service, trigger="up")
                builds.append(build)
            elif service.runs:
                deploys.append(self.deploys.create(service, DeployTrigger.BLUEPRINT_SYNC))
        return builds, deploys, stores

    def _start_data_stores(self, store_ids: list[str]) -> None:
        try:
            self.datastores.ensure(store_ids)
        except RenderLocalError:  # recorded on the store (unavailable); a job or deploy that needs it says why
            pass
        finally:
            self.datastores.unmark_starting(store_ids)

    def _prepare(self, service_id: str) -> None:
        """Before anything of the service runs: the databases and Key Value its env comes from answer."""
        service = self.state.get_service(service_id)
        if service.needs:
            self.datastores.ensure(service.needs)

    def trigger_cron(self, service_ref: str) -> Job:
        """Run the cron service now, whatever its schedule says."""
        self._executing()
        self.refresh()
        return self.cron.trigger(self.state.get_service(service_ref))

    def _cron_run(self, service: Service) -> Job:
        return self.jobs.create(service, trigger="cron")

    def down(self, volumes: bool = False) -> None:
        """Stop every service's instances; with ``volumes``, remove their disks and the network too."""
        self._executing()
        for service in self.state.list_services(include_removed=True):
            if service.runs:
                self.deploys.down(service)
                if volumes:
                    self.deploys.remove_disk(service)
        self.datastores.stop(remove_volumes=volumes)
        if volumes:
            self.network.remove()

    def set_watch(self, service_ref: str, on: bool) -> Service:
        self._executing()
        service = self.services.update(self.state.get_service(service_ref).id, watch=on)
        self.sync_watchers()
        return service

    def set_log_stream(self, endpoint: str, tls: bool = False, token: str | None = None, insecure: bool = False,
                       max_queue_bytes: int | None = None, preview: str | None = None) -> dict:
        self._executing()
        self.log_streams.set(endpoint, tls, token, insecure, max_queue_bytes, preview)
        self.start_forwarding()
        self.forwarder.begin()
        self.forwarder.wake.set()
        return self.log_streams.view()

    def clear_log_stream(self) -> None:
        self._executing()
        self.log_streams.clear()

    def set_log_stream_service(self, service_ref: str, enabled: bool) -> dict:
        self._executing()
        self.log_streams.set_service(service_ref, enabled)
        return self.log_streams.view()

    # -- background duties (the supervisor loop calls these) -----------------------------------
    def sync_watchers(self) -> None:
        """Run a watcher for each service in watch mode, and only those."""
        from renderlocal.executor.watch import watcher_for

        wanted = {s.id: s for s in self.state.list_services() if s.watch}
        with self._watch_guard:
            for service_id in list(self.watchers):
                if service_id not in wanted or not self.watchers[service_id].alive:  # a dead one is started anew
                    self.watchers.pop(service_id).stop()
            for service_id, service in wanted.items():
                if service_id not in self.watchers:
                    self.watchers[service_id] = watcher_for(
                        service, self.blueprint_path.parent, lambda service_id=service_id: self._watch_build(service_id),
                    ).start()

    def _watch_build(self, service_id: str) -> threading.Thread:
        _build, thread = self.builds.start(self.state.get_service(service_id), trigger="watch")
        return thread

    def start_forwarding(self) -> None:
        """Forward logs to the log stream, when one is set (the forwarder waits for one)."""
        if self.forwarder is None:
            from renderlocal.executor.forwarder import LogForwarder

            self.forwarder = LogForwarder(self.log_streams, self.state).start()

    def _built(self, build: Build) -> None:
        """autoDeploy (or watch mode): a new build of a running service goes live, as a commit does on Render."""
        service = self.state.get_service(build.serviceId)
        if service.lastSuccessfulBuildId != build.id or service.suspended or not service.runs:
            return
        if build.trigger == "up":  # render-local up: built first, now deployed
            self.deploys.create(service, DeployTrigger.BLUEPRINT_SYNC, build_id=build.id)
        elif (service.autoDeploy or build.trigger == "watch") and self.deploys.live(service) is not None:
            self.deploys.create(service, DeployTrigger.NEW_COMMIT, build_id=build.id)

    def _builds_jobs_run(self) -> set[str]:
        return {job.buildId for job in self.state.unsettled_jobs()}
