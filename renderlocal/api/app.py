"""Render's REST API over the control plane: the same paths, bodies, codes and shapes,
plus render-local's own routes under ``/local`` (builds, watch mode, the log
stream, change events) that its CLI and a terminal app on the same data dir use.

Every handler validates, calls the control plane off the event loop, and
shapes the answer; none of them knows how jobs run.
"""

from __future__ import annotations

import asyncio
import ipaddress
import itertools
import json
import os
import secrets
from datetime import datetime, timezone
from typing import Iterator
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketDisconnected

from renderlocal.api import params
from renderlocal.api.openapi import openapi_document
from renderlocal.api.server import is_loopback
from renderlocal.core.clock import parse_rfc3339
from renderlocal.core.errors import Conflict, InvalidInput, NotFound, RenderLocalError
from renderlocal.core.ids import looks_like_id
from renderlocal.core.logentries import level_of, log_entry, type_of
from renderlocal.core.models import OWNER, present
from renderlocal.core.service_events import service_events
from renderlocal.core.statuses import BuildStatus, DeployStatus

UNAUTHORIZED = "missing or invalid token: send Authorization: Bearer <token> (render-local token prints it)"
FOLLOW_POLL_SECONDS = 0.2
EVENTS_WAIT_MAX_SECONDS = 60.0
EVENTS_SLICE_SECONDS = 0.25  # how soon a long-poll notices its server is stopping
BODY_LIMIT_BYTES = 1024 * 1024  # Render's bodies are small; a bigger one is refused before it is held in memory
BODY_LIMIT = "1 MiB"
INTERNAL_ERROR = "render-local failed on this request; the server's stderr has the details"
# How each kind of core error answers (anything else: 400).
STATUS_OF_KIND = {"bad_request": 400, "not_found": 404, "conflict": 409, "blueprint_error": 400,
                  "engine_unavailable": 503, "control_plane_unavailable": 503, "data_store_unavailable": 503,
                  "store_corrupt": 500}


def error(status: int, code: str, message: str, field: str | None = None) -> JSONResponse:
    body = {"id": code, "message": message} | ({"field": field} if field else {})
    return JSONResponse(body, status_code=status)


def error_of(exc: RenderLocalError) -> JSONResponse:
    return error(STATUS_OF_KIND.get(exc.kind, 400), exc.kind, str(exc), exc.field)


def host_of_header(value: str) -> str | None:
    """The host a Host header names, lowercased and without its port or IPv6 brackets; None if malformed."""
    value = value.strip().lower()
    if value.startswith("["):
        name, bracket, port = value[1:].partition("]")
        if not bracket or (port and not port.startswith(":")):
            return None
        port = port.removeprefix(":")
    else:
        name, _, port = value.partition(":")
    if not name or (port and not (port.isascii() and port.isdigit())):
        return None
    return name


def host_check(served_host: str):
    """A test of host names (from Host or Origin): loopback names always, the host serve was given too.
    Serving on every interface (0.0.0.0, ::) was asked for by name: any Host is then answered."""
    served = served_host.strip("[]").lower()
    try:
        everywhere = served == "" or ipaddress.ip_address(served).is_unspecified
    except ValueError:
        everywhere = False

    def allowed(name: str | None) -> bool:
        return everywhere or (name is not None and (is_loopback(name) or name == served))

    return allowed


class RequestGuard:
    """ASGI middleware in front of every route.

    A web page can make a browser send requests here by rebinding its own name to 127.0.0.1 (DNS
    rebinding): those requests carry the page's name in ``Host``, so only this server's names are
    answered. A page of another origin can open a WebSocket or send a POST without rebinding: browsers
    send ``Origin`` with both and tools send none, so an ``Origin`` that is not this server is refused.
    Both are 403 before authentication: a leaked token does not help such a page. A body is read up to
    ``BODY_LIMIT_BYTES``: a bigger one is a 400 before it is held in memory.
    """

    def __init__(self, app, served_host: str):
        self.app = app
        self.allowed = host_check(served_host)
        self.served_host = served_host

    async def __call__(self, scope, receive, send):
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        headers = Headers(scope=scope)
        refusal = self.refusal(headers)
        if refusal is not None:
            return await self.deny(scope, receive, send, error(403, "forbidden", refusal))
        if scope["type"] == "http":
            length = headers.get("content-length", "")
            if length.isascii() and length.isdigit() and int(length) > BODY_LIMIT_BYTES:
                return await self.deny(scope, receive, send, error(400, "bad_request", too_large()))
            receive = _capped(receive)
        await self.app(scope, receive, send)

    def refusal(self, headers: Headers) -> str | None:
        names = "loopback names (127.0.0.1, localhost, [::1])" + (
            "" if is_loopback(self.served_host) else f" and {self.served_host}")
        host = headers.get("host")
        if host is not None and not self.allowed(host_of_header(host)):
            return (f"Host {host!r} is not this server's: render-local answers only {names}, so a web page "
                    "that points its own name here reaches nothing")
        origin = headers.get("origin")
        if origin is not None and not self.allowed(_origin_host(origin)):
            return (f"Origin {origin!r} is a web page's: render-local answers pages of {names} only "
                    "(tools send no Origin)")
        return None

    @staticmethod
    async def deny(scope, receive, send, response: JSONResponse) -> None:
        if scope["type"] == "websocket":
            await WebSocket(scope, receive, send).send_denial_response(response)
        else:
            await response(scope, receive, send)


def _origin_host(origin: str) -> str | None:
    try:
        parts = urlsplit(origin.strip())
        parts.port  # noqa: B018 - a malformed port raises here
    except ValueError:
        return None
    return parts.hostname if parts.scheme in ("http", "https", "ws", "wss") else None


def too_large() -> str:
    return f"the body is larger than {BODY_LIMIT} ({BODY_LIMIT_BYTES} bytes), the most render-local reads"


def _capped(receive):
    """``receive`` that refuses a body past the limit as it streams in (one sent without Content-Length)."""
    seen = 0

    async def capped():
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > BODY_LIMIT_BYTES:
                raise InvalidInput(too_large())  # inside a route's read: api() answers it as a 400
        return message

    return capped


def create_app(plane, token: str, host: str = "127.0.0.1") -> Starlette:
    """The API of a started control plane; ``host``: the one serve listens on (its name is answered too)."""
    state = plane.state

    def authorized(headers) -> bool:
        given = headers.get("authorization", "")
        scheme, _, value = given.partition(" ")
        return scheme.lower() == "bearer" and secrets.compare_digest(value.strip().encode(), token.encode())

    def api(handler):
        """Auth, then the handler; core errors become Render's error shape."""

        async def endpoint(request: Request):
            if not authorized(request.headers):
                return error(401, "unauthorized", UNAUTHORIZED)
            try:
                return await handler(request)
            except RenderLocalError as exc:
                return error_of(exc)

        return endpoint

    async def call(func, *args, **kwargs):
        return await run_in_threadpool(func, *args, **kwargs)

    async def json_body(request: Request):
        """The body as JSON, whatever Content-Type says (Render answers no 415; a client that leaves
        the header out is still understood)."""
        try:
            body = json.loads(await request.body() or b"null")
        except RecursionError:
            raise InvalidInput(f"the body is nested too deeply: at most {params.MAX_BODY_DEPTH} levels of arrays "
                               "and objects") from None
        except ValueError as exc:
            raise InvalidInput(f"the body is not valid JSON: {exc}") from None
        params.plain_json(body)  # before any handler stores or runs a part of it
        return body

    def service_of(request: Request):
        plane.refresh()  # the blueprint as it is now
        return state.get_service(request.path_params["service_id"])

    def job_by_id(job_id: str):
        return state.get_job(job_id)  # a malformed id never reaches the store's file names

    # -- services ---------------------------------------------------------------
    async def list_services(request: Request):
        where = params.service_filter(request.query_params)
        await call(plane.refresh)
        services = [s.to_render() for s in await call(state.list_services)]
        return paged(request, [s for s in services if where(s)], "service")

    async def get_service(request: Request):
        return JSONResponse((await call(service_of, request)).to_render())

    # -- jobs ----------------------------------------------------------------------
    async def create_job(request: Request):
        body = await json_body(request)
        service = await call(service_of, request)
        fields = params.job_body(body)
        job = await call(plane.create_job, service.id, fields["start_command"], fields["plan_id"], fields["env"],
                         fields["secrets"], fields["timeout_seconds"], fields["cancel_grace"])
        return JSONResponse(job.to_render(), status_code=201)

    async def list_jobs(request: Request):
        query = request.query_params
        service = await call(service_of, request)
        limit = params.limit_of(query)
        where = params.job_time_filter(query)
        before = None
        cursor = params.one(query, "cursor")
        if cursor:
            try:
                before = await call(job_by_id, cursor)
            except NotFound:
                raise InvalidInput(f"unknown cursor {cursor!r}") from None
            if before.serviceId != service.id:
                raise InvalidInput(f"cursor {cursor!r} is a job of another service")
        jobs = await call(state.list_jobs, service.id, params.statuses_of(query), limit, before, where)
        now = datetime.now(timezone.utc)
        return JSONResponse([{"job": j.to_render(now), "cursor": j.id} for j in jobs])

    async def list_all_jobs(request: Request):
        """Every service's jobs, newest first, paged as a service's are (render-local's own)."""
        query = request.query_params
        limit = params.limit_of(query)
        cursor = params.one(query, "cursor")
        before = None
        if cursor:
            try:
                before = await call(job_by_id, cursor)
            except NotFound:
                raise InvalidInput(f"unknown cursor {cursor!r}") from None
        jobs = await call(state.list_jobs, None, params.statuses_of(query), limit, before, params.job_time_filter(query))
        now = datetime.now(timezone.utc)
        return JSONResponse([{"job": j.to_render(now), "cursor": j.id} for j in jobs])

    async def create_comparison(request: Request):
        """Run a command once on each of several plans (render-local's own): the comparison's view."""
        from renderlocal.core.comparison import comparison_view

        body = await json_body(request)
        service = await call(service_of, request)
        fields = params.comparison_body(body)
        doc = await call(plane.compare_plans, service.id, fields["start_command"], fields["plan_ids"],
                         fields["sequential"], fields["env"])
        jobs = {job_id: await call(job_by_id, job_id) for job_id in doc["jobIds"].values()}
        return JSONResponse(comparison_view(doc, jobs, datetime.now(timezone.utc)), status_code=201)

    async def get_comparison(request: Request):
        from renderlocal.core.comparison import comparison_view

        doc = await call(plane.comparisons.get, request.path_params["comparisonId"])
        jobs = {job_id: await call(job_by_id, job_id) for job_id in doc["jobIds"].values()}
        return JSONResponse(comparison_view(doc, jobs, datetime.now(timezone.utc)))

    # -- a database's data and rehearsals (render-local's own) ----------------------------------
    def admin_of(request: Request):
        return plane.postgres_admin(state.get_database(request.path_params["database"]).id)

    async def restore_database(request: Request):
        path = params.file_path(await json_body(request), "file")
        return JSONResponse(await call(lambda: admin_of(request).restore(path)))

    async def dump_database(request: Request):
        path = params.file_path(await json_body(request), "file")
        size = await call(lambda: admin_of(request).dump(path))
        return JSONResponse({"file": str(path), "bytes": size})

    async def list_snapshots(request: Request):
        return JSONResponse([s.to_json() for s in await call(lambda: admin_of(request).snapshots())])

    async def create_snapshot(request: Request):
        label = params.optional_text(await json_body(request), "label") or ""
        return JSONResponse((await call(lambda: admin_of(request).snapshot(label))).to_json(), status_code=201)

    async def rollback_database(request: Request):
        ref = params.optional_text(await json_body(request), "snapshot")
        return JSONResponse((await call(lambda: admin_of(request).rollback(ref))).to_json())

    async def drop_snapshot(request: Request):
        name = request.path_params["snapshot"]
        return JSONResponse((await call(lambda: admin_of(request).drop_snapshot(name))).to_json())

    async def create_rehearsal(request: Request):
        body = await json_body(request)
        service = await call(service_of, request)
        fields = params.job_body(body)
        doc = await call(plane.rehearse, service.id, fields["start_command"], fields["plan_id"],
                         params.optional_text(body, "database"))
        return JSONResponse(doc, status_code=201)

    async def get_rehearsal(request: Request):
        return JSONResponse(await call(plane.rehearsals.get, request.path_params["rehearsalId"]))

    async def decide_rehearsal(request: Request):
        body = await json_body(request)
        keep = body.get("keep")
        if not isinstance(keep, bool):
            raise InvalidInput("keep must be true (keep what the rehearsal did) or false (roll back)", field="keep")
        return JSONResponse(await call(plane.decide_rehearsal, request.path_params["rehearsalId"], keep))

    async def billing_statement(request: Request):
        """A month's statement (render-local's own): lines by service, kind and plan, and the total."""
        from renderlocal.core.statement import Month, statement_of

        now = datetime.now(timezone.utc)
        raw = params.one(request.query_params, "month")
        month = Month.parse(raw) if raw else Month.of(now)
        return JSONResponse((await call(statement_of, state, month, now)).to_json())

    async def billing_forecast(request: Request):
        """A service's monthly cost on each plan of its family (render-local's own)."""
        from renderlocal.core.forecast import forecast
        from renderlocal.core.statement import Month

        query = request.query_params
        service = service_of(request)
        now = datetime.now(timezone.utc)
        raw = params.one(query, "month")
        month = Month.parse(raw) if raw else Month.of(now)
        numbers = {}
        for name in ("duration", "perDay"):
            value = params.one(query, name)
            if value is not None:
                numbers[name] = params.whole_number(value)
                if numbers[name] is None:
                    raise InvalidInput(f"{name} must be a whole number, not {value!r}", field=name)
        jobs = await call(state.list_jobs, service.id)
        result = forecast(service, jobs, month, numbers.get("duration"), numbers.get("perDay"))
        return JSONResponse(result.to_json())

    def job_of(request: Request):
        service = service_of(request)
        job = job_by_id(request.path_params["job_id"])
        if job.serviceId != service.id:
            raise NotFound(f"unknown job {job.id!r} for service {service.id}")
        return job

    async def get_job(request: Request):
        """The job; with ``waitFor=finished`` (render-local's extension) answered once it has ended or after
        ``timeout`` seconds, as it is then: one request instead of polling."""
        query = request.query_params
        wait_for = params.one(query, "waitFor")
        if wait_for is None:
            return JSONResponse((await call(job_of, request)).to_render())
        if wait_for != "finished":
            raise InvalidInput(f"waitFor must be finished, not {wait_for!r}")
        timeout = wait_seconds(query)
        job_id = request.path_params["job_id"]
        seen = {}

        async def finished() -> bool:
            seen["job"] = await call(job_of, request)
            return seen["job"].final

        await until_changed(request, finished, timeout, wakes=lambda change: change.kind == "job"
                            and change.id in (job_id, None))
        return JSONResponse(seen["job"].to_render())

    async def get_any_job(request: Request):
        """A job by its id alone (render-local's own: the CLI's ``jobs get JOB``)."""
        return JSONResponse((await call(job_by_id, request.path_params["job_id"])).to_render())

    async def cancel_job(request: Request):
        job = await call(job_of, request)
        return JSONResponse((await call(plane.cancel_job, job.id)).to_render())

    # -- deploys, suspend and resume ---------------------------------------------------------
    def deploy_of(request: Request):
        service = service_of(request)
        deploy = state.get_deploy(request.path_params["deploy_id"])
        if deploy.serviceId != service.id:
            raise NotFound(f"unknown deploy {deploy.id!r} for service {service.id}")
        return deploy

    async def list_deploys(request: Request):
        service = await call(service_of, request)
        where = params.deploy_filter(request.query_params, tuple(DeployStatus))
        deploys = [d.to_render() for d in await call(state.list_deploys, service.id)]
        return paged(request, [d for d in deploys if where(d)], "deploy")

    async def create_deploy(request: Request):
        raw = await request.body()
        if raw.strip():  # Render's CLI sends {"clearCache": ...}: a build here is always fresh, so it is taken as is
            body = await json_body(request)
            if not isinstance(body, dict):
                raise InvalidInput("the body must be a JSON object")
            if body.get("clearCache") not in (None, "clear", "do_not_clear"):
                raise InvalidInput("clearCache must be clear or do_not_clear", field="clearCache")
            for name in ("commitId", "imageUrl"):
                if body.get(name):
                    raise InvalidInput(f"{name} is not emulated: render-local deploys the service's last successful "
                                       "build (build it first)", field=name)
        service = await call(service_of, request)
        deploy = await call(plane.deploy, service.id)
        return JSONResponse(deploy.to_render(), status_code=201)

    async def get_deploy(request: Request):
        return JSONResponse((await call(deploy_of, request)).to_render())

    async def cancel_deploy(request: Request):
        deploy = await call(deploy_of, request)
        return JSONResponse((await call(plane.cancel_deploy, deploy.id)).to_render())

    async def suspend(request: Request):
        service = await call(service_of, request)
        await call(plane.suspend, service.id)
        return Response(status_code=202)  # Render answers 202 with no body

    async def resume(request: Request):
        service = await call(service_of, request)
        await call(plane.resume, service.id)
        return Response(status_code=202)

    async def up(request: Request):
        body = await json_body(request) if (await request.body()).strip() else {}
        names = body.get("services") if isinstance(body, dict) else None
        if names is not None and not (isinstance(names, list) and all(isinstance(n, str) for n in names)):
            raise InvalidInput("services must be a list of service names or ids", field="services")
        builds, deploys, stores = await call(plane.up, names or None)
        return JSONResponse({"builds": [b.to_render() for b in builds], "deploys": [d.to_render() for d in deploys],
                             "dataStores": stores}, status_code=202)

    async def down(request: Request):
        body = await json_body(request) if (await request.body()).strip() else {}
        volumes = body.get("volumes", False) if isinstance(body, dict) else None
        if not isinstance(volumes, bool):
            raise InvalidInput("volumes must be true or false", field="volumes")
        await call(plane.down, volumes)
        return JSONResponse({"stopped": True, "volumesRemoved": volumes})

    async def trigger_cron(request: Request):
        service = await call(service_of, request)
        return JSONResponse((await call(plane.trigger_cron, service.id)).to_render(), status_code=201)

    # -- databases and Key Value -------------------------------------------------------------
    def paged(request: Request, items: list[dict], key: str) -> JSONResponse:
        """Render's list answer, ``[{key: object, "cursor": id}]``, a page after ``cursor``."""
        query = request.query_params
        limit = params.limit_of(query)
        cursor = params.one(query, "cursor")
        if cursor:
            ids = [i["id"] for i in items]
            if cursor not in ids:
                raise InvalidInput(f"unknown cursor {cursor!r}", field="cursor")
            items = items[ids.index(cursor) + 1 :]
        return JSONResponse([{key: i, "cursor": i["id"]} for i in items[:limit]])

    async def list_postgres(request: Request):
        where = params.data_store_filter(request.query_params, postgres=True)
        await call(plane.refresh)
        databases = [d.to_render() for d in await call(state.list_databases)]
        return paged(request, [d for d in databases if where(d)], "postgres")

    async def get_postgres(request: Request):
        await call(plane.refresh)
        return JSONResponse((await call(state.get_database, request.path_params["postgres_id"])).to_render())

    async def postgres_connection_info(request: Request):
        await call(plane.refresh)
        database = await call(state.get_database, request.path_params["postgres_id"])
        return JSONResponse(database.connection_info(await call(state.password_of, database.id)))

    async def list_key_values(request: Request):
        where = params.data_store_filter(request.query_params, postgres=False)
        await call(plane.refresh)
        stores = [k.to_render() for k in await call(state.list_key_values)]
        return paged(request, [k for k in stores if where(k)], "keyValue")

    async def get_key_value(request: Request):
        await call(plane.refresh)
        return JSONResponse((await call(state.get_key_value, request.path_params["key_value_id"])).to_render())

    async def key_value_connection_info(request: Request):
        await call(plane.refresh)
        return JSONResponse((await call(state.get_key_value, request.path_params["key_value_id"])).connection_info())

    # -- builds, watch mode, the log stream (render-local's own) --------------------------
    async def create_build(request: Request):
        service = await call(service_of, request)
        build = await call(plane.build, service.id)
        return JSONResponse(build.to_render(), status_code=201)

    async def list_builds(request: Request):
        service = await call(service_of, request)
        return JSONResponse([b.to_render() for b in await call(state.list_builds, service.id)])

    async def get_build(request: Request):
        return JSONResponse((await call(state.get_build, request.path_params["build_id"])).to_render())

    async def cancel_build(request: Request):
        return JSONResponse((await call(plane.cancel_build, request.path_params["build_id"])).to_render())

    async def running_container(request: Request):
        """The container a shell into a job or a service instance opens in (render-local ssh)."""
        return JSONResponse(await call(plane.running_container, request.path_params["resource_id"]))

    async def resource_figures(request: Request):
        """Memory and CPU of a running job or instance against its plan's, with a short history."""
        return JSONResponse(await call(plane.resource_figures, request.path_params["resource_id"]))

    async def all_resource_figures(_request: Request):
        return JSONResponse(await call(plane.resource_figures))

    async def set_watch(request: Request):
        on = params.bool_body(await json_body(request), "watch")
        service = await call(service_of, request)
        return JSONResponse((await call(plane.set_watch, service.id, on)).to_render())

    async def get_log_stream(_request: Request):
        return JSONResponse(await call(plane.log_streams.view))

    async def put_log_stream(request: Request):
        body = await json_body(request)
        if not isinstance(body, dict) or not isinstance(body.get("endpoint"), str):
            raise InvalidInput("the body must be a JSON object with endpoint: \"HOST:PORT\"", field="endpoint")
        for name in ("tls", "insecure"):
            if not isinstance(body.get(name, False), bool):
                raise InvalidInput(f"{name} must be true or false", field=name)
        token_value, queue = body.get("token"), body.get("maxQueueBytes")
        if token_value is not None and not isinstance(token_value, str):
            raise InvalidInput("token must be a string", field="token")
        if queue is not None and (isinstance(queue, bool) or not isinstance(queue, int) or queue < 1):
            raise InvalidInput("maxQueueBytes must be a positive whole number", field="maxQueueBytes")
        view = await call(plane.set_log_stream, body["endpoint"], body.get("tls", False), token_value,
                          body.get("insecure", False), queue)
        return JSONResponse(view)

    async def delete_log_stream(_request: Request):
        await call(plane.clear_log_stream)
        return JSONResponse(await call(plane.log_streams.view))

    async def set_log_stream_service(request: Request):
        enabled = params.bool_body(await json_body(request), "enabled")
        service = await call(service_of, request)
        return JSONResponse(await call(plane.set_log_stream_service, service.id, enabled))

    # -- Render's log stream settings: the one local stream, per-resource send or drop ----------------
    def owner_of(owner_id: str) -> dict:
        if owner_id != OWNER["id"]:
            raise NotFound(f"unknown owner {owner_id!r}; the local workspace is {OWNER['id']}")
        return OWNER

    def owner_stream(view: dict) -> dict:
        return present(ownerId=OWNER["id"], endpoint=view.get("endpoint"), preview=view.get("preview", "send"))

    async def get_owner_log_stream(request: Request):
        owner_of(request.path_params["owner_id"])
        return JSONResponse(owner_stream(await call(plane.log_streams.view)))

    async def put_owner_log_stream(request: Request):
        owner_of(request.path_params["owner_id"])
        body = params.owner_stream_body(await json_body(request))
        if body["endpoint"] is None:  # Render keeps the endpoint when only preview changes
            current = await call(plane.log_streams.view)
            if current.get("endpoint") is None:
                raise InvalidInput("endpoint is required: no log stream is set yet", field="endpoint")
            body["endpoint"] = current["endpoint"]
        view = await call(plane.set_log_stream, body["endpoint"], body["tls"], body["token"], body["insecure"],
                          None, body["preview"])
        return JSONResponse(owner_stream(view))

    async def delete_owner_log_stream(request: Request):
        owner_of(request.path_params["owner_id"])
        await call(plane.clear_log_stream)
        return Response(status_code=204)

    def resource_stream(service, view: dict) -> dict:
        dropped = service.name in view.get("optOut", [])
        return present(resourceId=service.id, setting="drop" if dropped else "send",
                       endpoint=None if dropped else view.get("endpoint"))

    async def list_resource_log_streams(request: Request):
        await call(plane.refresh)
        view = await call(plane.log_streams.view)
        wanted = params.list_of(request.query_params, "resourceId")
        settings = params.enum_list(request.query_params, "setting", ("send", "drop"))
        overrides = [resource_stream(s, view) for s in await call(state.list_services)
                     if s.name in view.get("optOut", [])]  # only drops differ from the owner's stream here
        return JSONResponse([o for o in overrides if (not wanted or o["resourceId"] in wanted)
                             and (not settings or o["setting"] in settings)])

    async def get_resource_log_stream(request: Request):
        service = await call(state.get_service, request.path_params["resource_id"])
        return JSONResponse(resource_stream(service, await call(plane.log_streams.view)))

    async def put_resource_log_stream(request: Request):
        service = await call(state.get_service, request.path_params["resource_id"])
        body = params.resource_stream_body(await json_body(request))
        view = await call(plane.log_streams.view)
        if body["setting"] == "send" and body["endpoint"] not in (None, view.get("endpoint")):
            raise InvalidInput(f"render-local streams every service to the owner's endpoint "
                               f"({view.get('endpoint') or 'none set'}); a resource endpoint of its own is not "
                               "emulated: send without endpoint, or set the owner's", field="endpoint")
        view = await call(plane.set_log_stream_service, service.id, body["setting"] == "send")
        return JSONResponse(resource_stream(service, view))

    async def delete_resource_log_stream(request: Request):
        service = await call(state.get_service, request.path_params["resource_id"])
        if (await call(plane.log_streams.view)).get("endpoint") is not None:
            await call(plane.set_log_stream_service, service.id, True)  # back to the owner's stream
        return Response(status_code=204)

    # -- the workspace and a service's events (Render's) ------------------------------------------
    async def list_owners(request: Request):
        query = request.query_params
        names, emails = params.list_of(query, "name"), params.list_of(query, "email")
        owners = [OWNER] if (not names or OWNER["name"] in names) and (not emails or OWNER["email"] in emails) else []
        return paged(request, owners, "owner")

    async def get_owner(request: Request):
        return JSONResponse(owner_of(request.path_params["owner_id"]))

    async def list_service_events(request: Request):
        query = request.query_params
        kinds = params.enum_list(query, "type", params.EVENT_TYPES)
        start, end = params.time_of(query, "startTime"), params.time_of(query, "endTime")
        service = await call(service_of, request)
        events = [e for e in await call(service_events, state, service)
                  if (not kinds or e["type"] in kinds)
                  and (start is None or parse_rfc3339(e["timestamp"]) >= start)
                  and (end is None or parse_rfc3339(e["timestamp"]) <= end)]
        return paged(request, events, "event")

    # -- who answers, and what changed ----------------------------------------------------------
    async def status(_request: Request):
        await call(plane.refresh)
        return JSONResponse({
            "pid": os.getpid(), "dataDir": str(plane.data_dir), "blueprint": str(plane.blueprint_path),
            "engine": plane.engine.id, "warnings": plane.warnings, "epoch": plane.changes.epoch,
            "seq": plane.changes.seq, "extensions": ["job-wait-for"],  # what a newer CLI may rely on
        })

    async def stop(request: Request):
        """Stop a control plane that a CLI started in the background, if nothing runs on it
        (a CLI of another project wants the data dir, or the call that started it failed; the
        body's ``reason`` says which, in its log). One started by hand stays."""
        body = await json_body(request)
        reason = body.get("reason") if isinstance(body, dict) else None
        supervisor = plane.supervisor
        if supervisor is None or supervisor.stop_now is None:
            raise Conflict(f"the control plane of {plane.data_dir} (pid {os.getpid()}) was started by hand "
                           "(render-local serve, or the terminal app): stop it there")
        if plane.busy():
            raise Conflict(f"the control plane of {plane.data_dir} (pid {os.getpid()}) is running jobs or builds of "
                           f"{plane.blueprint_path}: wait for them, or give this project its own --data-dir")
        if isinstance(reason, str) and reason:
            supervisor.stop_now(reason[:200])
        else:
            supervisor.stop_now()
        return JSONResponse({"stopping": True, "pid": os.getpid()})

    def wait_seconds(query) -> float:
        """A long-poll's ``timeout`` (default 0: answer now), at most EVENTS_WAIT_MAX_SECONDS."""
        raw = params.one(query, "timeout")
        timeout = 0.0 if not raw else params.seconds_of(raw)
        if timeout is None:
            raise InvalidInput(f"timeout must be a number of seconds, not {raw!r}")
        return min(timeout, EVENTS_WAIT_MAX_SECONDS)

    async def until_changed(request: Request, done, timeout: float, wakes=lambda _change: True) -> None:
        """Return once ``await done()`` (asked first, then after each change ``wakes`` accepts), after
        ``timeout`` seconds, or when the server is stopping (noticed within a slice)."""
        loop = asyncio.get_running_loop()
        woke = asyncio.Event()
        stop = plane.changes.listen(lambda change: wakes(change) and loop.call_soon_threadsafe(woke.set))
        stopping = getattr(request.app.state, "stopping", lambda: False)
        deadline = loop.time() + timeout
        try:  # listening before the first look: a change in between still wakes it
            while True:
                woke.clear()
                if await done() or stopping() or loop.time() >= deadline:
                    return
                try:
                    await asyncio.wait_for(woke.wait(), min(EVENTS_SLICE_SECONDS, deadline - loop.time()))
                except asyncio.TimeoutError:
                    pass
        finally:
            stop()

    async def events(request: Request):
        """Changes after ``after`` (long-polls up to ``timeout`` seconds for one); ``reset``:
        changes were missed (another control plane, or too many), reload everything."""
        query = request.query_params
        feed = plane.changes
        raw_after = params.one(query, "after")
        after = feed.seq if not raw_after else params.whole_number(raw_after)
        if after is None:
            raise InvalidInput(f"after must be a whole number, not {raw_after!r}")
        timeout = wait_seconds(query)
        epoch = params.one(query, "epoch")
        if (epoch is not None and epoch != feed.epoch) or after > feed.seq:
            return JSONResponse({"epoch": feed.epoch, "seq": feed.seq, "reset": True, "changes": []})

        async def changed() -> bool:
            return feed.seq > after

        await until_changed(request, changed, timeout)
        seq, changes = feed.since(after)
        return JSONResponse({"epoch": feed.epoch, "seq": seq, "reset": changes is None,
                             "changes": [c.to_json() for c in changes or []]})

    # -- logs ----------------------------------------------------------------------
    def resources_of(query) -> list[str]:
        resources = query.getlist("resource")
        if not resources:
            raise InvalidInput("resource is required: a service, job, build or deploy id")
        resources = list(dict.fromkeys(resources))
        for resource in resources:
            if looks_like_id(resource, "bld"):
                state.get_build(resource)
            elif looks_like_id(resource, "job"):
                state.get_job(resource)
            elif looks_like_id(resource, "dep"):
                state.get_deploy(resource)
            elif looks_like_id(resource, "srv") or looks_like_id(resource, "crn"):
                state.get_service(resource)
            elif resource.startswith(("bld-", "job-", "dep-", "srv-", "crn-")):
                raise NotFound(f"unknown {KINDS_OF_ID[resource[:4]]} {resource!r}")
            else:
                raise NotFound(f"unknown resource {resource!r}: logs are kept per service (srv-...), job (job-...), "
                               "build (bld-...) and deploy (dep-...)")
        return resources

    def files_of(resources: list[str]) -> dict[str, str]:
        """The log files the resources' lines are in: file resource -> the resource asked for."""
        return {part: resource for resource in resources for part in state.log_resources(resource)}

    def owner_param(query) -> None:
        """``ownerId``, which Render requires on its log routes."""
        owner_id = params.one(query, "ownerId")
        if not owner_id:
            raise InvalidInput(f"ownerId is required (the local workspace: {OWNER['id']}, from GET /v1/owners)",
                               field="ownerId")
        owner_of(owner_id)

    async def log_values(request: Request):
        """The values a label takes among the resources' lines in the window (Render's /logs/values)."""
        query = request.query_params
        owner_param(query)
        label = params.one(query, "label")
        if label not in params.LOG_LABELS:
            raise InvalidInput(f"label must be one of {', '.join(params.LOG_LABELS)}", field="label")
        start, end = params.log_window(query)
        resources = await call(resources_of, query)

        def run():
            parts = files_of(resources)
            lines = state.logs.lines(list(parts), start, end)
            return sorted({_label(log_entry(parts[part], part, line), label) for part, line in lines} - {None})

        return JSONResponse(await call(run))

    async def query_logs(request: Request):
        query = request.query_params
        owner_param(query)
        limit = params.limit_of(query)
        start, end = params.log_window(query)
        direction = params.one(query, "direction") or "backward"
        if direction not in ("backward", "forward"):
            raise InvalidInput(f"direction must be backward or forward, not {direction!r}")
        match = params.text_matcher(query.getlist("text"))
        levels = params.list_of(query, "level")
        types = params.list_of(query, "type")
        resources = await call(resources_of, query)

        def keep(part: str, line) -> bool:
            return ((not levels or level_of(line) in levels) and (not types or type_of(part) in types)
                    and (match is None or bool(match(line.message))))

        def run():
            parts = files_of(resources)
            lines = state.logs.lines(list(parts), start, end, direction == "backward", keep)
            return _page((log_entry(parts[part], part, line) for part, line in lines), limit)

        entries, next_time = await call(run)
        return JSONResponse({
            "hasMore": next_time is not None,
            "nextStartTime": next_time if next_time and direction == "forward" else start,
            "nextEndTime": next_time if next_time and direction == "backward" else end,
            "logs": entries,
        })

    async def subscribe_logs(websocket: WebSocket):
        if not authorized(websocket.headers):
            await websocket.send_denial_response(error(401, "unauthorized", UNAUTHORIZED))
            return
        try:
            if websocket.query_params.get("ownerId"):  # Render requires it; here it may be left out, not be wrong
                owner_of(websocket.query_params["ownerId"])
            resources = await call(resources_of, websocket.query_params)
        except RenderLocalError as exc:
            await websocket.send_denial_response(error_of(exc))
            return
        await websocket.accept()
        closed = asyncio.ensure_future(_until_disconnect(websocket))
        following = set(resources)  # a service never ends: it is followed until the client leaves
        offsets: dict[str, int] = {}
        try:
            while following and not closed.done():
                for resource in list(following):
                    done = await call(_finished, state, resource)  # before reading: no last line is missed
                    progressed = False
                    for part in await call(state.log_resources, resource):  # a new instance: a new file
                        lines = await call(lambda p=part: list(state.logs.read(p, offsets.get(p, 0))))
                        for line in lines:
                            await websocket.send_json(log_entry(resource, part, line))
                            offsets[part] = line.end
                        progressed = progressed or bool(lines)
                    if done and not progressed:
                        following.discard(resource)
                if following:
                    await asyncio.wait({closed}, timeout=FOLLOW_POLL_SECONDS)
            if not closed.done():
                await websocket.close(code=1000)
        except (WebSocketDisconnect, WebSocketDisconnected):
            pass  # the client went away
        finally:
            closed.cancel()

    async def subscribe_without_websocket(_request: Request):
        return error(426, "upgrade_required", "logs/subscribe is a WebSocket: connect with ws:// and the same Authorization header")

    async def openapi(_request: Request):
        return JSONResponse(openapi_document())

    async def http_error(request: Request, exc: HTTPException):
        if exc.status_code in (404, 405):  # Render documents no 405: a route it does not have is not found
            return error(404, "not_found", f"no route {request.method} {request.url.path} (GET /openapi.json lists them)")
        return error(exc.status_code, "error", exc.detail or "error")

    async def any_error(_request: Request, exc: Exception):
        # Starlette raises it again after this answer: uvicorn logs it, with its traceback, on stderr.
        # The answer says nothing of it: exception text can hold paths, env values or stored data.
        return error(500, "internal_error", INTERNAL_ERROR)

    routes = [
        Route("/v1/services", api(list_services), methods=["GET"]),
        Route("/v1/services/{service_id}", api(get_service), methods=["GET"]),
        Route("/v1/services/{service_id}/jobs", api(list_jobs), methods=["GET"]),
        Route("/v1/services/{service_id}/jobs", api(create_job), methods=["POST"]),
        Route("/v1/services/{service_id}/jobs/{job_id}", api(get_job), methods=["GET"]),
        Route("/v1/services/{service_id}/jobs/{job_id}/cancel", api(cancel_job), methods=["POST"]),
        Route("/v1/services/{service_id}/deploys", api(list_deploys), methods=["GET"]),
        Route("/v1/services/{service_id}/deploys", api(create_deploy), methods=["POST"]),
        Route("/v1/services/{service_id}/deploys/{deploy_id}", api(get_deploy), methods=["GET"]),
        Route("/v1/services/{service_id}/deploys/{deploy_id}/cancel", api(cancel_deploy), methods=["POST"]),
        Route("/v1/services/{service_id}/suspend", api(suspend), methods=["POST"]),
        Route("/v1/services/{service_id}/resume", api(resume), methods=["POST"]),
        Route("/v1/postgres", api(list_postgres), methods=["GET"]),
        Route("/v1/postgres/{postgres_id}", api(get_postgres), methods=["GET"]),
        Route("/v1/postgres/{postgres_id}/connection-info", api(postgres_connection_info), methods=["GET"]),
        Route("/v1/key-value", api(list_key_values), methods=["GET"]),
        Route("/v1/key-value/{key_value_id}", api(get_key_value), methods=["GET"]),
        Route("/v1/key-value/{key_value_id}/connection-info", api(key_value_connection_info), methods=["GET"]),
        Route("/v1/services/{service_id}/events", api(list_service_events), methods=["GET"]),
        Route("/v1/owners", api(list_owners), methods=["GET"]),
        Route("/v1/owners/{owner_id}", api(get_owner), methods=["GET"]),
        Route("/v1/logs", api(query_logs), methods=["GET"]),
        Route("/v1/logs/values", api(log_values), methods=["GET"]),
        Route("/v1/logs/streams/owner/{owner_id}", api(get_owner_log_stream), methods=["GET"]),
        Route("/v1/logs/streams/owner/{owner_id}", api(put_owner_log_stream), methods=["PUT"]),
        Route("/v1/logs/streams/owner/{owner_id}", api(delete_owner_log_stream), methods=["DELETE"]),
        Route("/v1/logs/streams/resource", api(list_resource_log_streams), methods=["GET"]),
        Route("/v1/logs/streams/resource/{resource_id}", api(get_resource_log_stream), methods=["GET"]),
        Route("/v1/logs/streams/resource/{resource_id}", api(put_resource_log_stream), methods=["PUT"]),
        Route("/v1/logs/streams/resource/{resource_id}", api(delete_resource_log_stream), methods=["DELETE"]),
        WebSocketRoute("/v1/logs/subscribe", subscribe_logs),
        Route("/v1/logs/subscribe", api(subscribe_without_websocket), methods=["GET"]),
        Route("/local/status", api(status), methods=["GET"]),
        Route("/local/events", api(events), methods=["GET"]),
        Route("/local/stop", api(stop), methods=["POST"]),
        Route("/local/up", api(up), methods=["POST"]),
        Route("/local/down", api(down), methods=["POST"]),
        Route("/local/services/{service_id}/cron-runs", api(trigger_cron), methods=["POST"]),
        Route("/local/jobs", api(list_all_jobs), methods=["GET"]),
        Route("/local/billing/statement", api(billing_statement), methods=["GET"]),
        Route("/local/databases/{database}/restore", api(restore_database), methods=["POST"]),
        Route("/local/databases/{database}/dump", api(dump_database), methods=["POST"]),
        Route("/local/databases/{database}/snapshots", api(list_snapshots), methods=["GET"]),
        Route("/local/databases/{database}/snapshots", api(create_snapshot), methods=["POST"]),
        Route("/local/databases/{database}/snapshots/{snapshot}", api(drop_snapshot), methods=["DELETE"]),
        Route("/local/databases/{database}/rollback", api(rollback_database), methods=["POST"]),
        Route("/local/services/{service_id}/rehearsals", api(create_rehearsal), methods=["POST"]),
        Route("/local/rehearsals/{rehearsalId}", api(get_rehearsal), methods=["GET"]),
        Route("/local/rehearsals/{rehearsalId}/decision", api(decide_rehearsal), methods=["POST"]),
        Route("/local/services/{service_id}/plan-comparisons", api(create_comparison), methods=["POST"]),
        Route("/local/plan-comparisons/{comparisonId}", api(get_comparison), methods=["GET"]),
        Route("/local/services/{service_id}/forecast", api(billing_forecast), methods=["GET"]),
        Route("/local/jobs/{job_id}", api(get_any_job), methods=["GET"]),
        Route("/local/services/{service_id}/builds", api(list_builds), methods=["GET"]),
        Route("/local/services/{service_id}/builds", api(create_build), methods=["POST"]),
        Route("/local/services/{service_id}/watch", api(set_watch), methods=["PUT"]),
        Route("/local/containers/{resource_id}", api(running_container), methods=["GET"]),
        Route("/local/stats", api(all_resource_figures), methods=["GET"]),
        Route("/local/stats/{resource_id}", api(resource_figures), methods=["GET"]),
        Route("/local/builds/{build_id}", api(get_build), methods=["GET"]),
        Route("/local/builds/{build_id}/cancel", api(cancel_build), methods=["POST"]),
        Route("/local/log-stream", api(get_log_stream), methods=["GET"]),
        Route("/local/log-stream", api(put_log_stream), methods=["PUT"]),
        Route("/local/log-stream", api(delete_log_stream), methods=["DELETE"]),
        Route("/local/log-stream/services/{service_id}", api(set_log_stream_service), methods=["PUT"]),
        Route("/openapi.json", openapi, methods=["GET"]),
    ]
    return Starlette(routes=routes, exception_handlers={HTTPException: http_error, Exception: any_error},
                     middleware=[Middleware(RequestGuard, served_host=host)])


KINDS_OF_ID = {"bld-": "build", "job-": "job", "dep-": "deploy", "srv-": "service", "crn-": "service"}


def _finished(state, resource: str) -> bool:
    if resource.startswith("bld-"):
        return state.get_build(resource).status != BuildStatus.BUILDING
    if resource.startswith("dep-"):
        return state.get_deploy(resource).final
    if resource.startswith(("srv-", "crn-")):
        return False
    return state.get_job(resource).settled


def _label(entry: dict, name: str) -> str | None:
    return next((label["value"] for label in entry["labels"] if label["name"] == name), None)


def _page(entries: Iterator[dict], limit: int) -> tuple[list[dict], str | None]:
    """The first ``limit`` entries (in the query's order) and where the next page starts,
    taking no more of ``entries`` than that needs (a page reads about a page of each file).

    A page is resumed by time alone (``nextStartTime``/``nextEndTime``), inclusive, so it
    never splits lines of one timestamp: the lines of one log are a nanosecond apart at
    least, but two logs (or a log written before that) may share a time. Then the page
    ends before them, or, when they alone outnumber ``limit``, holds all of them. Paging
    neither repeats nor skips a line.
    """
    page = list(itertools.islice(entries, limit + 1))
    if len(page) <= limit:
        return page, None
    edge = page[limit - 1]["timestamp"]
    if page[limit]["timestamp"] != edge:
        return page[:limit], page[limit]["timestamp"]
    cut = limit - 1
    while cut > 0 and page[cut - 1]["timestamp"] == edge:
        cut -= 1
    if cut > 0:
        return page[:cut], edge
    for entry in entries:  # one time's lines outnumber a page: all of them
        if entry["timestamp"] != edge:
            return page, entry["timestamp"]
        page.append(entry)
    return page, None


async def _until_disconnect(websocket: WebSocket) -> None:
    """Returns when the client closes (it sends nothing else we need)."""
    try:
        while (await websocket.receive())["type"] != "websocket.disconnect":
            pass
    except Exception:
        return
