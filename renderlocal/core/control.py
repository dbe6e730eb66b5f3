"""The control plane: the one object every face (CLI, TUI, API) talks to."""

from __future__ import annotations

import functools
import os
import secrets
import threading
from pathlib import Path

from renderlocal.core.blueprint import Blueprint, ServiceSpec, load_blueprint
from renderlocal.core.datadir import resolve_blueprint, resolve_data_dir
from renderlocal.core.envvars import env_digest, env_digests
from renderlocal.core.errors import BlueprintError, NotFound
from renderlocal.core.ids import new_id
from renderlocal.core.models import Service, stamp
from renderlocal.core.builds import Builder
from renderlocal.core.jobs import ENV_GRACE, ENV_TIMEOUT, JobRunner
from renderlocal.core.jobstore import JobStore
from renderlocal.core.logstore import LogStore
from renderlocal.core.store import Store

JOB_ENV_NAMES = (ENV_TIMEOUT, ENV_GRACE, "DOCKER_HOST", "DOCKER_CONFIG")  # besides the blueprint's secrets
DEFAULT_DOCKER_HOST = "unix:///var/run/docker.sock"


class ControlPlane:
    def __init__(self, data_dir=None, blueprint=None, engine=None):
        self.data_dir: Path = resolve_data_dir(data_dir)
        os.chmod(self.data_dir, 0o700)  # holds secrets and the API token
        self.blueprint_path: Path = resolve_blueprint(blueprint)
        self.store = Store(self.data_dir / "store")
        self.job_store = JobStore(self.data_dir / "store" / "jobs")
        self.logs = LogStore(self.data_dir / "logs")
        self.warnings: list[str] = []
        self._engine = engine
        self._engine_lock = threading.Lock()
        self.builds = Builder(self)
        self.jobs = JobRunner(self)
        self._synced_state: tuple | None = None  # the blueprint as of the last sync: see refresh
        self.watchers: dict = {}  # service id -> ServiceWatcher, in long-running faces
        self.forwarder = None  # LogForwarder, while a stream is configured

    # -- engine ----------------------------------------------------------
    @property
    def engine(self):
        """The docker client, connected on first use (keeps start-up fast)."""
        if self._engine is None:
            with self._engine_lock:
                if self._engine is None:
                    from renderlocal.core.engine import connect

                    self._engine = connect()
        return self._engine

    @functools.cached_property
    def engine_id(self) -> str:
        """Which engine this process's jobs run on: its address, or ``default``."""
        from renderlocal.core.engine import engine_url

        url = engine_url()
        return "default" if url in (None, DEFAULT_DOCKER_HOST) else url

    # -- services ----------------------------------------------------------
    def sync_services(self) -> list[Service]:
        """Bring the stored services in line with render.yaml (ids stay stable)."""
        blueprint_stat = _stat(self.blueprint_path)
        blueprint = load_blueprint(self.blueprint_path)
        self.warnings = list(blueprint.warnings)
        secret_keys = tuple(sorted({v.key for spec in blueprint.services for v in spec.env_vars if v.secret}))
        now = stamp()
        with self.store.table("services") as table:
            docs = {doc["name"]: dict(doc) for doc in table.all()}
            table.truncate()
            synced = []
            for spec in blueprint.services:
                service = self._service_from_spec(spec, docs.pop(spec.name, None), now)
                synced.append(service)
                table.insert(service.to_doc())
            for doc in docs.values():  # gone from the blueprint: kept for job history
                doc["inBlueprint"] = False
                table.insert(doc)
        self._synced_state = self._sync_state(blueprint_stat, secret_keys)
        return synced

    def _sync_state(self, blueprint_stat, secret_keys: tuple) -> tuple:
        """What a sync depends on: the blueprint as it was read, the services as stored (another
        process may sync another blueprint into this data dir), and the secrets from our env."""
        return (blueprint_stat, _stat(self.store.path("services")), secret_keys,
                tuple(os.environ.get(key) for key in secret_keys))

    def env_differences(self, digests: dict[str, str], key: bytes) -> list[str]:
        """The env vars a job made here reads from this process whose value differs in
        another process (given as its ``env_digests(key)``): the blueprint's ``sync: false``
        secrets, the job timeout and cancel grace, and what picks the engine."""
        self.refresh()
        names = set(self._synced_state[2] if self._synced_state else ()) | set(JOB_ENV_NAMES)
        default_engine = env_digest(key, DEFAULT_DOCKER_HOST)

        def value(found: dict, name: str):
            digest = found.get(name)
            return None if name == "DOCKER_HOST" and digest == default_engine else digest  # the same engine

        mine = env_digests(key, names)
        return sorted(name for name in names if value(mine, name) != value(digests, name))

    def refresh(self) -> None:
        """Sync if the blueprint changed and reads; a broken one keeps the last good sync, with a warning."""
        synced = self._synced_state
        if synced is not None and None not in synced[:2] and self._sync_state(_stat(self.blueprint_path), synced[2]) == synced:
            return  # unchanged since this process synced (a job create syncs first: keep it cheap)
        try:
            self.sync_services()
        except BlueprintError as exc:
            if not self.list_services(include_removed=True):
                raise  # nothing loaded before: the error is all there is
            self.warnings = [f"{exc} (using the services as last loaded)"]

    def _service_from_spec(self, spec: ServiceSpec, old: dict | None, now: str) -> Service:
        prefix = "crn" if spec.type == "cron" else "srv"
        keep = old is not None and old["id"].startswith(prefix + "-")
        generated = dict(old.get("generatedEnv", {})) if keep else {}
        env: dict[str, str] = {}
        for var in spec.env_vars:
            if var.generate:
                # Render generates a base64-ish 256-bit secret once per service.
                env[var.key] = generated.setdefault(var.key, secrets.token_urlsafe(32))
            elif var.secret:
                if var.key in os.environ:
                    env[var.key] = os.environ[var.key]
                else:
                    self.warnings.append(
                        f"{spec.name}: {var.key} is 'sync: false' and not set in render-local's environment; left unset"
                    )
            else:
                env[var.key] = var.value or ""
        service = Service(
            id=old["id"] if keep else new_id(prefix),
            name=spec.name,
            type=spec.type,
            runtime=spec.runtime,
            planId=spec.plan_id,
            rootDir=str(spec.root_dir),
            createdAt=old["createdAt"] if keep else now,
            updatedAt=now,
            dockerfilePath=str(spec.dockerfile_path) if spec.dockerfile_path else None,
            dockerContext=str(spec.docker_context) if spec.docker_context else None,
            dockerCommand=spec.docker_command,
            buildCommand=spec.build_command,
            startCommand=spec.start_command,
            schedule=spec.schedule,
            autoDeploy=spec.auto_deploy,
            watch=old.get("watch", spec.auto_deploy) if keep else spec.auto_deploy,
            buildPaths=list(spec.build_paths),
            buildIgnoredPaths=list(spec.build_ignored_paths),
            envVars=env,
            generatedEnv=generated,
            lastSuccessfulBuildId=old.get("lastSuccessfulBuildId") if keep else None,
            latestBuildId=old.get("latestBuildId") if keep else None,
            inBlueprint=True,
        )
        if keep and service.to_doc() | {"updatedAt": old.get("updatedAt")} == old:
            service.updatedAt = old["updatedAt"]  # nothing changed: updatedAt says when something did
        return service

    def list_services(self, include_removed: bool = False) -> list[Service]:
        services = [Service.from_doc(doc) for doc in self.store.all("services")]
        return [s for s in services if include_removed or s.inBlueprint]

    def get_service(self, ref: str) -> Service:
        """A service by id or by name."""
        for service in self.list_services(include_removed=True):
            if ref in (service.id, service.name):
                return service
        names = ", ".join(s.name for s in self.list_services()) or "none"
        raise NotFound(f"unknown service {ref!r}; services: {names}")

    def update_service(self, service_id: str, **changes) -> Service:
        doc = self.store.update("services", service_id, lambda d: d.update(changes))
        if doc is None:
            raise NotFound(f"unknown service {service_id!r}")
        return Service.from_doc(doc)

    # -- builds and jobs: the operations every face offers --------------------------
    def build(self, service_ref: str, trigger: str = "manual", wait: bool = True):
        """Start a build of the service; with wait, return the finished build."""
        service = self.get_service(service_ref)
        self.engine  # fail before recording a build nobody can run
        build, thread = self.builds.start(service, trigger)
        if wait:
            thread.join()
            return self.builds.get(build.id)
        return build

    def create_job(self, service_ref: str, start_command: str | None = None, plan_id: str | None = None,
                   env=None, supervise: bool = True):
        self.refresh()  # the env snapshot is the blueprint as it is now
        service = self.get_service(service_ref)
        return self.jobs.create(service, start_command, plan_id, env, supervise=supervise)

    def recover(self, follow: bool = True) -> list[str]:
        """After a crash: end builds nobody runs, adopt jobs nobody supervises."""
        self.builds.recover()
        return self.jobs.reconcile(follow=follow)

    def set_watch(self, service_ref: str, on: bool):
        service = self.update_service(self.get_service(service_ref).id, watch=on)
        self.sync_watchers()
        return service

    def sync_watchers(self) -> None:
        """Run a watcher for each service in watch mode, and only those."""
        from renderlocal.core.watch import watcher_for

        wanted = {s.id: s for s in self.list_services() if s.watch}
        for service_id in list(self.watchers):
            if service_id not in wanted:
                self.watchers.pop(service_id).stop()
        for service_id, service in wanted.items():
            if service_id not in self.watchers:
                self.watchers[service_id] = watcher_for(self, service).start()

    @property
    def log_streams(self):
        from renderlocal.core.logstream import LogStreams

        return LogStreams(self)

    def start_forwarding(self) -> None:
        """Forward logs to the log stream from this process (if it wins the lock)."""
        if self.forwarder is None:
            from renderlocal.core.logstream import LogForwarder

            self.forwarder = LogForwarder(self).start()

    def close(self, drain_seconds: float = 5.0) -> None:
        for watcher in self.watchers.values():
            watcher.stop()
        self.watchers.clear()
        if self.forwarder is not None:
            self.forwarder.stop(drain_seconds)
            self.forwarder = None


def _stat(path: Path) -> tuple | None:
    try:
        info = path.stat()
    except OSError:
        return None
    return info.st_mtime_ns, info.st_size, info.st_ino
