"""The OpenAPI document of exactly what the local API serves.

Render's routes (/v1) are described by Render's own definition, copied unchanged into
render_openapi.json by make_render_openapi.py: the same paths, parameters, schemas and
schema names a client generated from Render's spec knows. render-local's extensions are
added as extra properties of Render's schemas (never a changed one: ``openapi_document``
refuses a name Render already defines), and its own routes (/local) are described here.
"""

from __future__ import annotations

import copy
import json
from functools import lru_cache
from pathlib import Path

from renderlocal import __version__

RENDER_SPEC = Path(__file__).with_name("render_openapi.json")
_ERROR = {"$ref": "#/components/responses/Error"}
EXTENSION = "render-local extension: "


def _op(summary: str, ok: str, ok_schema: dict, params=(), body=None, errors=("400", "401", "404")) -> dict:
    op = {"summary": summary, "parameters": list(params),
          "responses": {ok: {"description": "OK", "content": {"application/json": {"schema": ok_schema}}}}}
    for code in errors:
        op["responses"][code] = _ERROR
    if body:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    return op


def _path(name: str) -> dict:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


def _query(name: str, schema: dict | None = None, description: str = "") -> dict:
    return {"name": name, "in": "query", "required": False, "schema": schema or {"type": "string"}, "description": description}


def _body(properties: dict, required: list[str]) -> dict:
    return {"type": "object", "required": required, "properties": properties}


def _ext(kind: str, description: str, **more) -> dict:
    return {"type": kind, "description": EXTENSION + description, **more}


LIST_PARAMS = [
    _query("cursor", description="id of the last item of the previous page"),
    _query("limit", {"type": "integer", "minimum": 1, "maximum": 100, "default": 20}),
]
JOB_FILTERS = [_query("status", description="comma-separated: pending,running,succeeded,failed,canceled")] + [
    _query(name, {"type": "string", "format": "date-time"})
    for name in ("createdBefore", "createdAfter", "startedBefore", "startedAfter", "finishedBefore", "finishedAfter")
]
JOB = {"$ref": "#/components/schemas/job"}
DEPLOY = {"$ref": "#/components/schemas/deploy"}
SERVICE = {"$ref": "#/components/schemas/service"}
BUILD = {"$ref": "#/components/schemas/Build"}
LOG_STREAM = {"$ref": "#/components/schemas/LogStream"}
LOCAL = "render-local's own route: "
KEY_VALUE_PAIR = {"type": "object", "required": ["key", "value"],
                  "properties": {"key": {"type": "string"}, "value": {"type": "string"}}}

# Render's inline schemas that render-local extends, given a name (the one Render's operation
# ids use) so each is said once: where Render has it, by (path, method, response or "body").
HOISTED = {
    "job": ("/services/{serviceId}/jobs", "post", "201"),
    "postJobBody": ("/services/{serviceId}/jobs", "post", "body"),
}
# render-local's extra keys of Render's objects (schema name -> properties).
EXTENSIONS = {
    "job": {
        "buildId": _ext("string", "the build the job ran on (the service's last successful build when created)"),
        "exitCode": _ext("integer", "the command's exit code, once it ended"),
        "failureReason": _ext("object", "why it failed: message, and evicted, nonZeroExit, oomKilled or "
                              "timedOutSeconds"),
        "costUSD": _ext("string", "prorated cost so far, a decimal: the plan's monthly price per second of a "
                        "30-day month"),
    },
    "postJobBody": {
        "envVars": _ext("array", "env var overrides for this job only", items=KEY_VALUE_PAIR),
        "syncFalseEnvVars": _ext("array", "the caller's values of the service's sync: false env vars "
                                 "(syncFalseEnvVarKeys); given, the job takes these and leaves the others unset",
                                 items=KEY_VALUE_PAIR),
        "timeoutSeconds": _ext("integer", "stop the job after this long (default: Render's 30 days)", minimum=1),
        "cancelGraceSeconds": _ext("integer", "seconds between SIGTERM and SIGKILL on cancel", minimum=0),
    },
    "deploy": {
        "serviceId": _ext("string", "the service deployed"),
        "buildId": _ext("string", "the build deployed"),
        "instances": _ext("array", "its instances: id, startedAt, stoppedAt", items={"type": "object"}),
        "failureReason": _ext("object", "why it failed: message"),
    },
    "service": {
        "planId": _ext("string", "the service's plan id (plan-srv-...)"),
        "lastSuccessfulBuildId": _ext("string", "the build its jobs and deploys run"),
        "watch": _ext("boolean", "rebuilds on every change to its files"),
        "syncFalseEnvVarKeys": _ext("array", "its sync: false env vars: a job takes their values from whoever "
                                    "creates it", items={"type": "string"}),
        "internalHost": _ext("string", "its name on the private network"),
        "liveDeployId": _ext("string", "its live deploy"),
    },
    "postgres": {"image": _ext("string", "the image that runs it"),
                 "statusMessage": _ext("string", "why it is not available")},
    "postgresDetail": {"image": _ext("string", "the image that runs it"),
                       "statusMessage": _ext("string", "why it is not available")},
    "keyValue": {"image": _ext("string", "the image that runs it"),
                 "statusMessage": _ext("string", "why it is not available")},
    "keyValueDetail": {"image": _ext("string", "the image that runs it"),
                       "statusMessage": _ext("string", "why it is not available")},
    "error": {"field": _ext("string", "the input the error is about (startCommand, planId, envVars...)")},
}


@lru_cache(maxsize=1)
def render_spec() -> dict:
    return json.loads(RENDER_SPEC.read_text())


def _hoist(document: dict) -> None:
    """Name Render's inline schemas of HOISTED, and point every equal copy at the name."""
    schemas = document["components"]["schemas"]
    for name, (path, method, status) in HOISTED.items():
        if name in schemas:
            raise ValueError(f"Render's spec already names a schema {name!r}")
        op = document["paths"]["/v1" + path][method]
        holder = op["requestBody"] if status == "body" else op["responses"][status]
        schema = holder["content"]["application/json"]["schema"]
        schemas[name] = copy.deepcopy(schema)
        _replace_equal(document["paths"], schema, {"$ref": f"#/components/schemas/{name}"})
        _replace_equal(schemas, schema, {"$ref": f"#/components/schemas/{name}"}, skip=name)


def _replace_equal(node, wanted: dict, ref: dict, skip: str | None = None) -> None:
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, value in list(items):
        if key == skip:
            continue
        if value == wanted:
            node[key] = dict(ref)
        else:
            _replace_equal(value, wanted, ref)


def _extend(schemas: dict) -> None:
    for name, extra in EXTENSIONS.items():
        properties = schemas[name].setdefault("properties", {})
        taken = sorted(set(extra) & set(properties))
        if taken:
            raise ValueError(f"render-local's extension of {name} redefines Render's {', '.join(taken)}")
        properties.update(copy.deepcopy(extra))


def openapi_document() -> dict:
    """Every route the app serves, by its full path (the API under /v1, this document at /openapi.json)."""
    render = copy.deepcopy(render_spec())
    paths = {"/v1" + path: item for path, item in render["paths"].items()}
    paths["/v1/logs/subscribe"]["get"]["description"] += (
        "\n\nrender-local: ownerId may be left out (there is one workspace); a plain HTTP GET gets 426.")
    paths["/v1/services/{serviceId}/jobs/{jobId}"]["get"].setdefault("parameters", []).extend([
        _query("waitFor", {"type": "string", "enum": ["finished"]},
               EXTENSION + "answer once the job has ended (or after timeout seconds), as it is then"),
        _query("timeout", {"type": "number", "maximum": 60}, EXTENSION + "seconds waitFor waits, default 0")])
    local = {
            "/local/status": {"get": _op(LOCAL + "the control plane answering: pid, data dir, blueprint, engine, "
                                         "blueprint warnings, and the change feed's epoch and sequence number", "200",
                                         {"type": "object"}, errors=("401",))},
            "/local/events": {"get": _op(
                LOCAL + "changes the control plane made after a sequence number, long-polled: the answer comes "
                "with the first change or after timeout seconds; reset means changes were missed (reload)", "200",
                {"$ref": "#/components/schemas/Events"}, [
                    _query("after", {"type": "integer"}, "default: now"),
                    _query("epoch", description="the epoch of the answer that gave after; another one resets"),
                    _query("timeout", {"type": "number", "maximum": 60}, "seconds to wait for a change, default 0")],
                errors=("400", "401"))},
            "/local/stop": {"post": _op(LOCAL + "stop a control plane a CLI started in the background, if idle (an "
                                        "optional body {\"reason\": text} says why, in its log)",
                                        "200", {"type": "object"}, errors=("400", "401", "409"))},
            "/local/up": {"post": _op(
                LOCAL + "bring services up (all, or body {\"services\": [names]}): a build for each without a "
                "successful one (deployed once it succeeds), a deploy for each built one not live yet", "202",
                {"type": "object", "properties": {"builds": {"type": "array", "items": BUILD},
                                                  "deploys": {"type": "array", "items": DEPLOY}}},
                errors=("400", "401", "404", "415", "503"))},
            "/local/down": {"post": _op(LOCAL + "stop every service's instances; volumes: remove disks and the network "
                                        "too", "200", {"type": "object"}, errors=("400", "401", "415"))},
            "/local/services/{serviceId}/cron-runs": {"post": _op(
                LOCAL + "run a cron service now (one run at a time)", "201", JOB, [_path("serviceId")],
                errors=("400", "401", "404", "409", "503"))},
            "/local/jobs": {"get": _op(LOCAL + "every service's jobs, newest first", "200", {"type": "array", "items": {
                "type": "object", "properties": {"job": JOB, "cursor": {"type": "string"}}}},
                LIST_PARAMS + JOB_FILTERS, errors=("400", "401"))},
            "/local/jobs/{jobId}": {"get": _op(LOCAL + "a job by its id alone", "200", JOB, [_path("jobId")])},
            "/local/services/{serviceId}/builds": {
                "get": _op(LOCAL + "the service's builds, newest first", "200", {"type": "array", "items": BUILD},
                           [_path("serviceId")]),
                "post": _op(LOCAL + "build the service now (returned building)", "201", BUILD, [_path("serviceId")],
                            errors=("401", "404", "503")),
            },
            "/local/services/{serviceId}/watch": {"put": _op(
                LOCAL + "rebuild on every change to the service's files, or stop", "200", SERVICE, [_path("serviceId")],
                _body({"watch": {"type": "boolean"}}, ["watch"]), ("400", "401", "404", "415"))},
            "/local/containers/{resourceId}": {"get": _op(
                LOCAL + "the running container of a job (its id), or of a service instance (an instance id, or a "
                "service's id or name: its first running instance), for a shell into it (render-local ssh); 409 "
                "when it does not run", "200", {"$ref": "#/components/schemas/RunningContainer"},
                [_path("resourceId")], errors=("401", "404", "409"))},
            "/local/stats": {"get": _op(
                LOCAL + "every running job's and service instance's latest memory and CPU sample", "200",
                {"type": "array", "items": {"$ref": "#/components/schemas/ResourceFigures"}}, errors=("401",))},
            "/local/stats/{resourceId}": {"get": _op(
                LOCAL + "memory and CPU of a running job or service instance against its plan's (sampled every "
                "2 s while asked for), with the last 60 samples; 409 when it does not run", "200",
                {"$ref": "#/components/schemas/ResourceFigures"}, [_path("resourceId")],
                errors=("401", "404", "409"))},
            "/local/billing/statement": {"get": _op(
                LOCAL + "a UTC month's statement: lines by service, kind (job, cron run, instance) and plan with "
                "runs, seconds and amounts (decimal strings) adding up to totalUSD to the cent", "200",
                {"type": "object"}, [_query("month", description="YYYY-MM (default: this month)")],
                errors=("400", "401"))},
            "/local/services/{serviceId}/forecast": {"get": _op(
                LOCAL + "a recurring job's monthly cost on each plan of its family: runs per month from its cron "
                "schedule (or perDay), the median duration of its successful runs (or duration)", "200",
                {"type": "object"}, [_path("serviceId"), _query("month", description="YYYY-MM"),
                                     _query("duration", {"type": "integer", "minimum": 1}),
                                     _query("perDay", {"type": "integer", "minimum": 1})])},
            "/local/services/{serviceId}/plan-comparisons": {"post": _op(
                LOCAL + "run a command once on each plan (planIds, default every plan of the family), one after "
                "another unless sequential is false; answers the comparison", "201", {"type": "object"},
                [_path("serviceId")], _body({"startCommand": {"type": "string"}, "planIds": {
                    "type": "array", "items": {"type": "string"}}, "sequential": {"type": "boolean"},
                    "envVars": {"type": "array", "items": {"type": "object"}}}, ["startCommand"]),
                ("400", "401", "404", "409"))},
            "/local/plan-comparisons/{comparisonId}": {"get": _op(
                LOCAL + "a plan comparison: each plan's run (status, seconds, cost, peak memory) and the cheapest "
                "plan that succeeded", "200", {"type": "object"}, [_path("comparisonId")])},
            "/local/databases/{database}/restore": {"post": _op(
                LOCAL + "load a pg_dump file (custom or plain; an absolute path on this machine) into the database, "
                "replacing what it holds (a snapshot is taken first)", "200", {"type": "object"}, [_path("database")],
                _body({"file": {"type": "string"}}, ["file"]), ("400", "401", "404", "409"))},
            "/local/databases/{database}/dump": {"post": _op(
                LOCAL + "write the database to a custom-format dump file (an absolute path on this machine)", "200",
                {"type": "object"}, [_path("database")], _body({"file": {"type": "string"}}, ["file"]),
                ("400", "401", "404", "409"))},
            "/local/databases/{database}/snapshots": {
                "get": _op(LOCAL + "the database's snapshots, newest first", "200", {"type": "array", "items": {
                    "type": "object"}}, [_path("database")], errors=("400", "401", "404", "409")),
                "post": _op(LOCAL + "snapshot the database (CREATE DATABASE ... TEMPLATE)", "201", {"type": "object"},
                            [_path("database")], _body({"label": {"type": "string"}}, []),
                            ("400", "401", "404", "409")),
            },
            "/local/databases/{database}/snapshots/{snapshot}": {"delete": _op(
                LOCAL + "drop a snapshot (by name or label)", "200", {"type": "object"},
                [_path("database"), _path("snapshot")], errors=("400", "401", "404", "409"))},
            "/local/databases/{database}/rollback": {"post": _op(
                LOCAL + "make the database what a snapshot holds (default: the latest); the snapshot stays", "200",
                {"type": "object"}, [_path("database")], _body({"snapshot": {"type": "string"}}, []),
                ("400", "401", "404", "409"))},
            "/local/services/{serviceId}/rehearsals": {"post": _op(
                LOCAL + "rehearse a migration: snapshot the service's database, run the command as a job, report "
                "its locks, schema diff and row counts", "201", {"type": "object"}, [_path("serviceId")],
                _body({"startCommand": {"type": "string"}, "planId": {"type": "string"},
                       "database": {"type": "string"}}, ["startCommand"]), ("400", "401", "404", "409"))},
            "/local/rehearsals/{rehearsalId}": {"get": _op(
                LOCAL + "a rehearsal: its status, steps, live locks and, once finished, its report", "200",
                {"type": "object"}, [_path("rehearsalId")])},
            "/local/rehearsals/{rehearsalId}/decision": {"post": _op(
                LOCAL + "keep what the rehearsal did, or roll the database back to its snapshot (once, after its "
                "job ended)", "200", {"type": "object"}, [_path("rehearsalId")],
                _body({"keep": {"type": "boolean"}}, ["keep"]), ("400", "401", "404", "409"))},
            "/local/builds/{buildId}": {"get": _op(LOCAL + "a build", "200", BUILD, [_path("buildId")])},
            "/local/builds/{buildId}/cancel": {"post": _op(
                LOCAL + "cancel a running build; the service keeps its last successful build", "200", BUILD,
                [_path("buildId")])},
            "/local/log-stream": {
                "get": _op(LOCAL + "the log stream: endpoint, masked token, sent, dropped, last error", "200", LOG_STREAM,
                           errors=("401",)),
                "put": _op(LOCAL + "forward every job and build log line to a syslog endpoint", "200", LOG_STREAM,
                           body=_body({"endpoint": {"type": "string", "description": "HOST:PORT"},
                                       "tls": {"type": "boolean"}, "insecure": {"type": "boolean"},
                                       "token": {"type": "string"}, "maxQueueBytes": {"type": "integer", "minimum": 1}},
                                      ["endpoint"]), errors=("400", "401", "415")),
                "delete": _op(LOCAL + "stop forwarding logs", "200", LOG_STREAM, errors=("401",)),
            },
            "/local/log-stream/services/{serviceId}": {"put": _op(
                LOCAL + "forward this service's logs, or keep them local", "200", LOG_STREAM, [_path("serviceId")],
                _body({"enabled": {"type": "boolean"}}, ["enabled"]), ("400", "401", "404", "415"))},
            "/openapi.json": {"get": {
                "summary": "This document", "security": [],
                "responses": {"200": {"description": "OpenAPI 3 document", "content": {"application/json": {
                    "schema": {"type": "object"}}}}}}},
    }
    document = {
        "openapi": render["openapi"],
        "info": {"title": "render-local API (Render-compatible)", "version": __version__,
                 "description": "Render's /v1 API for services, one-off jobs, deploys, data stores and logs, served "
                                "locally and described by Render's own definition (" + render["x-source"]["repo"]
                                + " " + render["x-source"]["file"] + ", blob " + render["x-source"]["blob"]
                                + "); render-local's own routes (builds, watch mode, the log stream, change "
                                "events) are under /local."},
        "servers": [{"url": "/"}],
        "security": render["security"],
        "tags": render["tags"],
        "paths": paths | local,
        "components": render["components"],
    }
    _hoist(document)
    components = document["components"]
    _extend(components["schemas"])
    components["responses"]["Error"] = {"description": "Error", "content": {"application/json": {
        "schema": {"$ref": "#/components/schemas/error"}}}}
    components["schemas"] |= LOCAL_SCHEMAS
    return document


LOCAL_SCHEMAS = {
    "Build": {"type": "object", "properties": {
        "id": {"type": "string"}, "serviceId": {"type": "string"},
        "status": {"type": "string", "enum": ["building", "succeeded", "failed", "canceled"]},
        "createdAt": {"type": "string", "format": "date-time"}, "trigger": {"type": "string"},
        "image": {"type": "string"}, "failureReason": {"type": "object", "nullable": True},
        "progress": {"type": "object", "description": "only while it builds: its current Dockerfile step",
                     "properties": {"step": {"type": "integer"}, "steps": {"type": "integer"},
                                    "text": {"type": "string"}}}}},
    "RunningContainer": {"type": "object", "properties": {
        "kind": {"type": "string", "enum": ["job", "instance"]}, "id": {"type": "string"},
        "serviceId": {"type": "string"}, "planId": {"type": "string"}, "containerId": {"type": "string"}}},
    "ResourceFigures": {"type": "object", "properties": {
        "id": {"type": "string"}, "kind": {"type": "string", "enum": ["job", "instance"]},
        "planId": {"type": "string"},
        "latest": {"$ref": "#/components/schemas/ResourceSample"},
        "history": {"type": "array", "items": {"$ref": "#/components/schemas/ResourceSample"},
                    "description": "oldest first; only in the answer about one"}}},
    "ResourceSample": {"type": "object", "nullable": True, "properties": {
        "at": {"type": "string", "format": "date-time"},
        "memoryBytes": {"type": "integer", "description": "in use, less reclaimable page cache (as docker stats)"},
        "memoryLimitBytes": {"type": "integer", "description": "the plan's memory"},
        "memoryFraction": {"type": "number"},
        "cpu": {"type": "number", "nullable": True, "description": "CPUs in use since the sample before"},
        "cpuLimit": {"type": "number", "description": "the plan's CPUs"},
        "cpuFraction": {"type": "number", "nullable": True}}},
    "LogStream": {"type": "object", "properties": {"endpoint": {"type": "string", "nullable": True}}},
    "Events": {"type": "object", "properties": {
        "epoch": {"type": "string"}, "seq": {"type": "integer"}, "reset": {"type": "boolean"},
        "changes": {"type": "array", "items": {"type": "object", "properties": {
            "seq": {"type": "integer"}, "kind": {"type": "string", "enum": ["job", "build", "service", "settings"]},
            "id": {"type": "string"}, "status": {"type": "string"}}}}}},
}
