"""Load a Render Blueprint (``render.yaml``) into service specs.

Every error names the file and the line; a field render-local does not emulate
becomes a warning that names it, never a crash.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from renderlocal.core.errors import BlueprintError, InvalidInput
from renderlocal.core.plans import SERVICE_TYPES, key_value_plan, plan_from_slug, postgres_plan

NATIVE_RUNTIMES = ("python", "node", "go", "ruby", "rust", "elixir")
RUNTIMES = ("docker", "image", "static") + NATIVE_RUNTIMES

# Render fields we read but do not act on: each gets a warning naming it.
NOT_EMULATED = {
    "region", "scaling", "domains", "repo", "branch",
    "previews", "pullRequestPreviewsEnabled", "ipAllowList",
    "registryCredential", "image", "staticPublishPath", "headers",
    "routes", "initialDeployHook", "envSpecificDetails", "plan_id",
}
SERVICE_FIELDS = {
    "type", "name", "runtime", "env", "plan", "rootDir", "dockerfilePath", "dockerContext",
    "dockerCommand", "buildCommand", "startCommand", "schedule", "disk", "envVars",
    "autoDeploy", "autoDeployTrigger", "buildFilter", "numInstances", "healthCheckPath",
    "maxShutdownDelaySeconds", "preDeployCommand",
}
FROM_SERVICE_PROPERTIES = ("host", "port", "hostport")
FROM_KEY_VALUE_PROPERTIES = ("connectionString", "host", "port", "hostport")
FROM_DATABASE_PROPERTIES = ("connectionString", "host", "port", "user", "password", "database")
DATABASE_FIELDS = {"name", "databaseName", "user", "plan", "postgresMajorVersion", "diskSizeGB", "ipAllowList",
                   "region", "readReplicas", "highAvailability"}
KEY_VALUE_FIELDS = {"type", "name", "plan", "ipAllowList", "maxmemoryPolicy", "region"}
POSTGRES_VERSIONS = range(11, 19)  # the versions Render offers
NEWEST_POSTGRES = 18  # Render's default; the nearest one this engine has runs (with a warning)
MAXMEMORY_POLICIES = ("noeviction", "allkeys-lru", "allkeys-lfu", "allkeys-random", "volatile-lru", "volatile-lfu",
                      "volatile-random", "volatile-ttl")
MAX_INSTANCES = 10  # a laptop's worth; Render allows more, each instance is a container here


class _LineDict(dict):
    """A mapping that remembers the line of itself and of each key."""

    line: int = 0
    key_lines: dict


class _LineLoader(yaml.SafeLoader):
    def construct_mapping(self, node, deep=False):
        mapping = _LineDict(super().construct_mapping(node, deep=deep))
        mapping.line = node.start_mark.line + 1
        mapping.key_lines = {}
        for key_node, _value in node.value:
            try:
                mapping.key_lines[key_node.value] = key_node.start_mark.line + 1
            except TypeError:  # unhashable key; construct_mapping already complained
                pass
        return mapping


_LineLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _LineLoader.construct_mapping
)


@dataclass(frozen=True)
class EnvVarSpec:
    key: str
    value: str | None = None
    generate: bool = False
    secret: bool = False  # sync: false, supplied by the user
    from_service: tuple | None = None  # (type, name, property or None, envVarKey or None), resolved at sync
    from_database: tuple | None = None  # (name, property), resolved at sync
    line: int = field(default=0, compare=False)


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    type: str
    runtime: str
    plan_id: str
    root_dir: Path
    written_paths: dict = field(default_factory=dict)  # rootDir, dockerfilePath, dockerContext as render.yaml says them
    dockerfile_path: Path | None = None
    docker_context: Path | None = None
    docker_command: str | None = None
    build_command: str | None = None
    start_command: str | None = None
    schedule: str | None = None
    disk: dict | None = None  # {"name", "mountPath", "sizeGB"}
    num_instances: int = 1
    health_check_path: str | None = None
    max_shutdown_delay_seconds: int = 30
    pre_deploy_command: str | None = None
    env_vars: tuple[EnvVarSpec, ...] = ()
    auto_deploy: bool = False
    build_paths: tuple[str, ...] = ()
    build_ignored_paths: tuple[str, ...] = ()
    line: int = 0


@dataclass(frozen=True)
class DatabaseSpec:
    """A ``databases:`` entry: a PostgreSQL server."""

    name: str
    database_name: str | None  # None: generated once (Render's: the name, underscored, and a suffix)
    user: str | None  # None: <database name>_user
    plan: str  # as Render's API spells it (basic_256mb)
    memory_mb: int
    version: int
    disk_size_gb: int | None = None
    ip_allow_list: tuple = ()
    line: int = 0
    version_line: int = 0


@dataclass(frozen=True)
class KeyValueSpec:
    """A ``type: keyvalue`` (or the older ``redis``) service: a Redis-compatible server."""

    name: str
    plan: str
    memory_mb: int
    maxmemory_policy: str = "allkeys-lru"
    ip_allow_list: tuple = ()
    line: int = 0


@dataclass
class Blueprint:
    path: Path
    services: list[ServiceSpec]
    warnings: list[str] = field(default_factory=list)
    databases: list[DatabaseSpec] = field(default_factory=list)
    key_values: list[KeyValueSpec] = field(default_factory=list)


def load_blueprint(path: str | Path) -> Blueprint:
    path = Path(path).resolve()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BlueprintError(path, None, "blueprint not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BlueprintError(path, None, f"cannot read blueprint: {exc}") from None
    return parse_blueprint(text, path)


def parse_blueprint(text: str, path: Path) -> Blueprint:
    try:
        document = yaml.load(text, Loader=_LineLoader)  # noqa: S506 - SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        problem = exc.problem or exc.context or "malformed YAML"
        raise BlueprintError(path, line, f"malformed YAML: {problem}") from None
    except yaml.YAMLError as exc:
        raise BlueprintError(path, None, f"malformed YAML: {exc}") from None
    return _Reader(path).read(document)


class _Reader:
    def __init__(self, path: Path):
        self.path = path
        self.base = path.parent
        self.warnings: list[str] = []

    def fail(self, line: int | None, message: str) -> BlueprintError:
        return BlueprintError(self.path, line, message)

    def warn(self, line: int | None, message: str) -> None:
        where = f"{self.path.name}:{line}" if line else self.path.name
        self.warnings.append(f"{where}: {message}")

    def read(self, document: Any) -> Blueprint:
        if not isinstance(document, dict):
            raise self.fail(1, "a blueprint is a mapping with a 'services' list")
        for key in document:
            if key not in ("services", "envVarGroups", "databases", "version", "previews"):
                self.warn(document.key_lines.get(key), f"top-level field {key!r} is not emulated; ignored")
        groups = self.read_groups(document)
        databases = self.read_databases(document)
        services_doc = document.get("services", [])
        if not isinstance(services_doc, list) or not (services_doc or databases):
            raise self.fail(document.key_lines.get("services", document.line),
                            "'services' must be a non-empty list (or the blueprint needs 'databases')")
        services: list[ServiceSpec] = []
        self.key_values: list[KeyValueSpec] = []
        seen: dict[str, int] = {}
        self.skipped: set[str] = set()
        for index, entry in enumerate(services_doc):
            spec = self.read_service(index, entry, groups, document.key_lines.get("services"))
            if spec is None:
                continue
            if spec.name in seen:
                raise self.fail(spec.line, f"services[{index}]: duplicate service name {spec.name!r} (first at line {seen[spec.name]})")
            seen[spec.name] = spec.line
            if isinstance(spec, KeyValueSpec):
                self.key_values.append(spec)
            else:
                services.append(spec)
        self.check_references(services, databases)
        return Blueprint(self.path, services, self.warnings, databases, self.key_values)

    def read_databases(self, document: dict) -> list[DatabaseSpec]:
        raw = document.get("databases") or []
        if not isinstance(raw, list):
            raise self.fail(document.key_lines.get("databases"), "'databases' must be a list")
        databases, seen = [], {}
        for index, entry in enumerate(raw):
            where = f"databases[{index}]"
            if not isinstance(entry, dict) or not isinstance(entry.get("name"), str) or not entry["name"].strip():
                raise self.fail(getattr(entry, "line", document.key_lines.get("databases")), f"{where}: needs a 'name'")
            name = entry["name"]
            where = f"databases[{index}] ({name})"
            if name in seen:
                raise self.fail(entry.line, f"{where}: duplicate database name {name!r} (first at line {seen[name]})")
            seen[name] = entry.line
            at = lambda key, entry=entry: entry.key_lines.get(key, entry.line)  # noqa: E731
            for key in entry:
                if key not in DATABASE_FIELDS:
                    self.warn(at(key), f"{where}: {key!r} is not a database field render-local knows; ignored")
                elif key in ("region", "readReplicas", "highAvailability"):
                    self.warn(at(key), f"{where}: {key!r} is not emulated (one local server); ignored")
            for key in ("databaseName", "user"):
                value = entry.get(key)
                if value is not None and (not isinstance(value, str) or not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", value)):
                    raise self.fail(at(key), f"{where}: {key!r} must be a lowercase identifier (letters, digits, _)")
            try:
                plan, memory = postgres_plan(entry.get("plan", "basic-256mb"))
            except InvalidInput as exc:
                raise self.fail(at("plan"), f"{where}: {exc}") from None
            version = entry.get("postgresMajorVersion", NEWEST_POSTGRES)
            if isinstance(version, str) and version.isdigit():
                version = int(version)
            if isinstance(version, bool) or version not in POSTGRES_VERSIONS:
                raise self.fail(at("postgresMajorVersion"), f"{where}: 'postgresMajorVersion' must be one of "
                                                            f"{POSTGRES_VERSIONS.start}..{POSTGRES_VERSIONS.stop - 1}")
            disk = entry.get("diskSizeGB")
            if disk is not None and (isinstance(disk, bool) or not isinstance(disk, int) or disk < 1):
                raise self.fail(at("diskSizeGB"), f"{where}: 'diskSizeGB' must be a whole number of GB")
            databases.append(DatabaseSpec(name, entry.get("databaseName"), entry.get("user"), plan, memory, version,
                                          disk, self.read_allow_list(entry, where, required=False), entry.line,
                                          at("postgresMajorVersion") if "postgresMajorVersion" in entry else 0))
        return databases

    def read_allow_list(self, entry: dict, where: str, required: bool) -> tuple:
        """``ipAllowList``: accepted and shown, not enforced (every local client may connect)."""
        raw = entry.get("ipAllowList")
        if raw is None:
            if required:
                raise self.fail(entry.line, f"{where}: 'ipAllowList' is required for Key Value ([] for none, as on Render)")
            return ()
        if not isinstance(raw, list) or not all(isinstance(i, dict) and isinstance(i.get("source"), str) for i in raw):
            raise self.fail(entry.key_lines.get("ipAllowList", entry.line),
                            f"{where}: 'ipAllowList' is a list of {{source: CIDR, description: ...}}")
        return tuple((i["source"], str(i.get("description", ""))) for i in raw)

    def read_key_value(self, entry: dict, name: str, where: str) -> KeyValueSpec:
        at = lambda key: entry.key_lines.get(key, entry.line)  # noqa: E731
        for key in entry:
            if key not in KEY_VALUE_FIELDS:
                self.warn(at(key), f"{where}: {key!r} is not a Key Value field render-local knows; ignored")
        try:
            plan, memory = key_value_plan(entry.get("plan", "starter"))
        except InvalidInput as exc:
            raise self.fail(at("plan"), f"{where}: {exc}") from None
        policy = entry.get("maxmemoryPolicy", "allkeys-lru")
        if policy not in MAXMEMORY_POLICIES:
            raise self.fail(at("maxmemoryPolicy"), f"{where}: 'maxmemoryPolicy' must be one of {', '.join(MAXMEMORY_POLICIES)}")
        return KeyValueSpec(name, plan, memory, policy, self.read_allow_list(entry, where, required=True), entry.line)

    def check_references(self, services: list[ServiceSpec], databases: list[DatabaseSpec]) -> None:
        """Every fromService names a service (or Key Value) of this blueprint, every fromDatabase one of
        its databases (one render-local skips: a warning)."""
        names = {spec.name for spec in services}
        key_values = {spec.name for spec in self.key_values}
        database_names = {spec.name for spec in databases}
        for spec in services:
            for var in spec.env_vars:
                if var.from_database is not None:
                    if var.from_database[0] not in database_names:
                        raise self.fail(var.line, f"{spec.name}: {var.key} comes from database {var.from_database[0]!r}, "
                                                  f"which is not in this blueprint's databases "
                                                  f"({', '.join(sorted(database_names)) or 'none'})")
                    continue
                if var.from_service is None:
                    continue
                kind, target, prop, _other_key = var.from_service
                if kind in ("keyvalue", "redis"):
                    if target not in key_values:
                        raise self.fail(var.line, f"{spec.name}: {var.key} comes from Key Value {target!r}, which is not "
                                                  f"in this blueprint (Key Value: {', '.join(sorted(key_values)) or 'none'})")
                    if prop not in FROM_KEY_VALUE_PROPERTIES:
                        raise self.fail(var.line, f"{spec.name}: fromService property of {var.key} must be one of "
                                                  f"{', '.join(FROM_KEY_VALUE_PROPERTIES)} for Key Value")
                    continue
                if target in names:
                    continue
                if target in self.skipped:
                    self.warn(var.line, f"{spec.name}: {var.key} comes from {target}, which render-local skips; left unset")
                    continue
                raise self.fail(var.line, f"{spec.name}: {var.key} comes from service {target!r}, which is not in "
                                          f"this blueprint (services: {', '.join(sorted(names))})")

    def read_groups(self, document: dict) -> dict[str, tuple[EnvVarSpec, ...]]:
        groups: dict[str, tuple[EnvVarSpec, ...]] = {}
        raw = document.get("envVarGroups") or []
        if not isinstance(raw, list):
            raise self.fail(document.key_lines.get("envVarGroups"), "'envVarGroups' must be a list")
        for index, group in enumerate(raw):
            where = f"envVarGroups[{index}]"
            if not isinstance(group, dict) or not isinstance(group.get("name"), str):
                raise self.fail(getattr(group, "line", None), f"{where}: needs a 'name'")
            groups[group["name"]] = self.read_env(group, where, {}, allow_groups=False)
        return groups

    def read_service(self, index: int, entry: Any, groups: dict, list_line: int | None) -> ServiceSpec | None:
        where = f"services[{index}]"
        if not isinstance(entry, dict):
            raise self.fail(list_line, f"{where}: each service must be a mapping")
        line = entry.line

        def at(key: str) -> int:
            return entry.key_lines.get(key, line)

        name = entry.get("name")
        if not isinstance(name, str) or not name.strip():
            raise self.fail(at("name"), f"{where}: 'name' is required and must be a string")
        where = f"services[{index}] ({name})"
        svc_type = entry.get("type")
        if svc_type in ("redis", "keyvalue"):
            return self.read_key_value(entry, name, where)
        if svc_type not in SERVICE_TYPES:
            raise self.fail(at("type"), f"{where}: 'type' must be one of {', '.join(SERVICE_TYPES)}, not {svc_type!r}")
        runtime = entry.get("runtime", entry.get("env"))
        if runtime not in RUNTIMES:
            raise self.fail(at("runtime"), f"{where}: 'runtime' must be one of {', '.join(RUNTIMES)}, not {runtime!r}")
        if runtime in ("static", "image"):
            self.warn(at("runtime"), f"{where}: runtime {runtime!r} is not emulated; service skipped")
            self.skipped.add(name)
            return None

        for key in entry:
            if key in SERVICE_FIELDS:
                continue
            kind = "is not emulated" if key in NOT_EMULATED else "is not a field render-local knows"
            self.warn(at(key), f"{where}: {key!r} {kind}; ignored")

        try:
            plan = plan_from_slug(svc_type, entry.get("plan", "starter"))
        except InvalidInput as exc:
            raise self.fail(at("plan"), f"{where}: {exc}") from None

        strings = {}
        for key in ("rootDir", "dockerfilePath", "dockerContext", "dockerCommand", "buildCommand", "startCommand",
                    "schedule", "healthCheckPath", "preDeployCommand"):
            value = entry.get(key)
            if value is not None and not isinstance(value, str):
                raise self.fail(at(key), f"{where}: {key!r} must be a string")
            strings[key] = value

        root = (self.base / (strings["rootDir"] or ".")).resolve()
        if not root.is_dir():
            raise self.fail(at("rootDir"), f"{where}: rootDir {str(root)!r} is not a directory")
        dockerfile = context = None
        if runtime == "docker":
            dockerfile = (root / (strings["dockerfilePath"] or "Dockerfile")).resolve()
            context = (root / (strings["dockerContext"] or ".")).resolve()
            if not context.is_dir():
                raise self.fail(at("dockerContext"), f"{where}: dockerContext {str(context)!r} is not a directory")
        elif strings["dockerfilePath"] or strings["dockerContext"] or strings["dockerCommand"]:
            self.warn(line, f"{where}: docker fields are ignored for runtime {runtime!r}")
        if runtime in NATIVE_RUNTIMES and not strings["startCommand"]:
            self.warn(line, f"{where}: no 'startCommand'; every job must give its own")
        if svc_type == "cron" and not strings["schedule"]:
            raise self.fail(line, f"{where}: a cron service needs a 'schedule'")
        if svc_type != "cron" and strings["schedule"]:
            self.warn(at("schedule"), f"{where}: 'schedule' only applies to cron services; ignored")
        if strings["schedule"] and svc_type == "cron":
            problem = schedule_problem(strings["schedule"])
            if problem:
                raise self.fail(at("schedule"), f"{where}: schedule {strings['schedule']!r} is not a cron expression: {problem}")
        if strings["healthCheckPath"] and (svc_type != "web" or not strings["healthCheckPath"].startswith("/")):
            raise self.fail(at("healthCheckPath"), f"{where}: 'healthCheckPath' is a path such as /healthz, on web services only")

        instances = entry.get("numInstances", 1)
        if isinstance(instances, bool) or not isinstance(instances, int) or not 1 <= instances <= MAX_INSTANCES:
            raise self.fail(at("numInstances"), f"{where}: 'numInstances' must be a whole number from 1 to {MAX_INSTANCES}")
        delay = entry.get("maxShutdownDelaySeconds", 30)
        if isinstance(delay, bool) or not isinstance(delay, int) or not 1 <= delay <= 300:
            raise self.fail(at("maxShutdownDelaySeconds"), f"{where}: 'maxShutdownDelaySeconds' must be 1 to 300 (seconds)")
        if svc_type == "cron" and (strings["preDeployCommand"] or "numInstances" in entry or "disk" in entry):
            raise self.fail(line, f"{where}: a cron service has no instances to deploy: no preDeployCommand, "
                                  "numInstances or disk")

        disk = entry.get("disk")
        if disk is not None:
            disk = self.read_disk(disk, at("disk"), where)
            if instances > 1:
                raise self.fail(at("numInstances"), f"{where}: a service with a disk runs one instance (as on Render)")

        auto_deploy = entry.get("autoDeploy", False)
        if not isinstance(auto_deploy, bool):
            raise self.fail(at("autoDeploy"), f"{where}: 'autoDeploy' must be true or false")
        trigger = entry.get("autoDeployTrigger")
        if trigger is not None:
            if trigger not in ("commit", "checksPass", "off"):
                raise self.fail(at("autoDeployTrigger"), f"{where}: 'autoDeployTrigger' must be commit, checksPass or off")
            auto_deploy = trigger != "off"

        paths, ignored = (), ()
        build_filter = entry.get("buildFilter")
        if build_filter is not None:
            if not isinstance(build_filter, dict):
                raise self.fail(at("buildFilter"), f"{where}: 'buildFilter' must be a mapping")
            paths = self.string_list(build_filter, "paths", where)
            ignored = self.string_list(build_filter, "ignoredPaths", where)

        return ServiceSpec(
            name=name, type=svc_type, runtime=runtime, plan_id=plan.id, root_dir=root,
            written_paths={key: strings[key] for key in ("rootDir", "dockerfilePath", "dockerContext") if strings[key]},
            dockerfile_path=dockerfile, docker_context=context,
            docker_command=strings["dockerCommand"], build_command=strings["buildCommand"],
            start_command=strings["startCommand"], schedule=strings["schedule"], disk=disk,
            num_instances=instances, health_check_path=strings["healthCheckPath"],
            max_shutdown_delay_seconds=delay, pre_deploy_command=strings["preDeployCommand"],
            env_vars=self.read_env(entry, where, groups, allow_groups=True),
            auto_deploy=auto_deploy, build_paths=paths, build_ignored_paths=ignored, line=line,
        )

    def read_disk(self, disk: Any, line: int, where: str) -> dict:
        if not isinstance(disk, dict):
            raise self.fail(line, f"{where}: 'disk' needs 'name', 'mountPath' and 'sizeGB'")
        name, mount, size = disk.get("name"), disk.get("mountPath"), disk.get("sizeGB", 1)
        if not isinstance(name, str) or not name.strip():
            raise self.fail(disk.key_lines.get("name", line), f"{where}: disk 'name' is required")
        if not isinstance(mount, str) or not mount.startswith("/") or mount.rstrip("/") in ("", "/opt/render/project/src"):
            raise self.fail(disk.key_lines.get("mountPath", line), f"{where}: disk 'mountPath' must be an absolute path "
                                                                   "other than / and the code's folder")
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise self.fail(disk.key_lines.get("sizeGB", line), f"{where}: disk 'sizeGB' must be a whole number of GB")
        return {"name": name, "mountPath": mount.rstrip("/"), "sizeGB": size}

    def string_list(self, mapping: dict, key: str, where: str) -> tuple[str, ...]:
        value = mapping.get(key) or []
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise self.fail(mapping.key_lines.get(key, mapping.line), f"{where}: buildFilter.{key} must be a list of strings")
        return tuple(value)

    def read_env(self, owner: dict, where: str, groups: dict, allow_groups: bool) -> tuple[EnvVarSpec, ...]:
        raw = owner.get("envVars") or []
        if not isinstance(raw, list):
            raise self.fail(owner.key_lines.get("envVars", owner.line), f"{where}: 'envVars' must be a list")
        specs: dict[str, EnvVarSpec] = {}
        for index, entry in enumerate(raw):
            spot = f"{where}.envVars[{index}]"
            if not isinstance(entry, dict):
                raise self.fail(owner.key_lines.get("envVars", owner.line), f"{spot}: each entry must be a mapping")
            if "fromGroup" in entry:
                name = entry["fromGroup"]
                if not allow_groups:
                    raise self.fail(entry.line, f"{spot}: a group cannot include another group")
                if name not in groups:
                    known = ", ".join(groups) or "none defined"
                    raise self.fail(entry.line, f"{spot}: unknown envVarGroup {name!r} (known: {known})")
                for spec in groups[name]:
                    specs.setdefault(spec.key, spec)
                continue
            key = entry.get("key")
            if not isinstance(key, str) or not key:
                raise self.fail(entry.line, f"{spot}: 'key' is required")
            if "value" in entry:
                value = entry["value"]
                if isinstance(value, (dict, list)) or value is None:
                    raise self.fail(entry.line, f"{spot}: 'value' of {key} must be a string")
                if isinstance(value, bool):
                    value = "true" if value else "false"
                specs[key] = EnvVarSpec(key, value=str(value))
            elif entry.get("generateValue") is True:
                specs[key] = EnvVarSpec(key, generate=True)
            elif entry.get("sync") is False:
                specs[key] = EnvVarSpec(key, secret=True)
            elif "fromService" in entry:
                specs[key] = EnvVarSpec(key, from_service=self.read_from_service(entry["fromService"], entry.line, spot, key),
                                        line=entry.line)
            elif "fromDatabase" in entry:
                ref = entry["fromDatabase"]
                choices = ", ".join(FROM_DATABASE_PROPERTIES)
                if not isinstance(ref, dict) or not isinstance(ref.get("name"), str) or "property" not in ref:
                    raise self.fail(entry.line, f"{spot}: fromDatabase of {key} needs 'name' and 'property' ({choices})")
                if ref["property"] not in FROM_DATABASE_PROPERTIES:
                    raise self.fail(entry.line, f"{spot}: fromDatabase property {ref['property']!r} of {key} is not "
                                                f"one of {choices}")
                specs[key] = EnvVarSpec(key, from_database=(ref["name"], ref["property"]), line=entry.line)
            else:
                raise self.fail(entry.line, f"{spot}: {key} needs 'value', 'generateValue: true' or 'sync: false'")
        return tuple(specs.values())

    def read_from_service(self, ref: Any, line: int, spot: str, key: str) -> tuple:
        if not isinstance(ref, dict) or not isinstance(ref.get("name"), str) or not isinstance(ref.get("type"), str):
            raise self.fail(line, f"{spot}: fromService of {key} needs 'type' and 'name'")
        prop, other_key = ref.get("property"), ref.get("envVarKey")
        if (prop is None) == (other_key is None):
            raise self.fail(line, f"{spot}: fromService of {key} needs either 'property' "
                                  f"({', '.join(FROM_SERVICE_PROPERTIES)}) or 'envVarKey'")
        valid = FROM_KEY_VALUE_PROPERTIES if ref["type"] in ("keyvalue", "redis") else FROM_SERVICE_PROPERTIES
        if prop is not None and prop not in valid:
            raise self.fail(line, f"{spot}: fromService property {prop!r} of {key} is not one of {', '.join(valid)}"
                                  f" (for type {ref['type']})")
        if other_key is not None and not isinstance(other_key, str):
            raise self.fail(line, f"{spot}: fromService envVarKey of {key} must be a string")
        return ref["type"], ref["name"], prop, other_key


def schedule_problem(schedule: str) -> str | None:
    """Why a cron expression (five fields, UTC, as Render takes) is not valid, or None."""
    from datetime import datetime, timezone

    import cronsim

    if len(schedule.split()) != 5:
        return "it needs five fields: minute hour day-of-month month day-of-week"
    try:
        cronsim.CronSim(schedule, datetime(2000, 1, 1, tzinfo=timezone.utc))
    except cronsim.CronSimError as exc:
        return str(exc) or "unreadable"
    return None
