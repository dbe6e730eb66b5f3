"""Render's REST API over the control plane: the same paths, bodies, codes and shapes.

Every handler validates, calls the core off the event loop, and shapes the
answer; none of them knows how jobs run.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import sys
from datetime import datetime, timezone

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketDisconnected

from renderlocal.api import params
from renderlocal.api.openapi import openapi_document
from renderlocal.core.errors import InvalidInput, NotFound, RenderLocalError
from renderlocal.core.ids import looks_like_id
from renderlocal.core.logstore import LogLine

UNAUTHORIZED = "missing or invalid token: send Authorization: Bearer <token> (render-local token prints it)"
FOLLOW_POLL_SECONDS = 0.2


def error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"id": code, "message": message}, status_code=status)


def create_app(plane, token: str) -> Starlette:
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
                return error(exc.status, exc.code, str(exc))

        return endpoint

    async def call(func, *args, **kwargs):
        return await run_in_threadpool(func, *args, **kwargs)

    def service_of(request: Request):
        return plane.get_service(request.path_params["service_id"])

    def job_by_id(job_id: str):
        if not looks_like_id(job_id, "job"):  # never let a malformed id near the store's file names
            raise NotFound(f"unknown job {job_id!r}")
        return plane.jobs.get(job_id)

    # -- services ---------------------------------------------------------------
    async def list_services(request: Request):
        limit = params.limit_of(request.query_params)
        services = await call(plane.list_services)
        cursor = params.one(request.query_params, "cursor")
        if cursor:
            ids = [s.id for s in services]
            if cursor not in ids:
                raise InvalidInput(f"unknown cursor {cursor!r}")
            services = services[ids.index(cursor) + 1 :]
        return JSONResponse([{"service": s.to_render(), "cursor": s.id} for s in services[:limit]])

    async def get_service(request: Request):
        return JSONResponse((await call(service_of, request)).to_render())

    # -- jobs ----------------------------------------------------------------------
    async def create_job(request: Request):
        if request.headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
            return error(415, "unsupported_media_type", "send the body as JSON with Content-Type: application/json")
        service = await call(service_of, request)
        try:
            body = json.loads(await request.body() or b"null")
        except ValueError as exc:
            raise InvalidInput(f"the body is not valid JSON: {exc}") from None
        fields = params.job_body(body)
        client_env = request.headers.get("x-render-local-env")
        if client_env is not None:  # the CLI handing over a job: only if it would be the same job
            differing = await call(plane.env_differences, params.env_digests_of(client_env), token.encode())
            if differing:
                return error(409, "environment_differs", f"the control plane (pid {os.getpid()}) runs with a "
                             f"different {', '.join(differing)} in its environment")
        job = await call(plane.create_job, service.id, fields["start_command"], fields["plan_id"], fields["env"])
        return JSONResponse(job.to_render(), status_code=201,
                            headers={"X-Render-Local-Warnings": json.dumps(plane.warnings)})

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
        jobs = await call(plane.jobs.list, service.id, params.statuses_of(query), limit, before, where)
        now = datetime.now(timezone.utc)
        return JSONResponse([{"job": j.to_render(now), "cursor": j.id} for j in jobs])

    def job_of(request: Request):
        service = service_of(request)
        job = job_by_id(request.path_params["job_id"])
        if job.serviceId != service.id:
            raise NotFound(f"unknown job {job.id!r} for service {service.id}")
        return job

    async def get_job(request: Request):
        return JSONResponse((await call(job_of, request)).to_render())

    async def cancel_job(request: Request):
        job = await call(job_of, request)
        return JSONResponse((await call(plane.jobs.cancel, job.id)).to_render())

    # -- logs ----------------------------------------------------------------------
    def resources_of(query) -> list[str]:
        resources = query.getlist("resource")
        if not resources:
            raise InvalidInput("resource is required: a job or build id")
        resources = list(dict.fromkeys(resources))
        for resource in resources:
            if looks_like_id(resource, "bld"):
                plane.builds.get(resource)
            elif looks_like_id(resource, "job"):
                plane.jobs.get(resource)
            elif resource.startswith("bld-"):
                raise NotFound(f"unknown build {resource!r}")
            elif resource.startswith("job-"):
                raise NotFound(f"unknown job {resource!r}")
            else:
                raise NotFound(f"unknown resource {resource!r}: logs are kept per job (job-...) and build (bld-...)")
        return resources

    def log_entry(resource: str, line: LogLine) -> dict:
        level = "error" if line.stream == "stderr" else "info"
        kind = "build" if resource.startswith("bld-") else "app"
        return {
            "id": f"{resource}:{line.offset}",
            "message": line.message,
            "timestamp": line.timestamp,
            "labels": [{"name": "resource", "value": resource}, {"name": "instance", "value": resource},
                       {"name": "level", "value": level}, {"name": "type", "value": kind}],
        }

    async def query_logs(request: Request):
        query = request.query_params
        limit = params.limit_of(query)
        start, end = params.log_window(query)
        direction = params.one(query, "direction") or "backward"
        if direction not in ("backward", "forward"):
            raise InvalidInput(f"direction must be backward or forward, not {direction!r}")
        match = params.text_matcher(query.getlist("text"))
        levels = params.list_of(query, "level")
        types = params.list_of(query, "type")
        resources = await call(resources_of, query)

        def run():
            lines, _ = plane.logs.query(resources, start, end, direction == "backward", sys.maxsize, match)
            entries = [log_entry(r, line) for r, line in lines]
            return [e for e in entries if (not levels or _label(e, "level") in levels)
                    and (not types or _label(e, "type") in types)]

        entries, next_time = _page(await call(run), limit)
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
            resources = await call(resources_of, websocket.query_params)
        except RenderLocalError as exc:
            await websocket.send_denial_response(error(exc.status, exc.code, str(exc)))
            return
        await websocket.accept()
        closed = asyncio.ensure_future(_until_disconnect(websocket))
        offsets = {r: 0 for r in resources}
        try:
            while offsets and not closed.done():
                for resource in list(offsets):
                    done = await call(_finished, plane, resource)  # before reading: no last line is missed
                    lines = await call(lambda r=resource: list(plane.logs.read(r, offsets[r])))
                    for line in lines:
                        await websocket.send_json(log_entry(resource, line))
                        offsets[resource] = line.end
                    if done and not lines:
                        del offsets[resource]
                if offsets:
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
        codes = {404: "not_found", 405: "method_not_allowed", 415: "unsupported_media_type"}
        return error(exc.status_code, codes.get(exc.status_code, "error"), exc.detail or "error")

    async def any_error(request: Request, exc: Exception):
        return error(500, "internal_error", f"render-local failed: {type(exc).__name__}: {exc}")

    routes = [
        Route("/v1/services", api(list_services), methods=["GET"]),
        Route("/v1/services/{service_id}", api(get_service), methods=["GET"]),
        Route("/v1/services/{service_id}/jobs", api(list_jobs), methods=["GET"]),
        Route("/v1/services/{service_id}/jobs", api(create_job), methods=["POST"]),
        Route("/v1/services/{service_id}/jobs/{job_id}", api(get_job), methods=["GET"]),
        Route("/v1/services/{service_id}/jobs/{job_id}/cancel", api(cancel_job), methods=["POST"]),
        Route("/v1/logs", api(query_logs), methods=["GET"]),
        WebSocketRoute("/v1/logs/subscribe", subscribe_logs),
        Route("/v1/logs/subscribe", api(subscribe_without_websocket), methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"]),
    ]
    return Starlette(routes=routes, exception_handlers={HTTPException: http_error, Exception: any_error})


def _finished(plane, resource: str) -> bool:
    if resource.startswith("bld-"):
        return plane.builds.get(resource).status != "building"
    job = plane.jobs.get(resource)
    return job.final and job.logsComplete


def _label(entry: dict, name: str) -> str | None:
    return next((label["value"] for label in entry["labels"] if label["name"] == name), None)


def _page(entries: list[dict], limit: int) -> tuple[list[dict], str | None]:
    """The first ``limit`` entries (in the query's order) and where the next page starts.

    Lines captured together share one timestamp, and a page is resumed by time
    alone (``nextStartTime``/``nextEndTime``), so a page never splits such a
    group: it ends before the group, or, when the group alone is longer than
    ``limit``, holds all of it. The next page's bound is the timestamp of the
    first line not returned, inclusive: paging neither repeats nor skips a line.
    """
    if len(entries) <= limit:
        return entries, None
    cut = limit
    edge = entries[limit - 1]["timestamp"]
    if entries[limit]["timestamp"] == edge:
        cut = limit - 1
        while cut > 0 and entries[cut - 1]["timestamp"] == edge:
            cut -= 1
        if cut == 0:  # one group longer than a page: all of it
            cut = limit
            while cut < len(entries) and entries[cut]["timestamp"] == edge:
                cut += 1
    if cut == len(entries):
        return entries, None
    return entries[:cut], entries[cut]["timestamp"]


async def _until_disconnect(websocket: WebSocket) -> None:
    """Returns when the client closes (it sends nothing else we need)."""
    try:
        while (await websocket.receive())["type"] != "websocket.disconnect":
            pass
    except Exception:
        return
