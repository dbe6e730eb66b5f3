"""The services of the blueprint, kept in the store: ids stay stable across edits.

Ids and ``generateValue`` secrets survive a lost ``services.json`` (or ``databases.json``,
``keyvalues.json``): they are derived from the blueprint name and kind under the data dir's own
random key (``secrets/blueprint-key``), not drawn at random, so a sync after a loss makes the
same ones. The key, not the data dir's path, so a moved data dir keeps its ids and a data dir
deleted and made again at the same path gets new ones (never a leftover volume of the old one).
Records made before the key existed have random ids: after a loss those are taken back from the
job records (each job's env names its service and holds its generated values). The last builds
come back from the build records.
"""

from __future__ import annotations

import base64
import os
import string
from pathlib import Path

from renderlocal.core.blueprint import (
    DatabaseSpec,
    KeyValueSpec,
    ServiceSpec,
    load_blueprint,
)
from renderlocal.core.errors import BlueprintError, NotFound
from renderlocal.core.models import Database, KeyValue, Service, stamp
from renderlocal.core.secret_key import SecretKey
from renderlocal.core.state import State
from renderlocal.core.statuses import BuildStatus, DeployStatus
from renderlocal.executor.datastores import free_port

_LOWER = string.ascii_lowercase + string.digits
_ID_ALPHABET = string.digits + string.ascii_lowercase
KEY_FILE = "blueprint-key"  # under secrets/
RECENT_JOBS = 100  # the jobs a lost service record is looked for in: those the first page of a list reads


class Derivation:
    """Ids and generated values of one data dir, derived from its key (made once, owner-only)."""

    def __init__(self, data_dir: Path):
        self.secret = SecretKey(data_dir, KEY_FILE)

    def _digest(self, *parts: str) -> bytes:
        return self.secret.digest(*parts)

    def record_id(self, prefix: str, name: str) -> str:
        """``prefix-`` and 20 characters of [0-9a-z], as Render's (a Postgres id ends in ``-a``)."""
        number = int.from_bytes(self._digest("id", prefix, name), "big")
        chars = []
        for _ in range(20):
            number, digit = divmod(number, 36)
            chars.append(_ID_ALPHABET[digit])
        return f"{prefix}-{''.join(chars)}" + ("-a" if prefix == "dpg" else "")

    def generated_value(self, service_id: str, key: str) -> str:
        """A 256-bit url-safe secret, as Render's generateValue (and ``secrets.token_urlsafe(32)``)."""
        return base64.urlsafe_b64encode(self._digest("generateValue", service_id, key)).rstrip(b"=").decode()

    def suffix(self, record_id: str) -> str:
        """Four letters or digits for names Render makes up (a database's)."""
        digest = self._digest("suffix", record_id)
        return "".join(_LOWER[b % len(_LOWER)] for b in digest[:4])


class ServiceCatalog:
    """Syncs ``render.yaml`` into the store; ``warnings`` says what the last sync could not do."""

    def __init__(self, state: State, blueprint_path: Path):
        self.state = state
        self.store = state.store
        self.blueprint_path = blueprint_path
        self.derived = Derivation(state.data_dir)
        self.blueprint_warnings: list[str] = []
        self._synced: tuple | None = None  # what the last sync read: see refresh

    @property
    def warnings(self) -> list[str]:
        """What the last sync could not do, and the store files found damaged (and what became of them)."""
        return self.blueprint_warnings + self.state.problems

    def sync(self) -> list[Service]:
        """Bring the stored services in line with render.yaml (ids stay stable)."""
        blueprint_stat = _stat(self.blueprint_path)
        blueprint = load_blueprint(self.blueprint_path)
        warnings = list(blueprint.warnings)
        secret_keys = tuple(sorted({v.key for spec in blueprint.services for v in spec.env_vars if v.secret}))
        now = stamp()
        databases = self._sync_stores("databases", blueprint.databases, _database_from_spec, now)
        key_values = self._sync_stores("keyvalues", blueprint.key_values, _key_value_from_spec, now)
        with self.store.changing("services") as table:
            docs = {doc["name"]: dict(doc) for doc in table.all()}
            lost = [spec for spec in blueprint.services if spec.name not in docs]
            docs |= self._recovered(lost)  # none lost: nothing read
            table.truncate()
            synced = [_service_from_spec(spec, docs.pop(spec.name, None), now, warnings, self.derived)
                      for spec in blueprint.services]
            _resolve_from_service(blueprint, synced)
            _resolve_data_stores(blueprint, synced, {d.name: d for d in databases}, {k.name: k for k in key_values},
                                 self.state.password_of)
            for service in synced:
                table.insert(service.to_doc())
            for doc in docs.values():  # gone from the blueprint: kept for job history
                doc["inBlueprint"] = False
                table.insert(doc)
        self.blueprint_warnings = warnings
        self._synced = self._sync_state(blueprint_stat, secret_keys)
        return synced

    def _recovered(self, specs: list[ServiceSpec]) -> dict[str, dict]:
        """What the records of services new to services.json (added, or lost with it) can be given
        back: an id the job records name them by (random ids from before the key; a derived one
        comes out the same anyway), generated values from the newest job's env, last builds."""
        if not specs:
            return {}
        seen: dict[str, tuple[str, dict]] = {}  # name -> (createdAt, env) of its newest job
        for doc in self.state.job_store.query(limit=RECENT_JOBS):  # live.json and recent.json: no shard read
            env = doc.get("env") or {}
            name = env.get("RENDER_SERVICE_NAME")
            if isinstance(name, str) and isinstance(env.get("RENDER_SERVICE_ID"), str):
                if name not in seen or doc["createdAt"] > seen[name][0]:
                    seen[name] = (doc["createdAt"], env)
        recovered = {}
        for spec in specs:
            prefix = _prefix(spec)
            env = seen.get(spec.name, (None, {}))[1]
            service_id = env.get("RENDER_SERVICE_ID", "")
            if not service_id.startswith(prefix + "-"):
                service_id, env = self.derived.record_id(prefix, spec.name), {}
            generated = {var.key: env[var.key] for var in spec.env_vars if var.generate and isinstance(env.get(var.key), str)}
            recovered[spec.name] = {"id": service_id, "generatedEnv": generated} | self._last_builds(service_id)
        return recovered

    def _last_builds(self, service_id: str) -> dict:
        """The latest and the last successful build of a service, and its live deploy, from their records."""
        builds = sorted(self.store.find("builds", serviceId=service_id), key=lambda b: b["createdAt"], reverse=True)
        succeeded = [b for b in builds if b["status"] == BuildStatus.SUCCEEDED]
        live = sorted((d for d in self.store.find("deploys", serviceId=service_id, status=DeployStatus.LIVE)),
                      key=lambda d: d["createdAt"], reverse=True)
        recovered = {"latestBuildId": builds[0]["id"] if builds else None,
                     "lastSuccessfulBuildId": succeeded[0]["id"] if succeeded else None}
        return recovered | ({"liveDeployId": live[0]["id"]} if live else {})

    def _sync_stores(self, table_name: str, specs, record_of, now: str) -> list:
        """Databases or Key Value as the blueprint has them; ids, names made up once, ports and state kept."""
        with self.store.changing(table_name) as table:
            docs = {doc["name"]: dict(doc) for doc in table.all()}
            table.truncate()
            records = [record_of(spec, docs.pop(spec.name, None), now, self.derived) for spec in specs]
            for record in records:
                table.insert(record.to_doc())
            for doc in docs.values():  # gone from the blueprint: its volume stays until down --volumes
                doc["inBlueprint"] = False
                table.insert(doc)
        return records

    def _sync_state(self, blueprint_stat, secret_keys: tuple) -> tuple:
        """What a sync depends on: the blueprint as it was read, and the secrets from our env."""
        return blueprint_stat, secret_keys, tuple(os.environ.get(key) for key in secret_keys)

    def refresh(self) -> None:
        """Sync if the blueprint changed; a broken one keeps the last good sync, with a warning."""
        synced = self._synced
        if synced is not None and synced[0] is not None and self._sync_state(_stat(self.blueprint_path), synced[1]) == synced:
            return  # unchanged since the last sync (a job create syncs first: keep it cheap)
        try:
            self.sync()
        except BlueprintError as exc:
            if not self.state.list_services(include_removed=True):
                raise  # nothing loaded before: the error is all there is
            self.blueprint_warnings = [f"{exc} (using the services as last loaded)"]

    def update(self, service_id: str, **changes) -> Service:
        doc = self.store.update("services", service_id, lambda d: d.update(changes))
        if doc is None:
            raise NotFound(f"unknown service {service_id!r}")
        return Service.from_doc(doc)


def _prefix(spec: ServiceSpec) -> str:
    return "crn" if spec.type == "cron" else "srv"


def _service_from_spec(spec: ServiceSpec, old: dict | None, now: str, warnings: list[str],
                       derived: Derivation) -> Service:
    """The service as the blueprint has it; ``old``: its record (or what was recovered of it)."""
    prefix = _prefix(spec)
    keep = old is not None and old["id"].startswith(prefix + "-")
    service_id = old["id"] if keep else derived.record_id(prefix, spec.name)
    created = old.get("createdAt", now) if keep else now  # a recovered record has no createdAt
    generated = dict(old.get("generatedEnv", {})) if keep else {}
    env: dict[str, str] = {}
    for var in spec.env_vars:
        if var.generate:
            # Render generates a base64-ish 256-bit secret once per service: derived, so a lost record keeps it
            env[var.key] = generated.setdefault(var.key, derived.generated_value(service_id, var.key))
        elif var.secret:
            if var.key in os.environ:
                env[var.key] = os.environ[var.key]
            else:
                warnings.append(
                    f"{spec.name}: {var.key} is 'sync: false' and not set in render-local's environment; left unset"
                )
        else:
            env[var.key] = var.value or ""
    service = Service(
        id=service_id,
        name=spec.name,
        type=spec.type,
        runtime=spec.runtime,
        planId=spec.plan_id,
        rootDir=str(spec.root_dir),
        writtenPaths=dict(spec.written_paths),
        createdAt=created,
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
        secretKeys=sorted({var.key for var in spec.env_vars if var.secret}),
        lastSuccessfulBuildId=old.get("lastSuccessfulBuildId") if keep else None,
        latestBuildId=old.get("latestBuildId") if keep else None,
        inBlueprint=True,
        numInstances=spec.num_instances,
        healthCheckPath=spec.health_check_path,
        maxShutdownDelaySeconds=spec.max_shutdown_delay_seconds,
        preDeployCommand=spec.pre_deploy_command,
        disk=spec.disk,
    )
    service.internalHost = f"{spec.name}-{service_id[4:8]}"  # Render's internal hostnames: the name and a suffix
    for kept in ("suspended", "suspendedAt", "suspensions", "liveDeployId", "proxyPort", "lastCronRunAt"):  # state, not blueprint
        if keep and kept in old:
            setattr(service, kept, old[kept])
    if keep and service.to_doc() | {"updatedAt": old.get("updatedAt")} == old:
        service.updatedAt = old["updatedAt"]  # nothing changed: updatedAt says when something did
    return service


def _database_from_spec(spec: DatabaseSpec, old: dict | None, now: str, derived: Derivation) -> Database:
    record_id = old["id"] if old else derived.record_id("dpg", spec.name)
    # Render makes the names up from the database's name when the blueprint gives none: once (derived,
    # so a lost record gets the same names back, those its data volume was made with)
    name = spec.database_name or (old or {}).get("databaseName") or \
        f"{spec.name.replace('-', '_').lower()}_{derived.suffix(record_id)}"
    user = spec.user or f"{name}_user"
    fresh = Database(id=record_id, name=spec.name, databaseName=name, databaseUser=user, plan=spec.plan,
                     memoryMB=spec.memory_mb, version=str(spec.version), createdAt=(old or {}).get("createdAt", now),
                     updatedAt=now, diskSizeGB=spec.disk_size_gb, ipAllowList=[list(i) for i in spec.ip_allow_list],
                     versionLine=spec.version_line)
    return _keep_state(fresh, old)


def _key_value_from_spec(spec: KeyValueSpec, old: dict | None, now: str, derived: Derivation) -> KeyValue:
    fresh = KeyValue(id=old["id"] if old else derived.record_id("red", spec.name), name=spec.name, plan=spec.plan, memoryMB=spec.memory_mb,
                     maxmemoryPolicy=spec.maxmemory_policy, createdAt=(old or {}).get("createdAt", now), updatedAt=now,
                     ipAllowList=[list(i) for i in spec.ip_allow_list])
    return _keep_state(fresh, old)


DATA_STORE_STATE = ("status", "statusMessage", "hostPort", "image")  # learned by the control plane, not blueprint
NOT_STARTED = "not started yet: up, or the first job or deploy that needs it, starts it"


def _keep_state(record, old: dict | None):
    """A data store's state survives a sync; updatedAt moves only with a change. A new one gets its
    localhost port now, so its external URL is known before it starts."""
    if old is None:
        record.hostPort, record.status, record.statusMessage = free_port(), "unavailable", NOT_STARTED
        return record
    for name in DATA_STORE_STATE:
        if name in old:
            setattr(record, name, old[name])
    if record.to_doc() | {"updatedAt": old.get("updatedAt")} == old:
        record.updatedAt = old["updatedAt"]
    return record


def _resolve_data_stores(blueprint, services: list[Service], databases: dict, key_values: dict, password_of) -> None:
    """``fromDatabase`` and ``fromService`` of a Key Value, with the values Render gives inside its
    network; each service records the data stores its env needs (they start before it runs)."""
    for spec, service in zip(blueprint.services, services):
        needs = []
        for var in spec.env_vars:
            if var.from_database is not None:
                database = databases[var.from_database[0]]
                service.envVars[var.key] = database.property_value(var.from_database[1], password_of(database.id))
                needs.append(database.id)
            elif var.from_service is not None and var.from_service[0] in ("keyvalue", "redis"):
                store = key_values[var.from_service[1]]
                service.envVars[var.key] = store.property_value(var.from_service[2])
                needs.append(store.id)
        service.needs = list(dict.fromkeys(needs))


def _resolve_from_service(blueprint, services: list[Service]) -> None:
    """``fromService`` values, as Render gives them inside its network: another service's internal
    host, its port, both, or one of its env vars."""
    by_name = {service.name: service for service in services}
    for spec, service in zip(blueprint.services, services):
        for var in spec.env_vars:
            if var.from_service is None or var.from_service[1] not in by_name:
                continue  # one render-local skips: the loader warned
            kind, name, prop, other_key = var.from_service
            if kind in ("keyvalue", "redis"):
                continue  # a data store: see _resolve_data_stores
            other = by_name[name]
            if other_key is not None:
                if other_key in other.envVars:
                    service.envVars[var.key] = other.envVars[other_key]
            elif prop == "host":
                service.envVars[var.key] = other.internalHost
            elif prop == "port":
                service.envVars[var.key] = str(other.port)
            else:
                service.envVars[var.key] = f"{other.internalHost}:{other.port}"


def _stat(path: Path) -> tuple | None:
    try:
        info = path.stat()
    except OSError:
        return None
    return info.st_mtime_ns, info.st_size, info.st_ino
