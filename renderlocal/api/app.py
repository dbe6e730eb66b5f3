"""Render's REST API over the control plane: the same paths, bodies, codes and shapes.

Every handler validates, calls the core off the event loop, and shapes the
answer; none of them knows how jobs run.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from datetime import datetime, timezone

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from renderlocal.api import params
from renderlocal.api.openapi import openapi_document
from renderlocal.core.errors import InvalidInput, NotFound, RenderLocalError
from renderlocal.core.logstore import LogLine


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
                return error(401, "unauthorized", "missing or invalid token: send Authorization: Bearer <token> (see render-local token)")
            try:
                return await handler(request)
            except RenderLocalError as exc:
                return error(exc.status, exc.code, str(exc))

        return endpoint

    async def call(func, *args, **kwargs):
        return await run_in_threadpool(func, *args, **kwargs)

    def service_of(request: Request):
        return plane.get_service(request.path_params["service_id"])

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
        job = await call(plane.create_job, service.id, fields["start_command"], fields["plan_id"], fields["env"])
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
                before = await call(plane.jobs.get, cursor)
            except NotFound:
                raise InvalidInput(f"unknown cursor {cursor!r}") from None
            if before.serviceId != service.id:
                raise InvalidInput(f"cursor {cursor!r} is a job of another service")
        jobs = await call(plane.jobs.list, service.id, params.statuses_of(query), limit, before, where)
        now = datetime.now(timezone.utc)
        return JSONResponse([{"job": j.to_render(now), "cursor": j.id} for j in jobs])

    def job_of(request: Request):
        service = service_of(request)
        job = plane.jobs.get(request.path_params["job_id"])
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
        for resource in resources:
            if resource.startswith("bld-"):
                plane.builds.get(resource)
            else:
                plane.jobs.get(resource)
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
        match = params.text_matcher(params.one(query, "text"))
        levels = set(query.getlist("level"))
        types = set(query.getlist("type"))
        resources = await call(resources_of, query)

        def run():
            lines, more = plane.logs.query(resources, _ts(start), _ts(end), direction == "backward", 10**9, match)
            entries = [log_entry(r, line) for r, line in lines]
            entries = [e for e in entries if (not levels or e["labels"][2]["value"] in levels)
                       and (not types or e["labels"][3]["value"] in types)]
            return entries[:limit], len(entries) > limit

        entries, more = await call(run)
        next_start, next_end = _iso(start), _iso(end)
        if more and entries:
            edge = entries[-1]["timestamp"]
            if direction == "backward":
                next_end = edge  # the next page: older than the last line returned
            else:
                next_start = edge
        return JSONResponse({"hasMore": more, "nextStartTime": next_start, "nextEndTime": next_end, "logs": entries})

    async def subscribe_logs(websocket: WebSocket):
        if not authorized(websocket.headers):
            await websocket.close(code=4401, reason="missing or invalid token")
            return
        try:
            resources = await call(resources_of, websocket.query_params)
        except RenderLocalError as exc:
            await websocket.close(code=4400 if exc.status == 400 else 4404, reason=str(exc)[:120])
            return
        await websocket.accept()
        offsets = {r: 0 for r in resources}
        try:
            while offsets:
                for resource in list(offsets):
                    done = await call(_finished, plane, resource)
                    lines = await call(lambda r=resource: list(plane.logs.read(r, offsets[r])))
                    for line in lines:
                        await websocket.send_json(log_entry(resource, line))
                        offsets[resource] = line.end
                    if done and not lines:
                        del offsets[resource]
                await asyncio.sleep(0.2)
            await websocket.close(code=1000)
        except WebSocketDisconnect:
            return

    async def openapi(_request: Request):
        return JSONResponse(openapi_document())

    async def http_error(request: Request, exc: HTTPException):
        codes = {404: "not_found", 405: "method_not_allowed"}
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
        Route("/openapi.json", openapi, methods=["GET"]),
    ]
    return Starlette(routes=routes, exception_handlers={HTTPException: http_error, Exception: any_error})


def _finished(plane, resource: str) -> bool:
    if resource.startswith("bld-"):
        return plane.builds.get(resource).status != "building"
    job = plane.jobs.get(resource)
    return job.final and job.logsComplete


def _ts(moment: datetime) -> str:
    """A bound in the log files' 30-character timestamp form."""
    utc = moment.astimezone(timezone.utc)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond:06d}000Z"


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat(timespec="microseconds")
