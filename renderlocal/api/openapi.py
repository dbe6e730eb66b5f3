"""The OpenAPI document of exactly what the local API serves."""

from __future__ import annotations

from renderlocal import __version__

_ERROR = {"$ref": "#/components/responses/Error"}


def _op(summary: str, ok: str, ok_schema: dict, params=(), body=None, errors=("400", "401", "404")) -> dict:
    op = {"summary": summary, "parameters": list(params),
          "responses": {ok: {"description": "OK", "content": {"application/json": {"schema": ok_schema}}}}}
    for code in errors:
        op["responses"][code] = _ERROR
    if body:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    return op


def _no_body(summary: str, params) -> dict:
    return {"summary": summary, "parameters": list(params),
            "responses": {"202": {"description": "Accepted (no body, as Render answers)"},
                          "401": _ERROR, "404": _ERROR}}


def _path(name: str) -> dict:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


def _query(name: str, schema: dict | None = None, description: str = "") -> dict:
    return {"name": name, "in": "query", "required": False, "schema": schema or {"type": "string"}, "description": description}


LIST_PARAMS = [
    _query("cursor", description="id of the last item of the previous page"),
    _query("limit", {"type": "integer", "minimum": 1, "maximum": 100, "default": 20}),
]
JOB_FILTERS = [_query("status", description="comma-separated: pending,running,succeeded,failed,canceled")] + [
    _query(name, {"type": "string", "format": "date-time"})
    for name in ("createdBefore", "createdAfter", "startedBefore", "startedAfter", "finishedBefore", "finishedAfter")
]
JOB = {"$ref": "#/components/schemas/Job"}
DEPLOY = {"$ref": "#/components/schemas/Deploy"}
POSTGRES = {"$ref": "#/components/schemas/Postgres"}
KEY_VALUE = {"$ref": "#/components/schemas/KeyValue"}
DEPLOY_STATUSES = ["created", "queued", "build_in_progress", "update_in_progress", "live", "deactivated", "build_failed",
                   "update_failed", "canceled", "pre_deploy_in_progress", "pre_deploy_failed"]
KEY_VALUE = {"type": "object", "required": ["key", "value"],
             "properties": {"key": {"type": "string"}, "value": {"type": "string"}}}
RESOURCE = {"name": "resource", "in": "query", "required": True, "description": "a job or build id; repeatable",
            "schema": {"type": "array", "items": {"type": "string"}}, "style": "form", "explode": True}


def _many(name: str, description: str, values=None) -> dict:
    items = {"type": "string", **({"enum": values} if values else {})}
    return {"name": name, "in": "query", "required": False, "description": description,
            "schema": {"type": "array", "items": items}, "style": "form", "explode": True}
SERVICE = {"type": "object", "description": "Render's service object plus planId, lastSuccessfulBuildId, watch, "
           "syncFalseEnvVarKeys"}
BUILD = {"$ref": "#/components/schemas/Build"}
LOG_STREAM = {"$ref": "#/components/schemas/LogStream"}
LOCAL = "render-local's own route: "


def _body(properties: dict, required: list[str]) -> dict:
    return {"type": "object", "required": required, "properties": properties}


LOGS_PAGING = (
    "Lines captured together share one timestamp; a page never splits them (it ends before them, or holds "
    "all of them when they outnumber limit). Pass nextEndTime (backward) or nextStartTime (forward) back as "
    "endTime/startTime for the next page: no line is repeated or skipped."
)


def openapi_document() -> dict:
    """Every route the app serves, by its full path (the API under /v1, this document at /openapi.json)."""
    return {
        "openapi": "3.0.3",
        "info": {"title": "render-local API (Render-compatible one-off jobs)", "version": __version__,
                 "description": "Render's /v1 API for services, one-off jobs and logs, served locally; "
                                "render-local's own routes (builds, watch mode, the log stream, change events) "
                                "are under /local."},
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "paths": {
            "/v1/services": {"get": _op("List services", "200", {"type": "array", "items": {
                "type": "object", "properties": {"service": SERVICE, "cursor": {"type": "string"}}}}, LIST_PARAMS,
                errors=("400", "401"))},
            "/v1/services/{serviceId}": {"get": _op("Get a service (id or name)", "200", SERVICE, [_path("serviceId")])},
            "/v1/services/{serviceId}/jobs": {
                "get": _op("List jobs, newest first (createdAt, then id)", "200", {"type": "array", "items": {
                    "type": "object", "properties": {"job": JOB, "cursor": {"type": "string"}}}},
                    [_path("serviceId")] + LIST_PARAMS + JOB_FILTERS),
                "post": _op("Create a job on the last successful build (returned pending)", "201", JOB,
                            [_path("serviceId")], {"$ref": "#/components/schemas/CreateJob"},
                            ("400", "401", "404", "415", "503")),
            },
            "/v1/services/{serviceId}/jobs/{jobId}": {"get": _op("Get a job", "200", JOB, [_path("serviceId"), _path("jobId")])},
            "/v1/services/{serviceId}/jobs/{jobId}/cancel": {"post": _op(
                "Cancel a job (SIGTERM, then SIGKILL after a grace period); 400 if it already ended", "200", JOB,
                [_path("serviceId"), _path("jobId")])},
            "/v1/services/{serviceId}/deploys": {
                "get": _op("List deploys, newest first", "200", {"type": "array", "items": {"type": "object", "properties": {
                    "deploy": DEPLOY, "cursor": {"type": "string"}}}}, [_path("serviceId")] + LIST_PARAMS + [
                    _many("status", "deploy statuses", DEPLOY_STATUSES)]),
                "post": _op("Deploy the service's last successful build (returned created; it goes live once healthy)",
                            "201", DEPLOY, [_path("serviceId")], errors=("400", "401", "404", "409", "503")),
            },
            "/v1/services/{serviceId}/deploys/{deployId}": {"get": _op("Get a deploy", "200", DEPLOY,
                                                                       [_path("serviceId"), _path("deployId")])},
            "/v1/services/{serviceId}/deploys/{deployId}/cancel": {"post": _op(
                "Cancel a deploy before it goes live; the previous one stays", "200", DEPLOY,
                [_path("serviceId"), _path("deployId")])},
            "/v1/services/{serviceId}/suspend": {"post": _no_body(
                "Suspend: its instances stop (its jobs run on)", [_path("serviceId")])},
            "/v1/services/{serviceId}/resume": {"post": _no_body(
                "Resume: its last live build is deployed again", [_path("serviceId")])},
            "/v1/postgres": {"get": _op("List PostgreSQL databases (render.yaml's databases)", "200", {
                "type": "array", "items": {"type": "object", "properties": {"postgres": POSTGRES, "cursor": {"type": "string"}}}},
                LIST_PARAMS + [_many("name", "names")], errors=("400", "401"))},
            "/v1/postgres/{postgresId}": {"get": _op("Get a database (id or name)", "200", POSTGRES, [_path("postgresId")])},
            "/v1/postgres/{postgresId}/connection-info": {"get": _op(
                "Its password and connection strings: internal (the private network) and external (this machine)",
                "200", {"$ref": "#/components/schemas/PostgresConnectionInfo"}, [_path("postgresId")])},
            "/v1/key-value": {"get": _op("List Key Value (Redis-compatible) instances", "200", {
                "type": "array", "items": {"type": "object", "properties": {"keyValue": KEY_VALUE, "cursor": {"type": "string"}}}},
                LIST_PARAMS + [_many("name", "names")], errors=("400", "401"))},
            "/v1/key-value/{keyValueId}": {"get": _op("Get a Key Value (id or name)", "200", KEY_VALUE, [_path("keyValueId")])},
            "/v1/key-value/{keyValueId}/connection-info": {"get": _op(
                "Its connection strings", "200", {"$ref": "#/components/schemas/KeyValueConnectionInfo"},
                [_path("keyValueId")])},
            "/v1/logs": {"get": _op("Query logs of services (every instance), jobs, builds and deploys", "200", {"$ref": "#/components/schemas/Logs"}, [
                RESOURCE,
                _query("startTime", {"type": "string", "format": "date-time"}, "default: endTime - 1 hour"),
                _query("endTime", {"type": "string", "format": "date-time"}, "default: now"),
                _query("direction", {"type": "string", "enum": ["backward", "forward"], "default": "backward"}),
                _query("limit", {"type": "integer", "minimum": 1, "maximum": 100, "default": 20}, LOGS_PAGING),
                _many("text", "text with * wildcards (case-insensitive substring), or /regex/; a line matching any is kept"),
                _many("level", "info (stdout) or error (stderr)", ["info", "error"]),
                _many("type", "app (jobs) or build", ["app", "build"]),
            ])},
            "/v1/logs/subscribe": {"get": {
                "summary": "Follow logs over a WebSocket: one log entry (JSON) per message, closed (1000) when "
                           "every resource has ended; a plain HTTP GET gets 426",
                "parameters": [RESOURCE],
                "responses": {"101": {"description": "Switching to the WebSocket protocol"},
                              "400": _ERROR, "401": _ERROR, "404": _ERROR, "426": _ERROR}}},
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
            "/local/stop": {"post": _op(LOCAL + "stop a control plane a CLI started in the background, if idle",
                                        "200", {"type": "object"}, errors=("401", "409"))},
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
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "description": "render-local token"}},
            "responses": {"Error": {"description": "Error", "content": {"application/json": {"schema": {
                "type": "object", "required": ["id", "message"],
                "properties": {"id": {"type": "string"}, "message": {"type": "string"},
                               "field": {"type": "string", "description": "render-local extension: the input "
                                         "the error is about (startCommand, planId, envVars...)"}}}}}}},
            "schemas": {
                "CreateJob": {"type": "object", "required": ["startCommand"], "properties": {
                    "startCommand": {"type": "string", "minLength": 1},
                    "planId": {"type": "string"},
                    "envVars": {"type": "array", "description": "render-local extension: env var overrides",
                                "items": KEY_VALUE},
                    "syncFalseEnvVars": {"type": "array", "items": KEY_VALUE, "description": (
                        "render-local extension: the caller's values of the service's sync: false env vars "
                        "(syncFalseEnvVarKeys); given, the job takes these and leaves the others unset")},
                    "timeoutSeconds": {"type": "integer", "minimum": 1, "description": "render-local extension"},
                    "cancelGraceSeconds": {"type": "integer", "minimum": 0, "description": "render-local extension"}}},
                "Deploy": {"type": "object", "required": ["id"], "properties": {
                    "id": {"type": "string"}, "status": {"type": "string", "enum": DEPLOY_STATUSES},
                    "trigger": {"type": "string", "enum": ["api", "blueprint_sync", "deploy_hook", "deployed_by_render",
                                                           "manual", "other", "new_commit", "rollback",
                                                           "service_resumed", "service_updated"]},
                    "image": {"type": "object", "properties": {"ref": {"type": "string"}}},
                    "createdAt": {"type": "string", "format": "date-time"},
                    "updatedAt": {"type": "string", "format": "date-time"},
                    "startedAt": {"type": "string", "format": "date-time"},
                    "finishedAt": {"type": "string", "format": "date-time"},
                    "serviceId": {"type": "string", "description": "render-local extension"},
                    "buildId": {"type": "string", "description": "render-local extension"},
                    "instances": {"type": "array", "description": "render-local extension", "items": {"type": "object"}},
                    "failureReason": {"type": "object", "description": "render-local extension"}}},
                "Postgres": {"type": "object", "required": [
                    "id", "ipAllowList", "createdAt", "updatedAt", "databaseName", "databaseUser",
                    "highAvailabilityEnabled", "name", "owner", "plan", "region", "readReplicas", "role", "status",
                    "version", "suspended", "suspenders", "dashboardUrl", "diskAutoscalingEnabled"], "properties": {
                    "id": {"type": "string"}, "name": {"type": "string"}, "databaseName": {"type": "string"},
                    "databaseUser": {"type": "string"}, "plan": {"type": "string"}, "version": {"type": "string"},
                    "status": {"type": "string", "enum": ["creating", "available", "unavailable"]},
                    "image": {"type": "string", "description": "render-local extension: the image that runs it"}}},
                "PostgresConnectionInfo": {"type": "object", "required": [
                    "password", "internalConnectionString", "externalConnectionString", "psqlCommand"], "properties": {
                    "password": {"type": "string"}, "internalConnectionString": {"type": "string"},
                    "externalConnectionString": {"type": "string"}, "psqlCommand": {"type": "string"}}},
                "KeyValue": {"type": "object", "required": [
                    "id", "createdAt", "updatedAt", "status", "region", "plan", "name", "owner", "options",
                    "ipAllowList", "version"], "properties": {
                    "id": {"type": "string"}, "name": {"type": "string"}, "plan": {"type": "string"},
                    "status": {"type": "string"}, "options": {"type": "object"}}},
                "KeyValueConnectionInfo": {"type": "object", "required": [
                    "internalConnectionString", "externalConnectionString", "cliCommand"], "properties": {
                    "internalConnectionString": {"type": "string"}, "externalConnectionString": {"type": "string"},
                    "cliCommand": {"type": "string"}}},
                "Build": {"type": "object", "properties": {
                    "id": {"type": "string"}, "serviceId": {"type": "string"},
                    "status": {"type": "string", "enum": ["building", "succeeded", "failed", "canceled"]},
                    "createdAt": {"type": "string", "format": "date-time"}, "trigger": {"type": "string"},
                    "image": {"type": "string"}, "failureReason": {"type": "object", "nullable": True}}},
                "LogStream": {"type": "object", "properties": {"endpoint": {"type": "string", "nullable": True}}},
                "Events": {"type": "object", "properties": {
                    "epoch": {"type": "string"}, "seq": {"type": "integer"}, "reset": {"type": "boolean"},
                    "changes": {"type": "array", "items": {"type": "object", "properties": {
                        "seq": {"type": "integer"}, "kind": {"type": "string", "enum": ["job", "build", "service", "settings"]},
                        "id": {"type": "string"}, "status": {"type": "string"}}}}}},
                "Job": {"type": "object", "properties": {
                    "id": {"type": "string"}, "serviceId": {"type": "string"}, "startCommand": {"type": "string"},
                    "planId": {"type": "string"}, "createdAt": {"type": "string", "format": "date-time"},
                    "startedAt": {"type": "string", "format": "date-time", "nullable": True},
                    "finishedAt": {"type": "string", "format": "date-time", "nullable": True},
                    "status": {"type": "string", "enum": ["pending", "running", "succeeded", "failed", "canceled"]},
                    "buildId": {"type": "string"}, "exitCode": {"type": "integer", "nullable": True},
                    "failureReason": {"type": "object", "nullable": True},
                    "costUSD": {"type": "string", "description": "decimal, prorated per second over a 30-day month"}}},
                "Logs": {"type": "object", "properties": {
                    "hasMore": {"type": "boolean"}, "nextStartTime": {"type": "string"}, "nextEndTime": {"type": "string"},
                    "logs": {"type": "array", "items": {"type": "object", "properties": {
                        "id": {"type": "string"}, "message": {"type": "string"}, "timestamp": {"type": "string"},
                        "labels": {"type": "array", "items": {"type": "object"}}}}}}},
            },
        },
    }
