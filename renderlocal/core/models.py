"""The records the control plane keeps, and their Render-shaped JSON.

Documents are stored as plain JSON (strings for times and money); these
dataclasses give them names and compute what is derived (cost, duration).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from datetime import datetime
from decimal import Decimal

from renderlocal.core import billing
from renderlocal.core.clock import parse_stored, to_rfc3339, utcnow
from renderlocal.core.plans import Plan, get_plan
from renderlocal.core.statuses import FINAL_DEPLOY_STATUSES, FINAL_JOB_STATUSES, JobStatus

DEFAULT_PORT = 10000  # Render's PORT when a service sets none

RENDER_SERVICE_TYPES = {
    "web": "web_service",
    "pserv": "private_service",
    "worker": "background_worker",
    "cron": "cron_job",
}

# the one local workspace every resource belongs to (Render's ownerId)
OWNER = {"id": "tea-local", "name": "render-local", "email": "render-local@localhost", "type": "user"}
LOCAL_DASHBOARD = "http://localhost/render-local"  # Render's dashboardUrl is required; there is none here


class _Doc:
    """Dataclass <-> stored document, ignoring unknown keys from newer versions."""

    @classmethod
    def from_doc(cls, doc: dict):
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in doc.items() if k in names})

    def to_doc(self) -> dict:
        return asdict(self)


@dataclass
class Service(_Doc):
    id: str
    name: str
    type: str
    runtime: str
    planId: str
    rootDir: str  # the directory on this machine
    createdAt: str
    updatedAt: str
    dockerfilePath: str | None = None
    dockerContext: str | None = None
    writtenPaths: dict = field(default_factory=dict)  # rootDir, dockerfilePath, dockerContext as render.yaml has them
    dockerCommand: str | None = None
    buildCommand: str | None = None
    startCommand: str | None = None
    schedule: str | None = None
    autoDeploy: bool = False
    watch: bool = False
    buildPaths: list = field(default_factory=list)
    buildIgnoredPaths: list = field(default_factory=list)
    envVars: dict = field(default_factory=dict)  # resolved now: key -> value
    generatedEnv: dict = field(default_factory=dict)  # generateValue results, kept forever
    secretKeys: list = field(default_factory=list)  # its ``sync: false`` keys: a job takes their values from who asks
    lastSuccessfulBuildId: str | None = None
    latestBuildId: str | None = None
    inBlueprint: bool = True
    numInstances: int = 1
    healthCheckPath: str | None = None
    maxShutdownDelaySeconds: int = 30
    preDeployCommand: str | None = None
    disk: dict | None = None  # {"name", "mountPath", "sizeGB"}: a named volume, in its instances only
    internalHost: str = ""  # its name on the private network, as Render's "internal hostname" (besides its name)
    suspended: bool = False
    suspendedAt: str | None = None
    suspensions: list = field(default_factory=list)  # [{"suspendedAt", "resumedAt"?}]: its events outlive a resume
    liveDeployId: str | None = None
    proxyPort: int | None = None  # web: the localhost port its URL answers on, the same across deploys
    lastCronRunAt: str | None = None  # cron: when the schedule last fired (runs that were due are not repeated)
    needs: list = field(default_factory=list)  # ids of the databases and Key Value its env vars come from

    @property
    def plan(self) -> Plan:
        return get_plan(self.planId)

    @property
    def runs(self) -> bool:
        """Whether it has instances when deployed (cron services only run on their schedule)."""
        return self.type != "cron"

    @property
    def port(self) -> int:
        """The port its instances listen on: PORT from its env vars, else Render's 10000."""
        raw = self.envVars.get("PORT", "")
        return int(raw) if raw.isdigit() and 0 < int(raw) < 65536 else DEFAULT_PORT

    @property
    def url(self) -> str | None:
        """Where a web service answers on this machine."""
        return f"http://localhost:{self.proxyPort}" if self.type == "web" and self.proxyPort else None

    @property
    def own_start_command(self) -> str | None:
        return self.dockerCommand if self.runtime == "docker" else self.startCommand

    def to_render(self) -> dict:
        """Render's service object: every field its spec requires, enums spelled as Render spells
        them; plus render-local's ``planId``, ``lastSuccessfulBuildId``, ``watch``,
        ``syncFalseEnvVarKeys``, ``internalHost`` and ``liveDeployId``."""
        return present(
            id=self.id, name=self.name, type=RENDER_SERVICE_TYPES[self.type], ownerId=OWNER["id"],
            autoDeploy="yes" if self.autoDeploy else "no", notifyOnFail="default", slug=self.name,
            dashboardUrl=f"{LOCAL_DASHBOARD}/services/{self.id}", rootDir=self.writtenPaths.get("rootDir", ""),
            suspended="suspended" if self.suspended else "not_suspended", suspenders=["user"] if self.suspended else [],
            createdAt=self.createdAt, updatedAt=self.updatedAt, serviceDetails=self._details(),
            planId=self.planId, lastSuccessfulBuildId=self.lastSuccessfulBuildId, watch=self.watch,
            syncFalseEnvVarKeys=list(self.secretKeys), internalHost=self.internalHost, liveDeployId=self.liveDeployId,
        )

    def _details(self) -> dict:
        """``serviceDetails`` with the fields Render requires for this type of service."""
        details = {"env": self.runtime, "runtime": self.runtime, "plan": self.plan.slug.replace(" ", "_"),
                   "region": "oregon", "buildPlan": "starter", "envSpecificDetails": self._env_specific(),
                   "planId": self.planId}
        if self.type == "cron":
            return details | present(schedule=self.schedule or "", lastSuccessfulRunAt=self.lastCronRunAt)
        details |= {"numInstances": self.numInstances, "maxShutdownDelaySeconds": self.maxShutdownDelaySeconds}
        if self.type in ("web", "pserv"):
            details["openPorts"] = [{"port": self.port, "protocol": "TCP"}]
            # web: where it answers here once deployed; pserv: its address on the private network
            details["url"] = (self.url or "") if self.type == "web" else f"http://{self.internalHost}:{self.port}"
        if self.type == "web":
            details["healthCheckPath"] = self.healthCheckPath or ""
        if self.disk:
            details["disk"] = {"id": f"dsk-{self.id[4:]}", "name": self.disk["name"],
                               "mountPath": self.disk["mountPath"], "sizeGB": self.disk["sizeGB"]}
        return details

    def _env_specific(self) -> dict:
        """Render's ``dockerDetails`` or ``nativeEnvironmentDetails`` (required keys as strings)."""
        if self.runtime == "docker":
            written = self.writtenPaths  # as Render shows them: what render.yaml says, relative to rootDir
            return present(dockerCommand=self.dockerCommand or "", dockerContext=written.get("dockerContext", "."),
                           dockerfilePath=written.get("dockerfilePath", "./Dockerfile"),
                           preDeployCommand=self.preDeployCommand)
        return present(buildCommand=self.buildCommand or "", startCommand=self.startCommand or "",
                       preDeployCommand=self.preDeployCommand)


@dataclass
class Build(_Doc):
    id: str
    serviceId: str
    status: str
    createdAt: str
    trigger: str = "manual"
    startedAt: str | None = None
    finishedAt: str | None = None
    image: str | None = None  # the unique tag jobs run
    imageId: str | None = None
    failureReason: dict | None = None  # {"message", "step"?, "exitCode"?}
    snapshotDir: str | None = None
    cancelRequestedAt: str | None = None
    progress: dict | None = None  # while it builds: {"step", "steps", "text"} of its current Dockerfile step

    def to_render(self) -> dict:
        """Its record; ``progress`` only while it builds."""
        doc = self.to_doc()
        if doc["progress"] is None:
            del doc["progress"]
        return doc


@dataclass
class Deploy(_Doc):
    """A service's build run as its instances (containers on the private network)."""

    id: str
    serviceId: str
    buildId: str
    image: str
    status: str
    createdAt: str
    trigger: str = "api"  # a DeployTrigger: api, manual (the app), new_commit, service_resumed, blueprint_sync
    startedAt: str | None = None
    finishedAt: str | None = None
    liveAt: str | None = None
    failureReason: dict | None = None  # {"message", "exitCode"?, "instanceId"?}
    instances: list = field(default_factory=list)  # [{"id", "containerId", "startedAt", "stoppedAt"}]
    preDeployContainerId: str | None = None
    cancelRequestedAt: str | None = None
    events: list = field(default_factory=list)  # [{"at", "status", "message"}]

    @property
    def final(self) -> bool:
        return self.status in FINAL_DEPLOY_STATUSES

    def to_render(self) -> dict:
        """Render's deploy object (optional fields left out until they have a value), plus
        render-local's ``serviceId``, ``buildId``, ``instances`` and ``failureReason``."""
        doc = {"id": self.id, "image": {"ref": self.image}, "status": self.status, "trigger": self.trigger,
               "createdAt": self.createdAt,
               "updatedAt": (self.events[-1]["at"] if self.events else self.createdAt)}
        doc |= {k: v for k, v in (("startedAt", self.startedAt), ("finishedAt", self.finishedAt)) if v}
        doc |= {"serviceId": self.serviceId, "buildId": self.buildId,
                "instances": [{"id": i["id"], **({"startedAt": i["startedAt"]} if i.get("startedAt") else {}),
                               **({"stoppedAt": i["stoppedAt"]} if i.get("stoppedAt") else {})} for i in self.instances]}
        if self.failureReason:
            doc["failureReason"] = self.failureReason
        return doc

    def instance_seconds(self, now: datetime | None = None) -> list[tuple[datetime, datetime]]:
        """(from, to) of every instance's run, for billing: a running one up to ``now``."""
        now = now or utcnow()
        runs = []
        for instance in self.instances:
            start = parse_stored(instance.get("startedAt"))
            if start is not None:
                runs.append((start, parse_stored(instance.get("stoppedAt")) or now))
        return runs


@dataclass
class Job(_Doc):
    id: str
    serviceId: str
    startCommand: str
    planId: str
    createdAt: str
    buildId: str
    image: str
    status: str = JobStatus.PENDING
    startedAt: str | None = None
    finishedAt: str | None = None
    env: dict = field(default_factory=dict)  # snapshot at creation
    envOverrides: dict = field(default_factory=dict)
    timeoutSeconds: int = 30 * 86_400
    cancelGraceSeconds: int = 10  # SIGTERM to SIGKILL when canceled
    containerId: str | None = None
    exitCode: int | None = None
    failureReason: dict | None = None  # {"type", "message", ...}
    cancelRequestedAt: str | None = None
    timedOutAt: str | None = None
    logsComplete: bool = False  # every line the container printed is in the log file
    engine: str | None = None  # the engine it runs on (ControlPlane.engine_id): others leave it alone
    trigger: str = "api"  # api, or cron: a run of its cron service's schedule
    events: list = field(default_factory=list)  # [{"at", "status", "message"}]

    @property
    def plan(self) -> Plan:
        return get_plan(self.planId)

    @property
    def final(self) -> bool:
        return self.status in FINAL_JOB_STATUSES

    @property
    def settled(self) -> bool:
        """Ended, with every line of its log captured: nothing about it changes any more."""
        return self.final and self.logsComplete

    def started(self) -> datetime | None:
        return parse_stored(self.startedAt)

    def finished(self) -> datetime | None:
        return parse_stored(self.finishedAt)

    def cost(self, now: datetime | None = None) -> Decimal:
        """Cost so far (running) or total (finished)."""
        seconds = billing.billable_seconds(self.started(), self.finished(), now or utcnow())
        return billing.cost(self.plan, seconds)

    def to_render(self, now: datetime | None = None) -> dict:
        """Render's job object, plus render-local's ``buildId``, ``exitCode``, ``failureReason`` and
        ``costUSD``. Optional keys are left out until they have a value: Render's spec does not let
        them be null, and clients generated from it raise on a null."""
        return present(
            id=self.id, serviceId=self.serviceId, startCommand=self.startCommand, planId=self.planId,
            createdAt=self.createdAt, startedAt=self.startedAt, finishedAt=self.finishedAt, status=self.status,
            buildId=self.buildId, exitCode=self.exitCode, failureReason=self.failureReason,
            costUSD=billing.usd_text(self.cost(now), 8),
        )


def present(**fields) -> dict:
    """The fields that have a value (an API object leaves the others out rather than null)."""
    return {key: value for key, value in fields.items() if value is not None}


def stamp(moment: datetime | None = None) -> str:
    """A stored timestamp: RFC 3339, UTC, microseconds."""
    return to_rfc3339(moment or utcnow())


ALLOW_EVERYONE = [{"cidrBlock": "0.0.0.0/0", "description": "render-local: every local client (not enforced)"}]
POSTGRES_PORT = 5432
KEY_VALUE_PORT = 6379


def _local_keys(store) -> dict:
    """render-local's extensions of a data store's object: the image that runs it, why it is down."""
    return {key: value for key, value in (("image", store.image), ("statusMessage", store.statusMessage)) if value}


def _allow_list(entries: list) -> list[dict]:
    # Render's CLI refuses `render psql` when the list is empty: an empty one here means "everyone"
    return [{"cidrBlock": source, "description": description} for source, description in entries] or ALLOW_EVERYONE


@dataclass
class Database(_Doc):
    """A PostgreSQL server of the blueprint's ``databases:``, on the private network as its id
    (Render's internal host) and its name, and on a localhost port for the user's own tools."""

    id: str  # dpg-...-a
    name: str
    databaseName: str
    databaseUser: str
    plan: str
    memoryMB: int
    version: str  # the major version asked for
    createdAt: str
    updatedAt: str
    diskSizeGB: int | None = None
    ipAllowList: list = field(default_factory=list)  # [[source, description]]: shown, not enforced
    inBlueprint: bool = True
    status: str = "creating"  # creating, available, unavailable (stopped by down, or did not start)
    statusMessage: str | None = None  # why it is unavailable, when it did not start
    hostPort: int | None = None  # where it answers on this machine, kept across restarts
    image: str | None = None  # the image that runs it (the version asked for, or the nearest one here)
    versionLine: int = 0  # the blueprint line of postgresMajorVersion, for a warning about it

    kind = "postgres"

    @property
    def host(self) -> str:
        return self.id

    def internal_url(self, password: str) -> str:
        """What ``fromDatabase: connectionString`` gives inside the network (no port, as on Render)."""
        return f"postgresql://{self.databaseUser}:{password}@{self.host}/{self.databaseName}"

    def external_url(self, password: str) -> str:
        return f"postgresql://{self.databaseUser}:{password}@localhost:{self.hostPort}/{self.databaseName}"

    def property_value(self, prop: str, password: str) -> str:
        """A ``fromDatabase`` property as Render gives it inside its network."""
        return {"connectionString": self.internal_url(password), "host": self.host, "port": str(POSTGRES_PORT),
                "user": self.databaseUser, "password": password, "database": self.databaseName}[prop]

    def to_render(self) -> dict:
        """Render's postgres object (one local primary, in no region of Render's)."""
        doc = {
            "id": self.id, "ipAllowList": _allow_list(self.ipAllowList), "createdAt": self.createdAt,
            "updatedAt": self.updatedAt, "databaseName": self.databaseName, "databaseUser": self.databaseUser,
            "highAvailabilityEnabled": False, "name": self.name, "owner": OWNER, "plan": self.plan,
            "region": "oregon", "readReplicas": [], "role": "primary", "status": self.status,
            "version": self.version, "suspended": "not_suspended", "suspenders": [],
            "dashboardUrl": f"{LOCAL_DASHBOARD}/databases/{self.id}", "diskAutoscalingEnabled": False,
        }
        if self.diskSizeGB:
            doc["diskSizeGB"] = self.diskSizeGB
        return doc | _local_keys(self)

    def connection_info(self, password: str) -> dict:
        return {
            "password": password, "internalConnectionString": self.internal_url(password),
            "externalConnectionString": self.external_url(password),
            "psqlCommand": f"PGPASSWORD={password} psql -h localhost -p {self.hostPort} -U {self.databaseUser} "
                           f"{self.databaseName}",
        }


@dataclass
class KeyValue(_Doc):
    """A Key Value (Redis-compatible) server, on the private network as its id and its name."""

    id: str  # red-...
    name: str
    plan: str
    memoryMB: int
    maxmemoryPolicy: str
    createdAt: str
    updatedAt: str
    ipAllowList: list = field(default_factory=list)
    inBlueprint: bool = True
    status: str = "creating"
    statusMessage: str | None = None
    hostPort: int | None = None
    image: str | None = None

    kind = "keyvalue"

    @property
    def host(self) -> str:
        return self.id

    def internal_url(self) -> str:
        return f"redis://{self.host}:{KEY_VALUE_PORT}"

    def external_url(self) -> str:
        return f"redis://localhost:{self.hostPort}"

    def property_value(self, prop: str) -> str:
        """A ``fromService`` property of a Key Value, as Render gives it inside its network."""
        return {"connectionString": self.internal_url(), "host": self.host, "port": str(KEY_VALUE_PORT),
                "hostport": f"{self.host}:{KEY_VALUE_PORT}"}[prop]

    def to_render(self) -> dict:
        return {
            "id": self.id, "createdAt": self.createdAt, "updatedAt": self.updatedAt, "status": self.status,
            "region": "oregon", "plan": self.plan, "name": self.name, "owner": OWNER,
            "options": {"maxmemoryPolicy": self.maxmemoryPolicy.replace("-", "_")},
            "ipAllowList": _allow_list(self.ipAllowList), "version": "7",
            "dashboardUrl": f"{LOCAL_DASHBOARD}/key-value/{self.id}",
        } | _local_keys(self)

    def connection_info(self) -> dict:
        return {"internalConnectionString": self.internal_url(), "externalConnectionString": self.external_url(),
                "cliCommand": f"redis-cli -h localhost -p {self.hostPort}"}


def read_password(data_dir, store_id: str) -> str:
    """A data store's password (32 letters and digits, as Render's), made on first use, owner-only."""
    from pathlib import Path

    from renderlocal.core.atomic import publish_once

    path = Path(data_dir) / "secrets" / store_id
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        import secrets
        import string

        path.parent.mkdir(mode=0o700, exist_ok=True)
        alphabet = string.ascii_letters + string.digits
        publish_once(path, "".join(secrets.choice(alphabet) for _ in range(32)), private=True)
        return path.read_text().strip()
