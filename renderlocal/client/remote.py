"""A data dir's control plane, asked over its local API: what the CLI (always) and
the terminal app (when another process is the control plane) use.

Stdlib sockets only (``loopback_http``): a CLI call costs one loopback HTTP request, not
the Docker SDK's import. Errors come back as the core's own error kinds
(``error_from``), with the field they are about.
"""

from __future__ import annotations

import json
import os
import threading
import time
import urllib.parse
from pathlib import Path

from renderlocal.client.discovery import Endpoint
from renderlocal.client.loopback_http import Connection
from renderlocal.core.errors import ControlPlaneUnavailable, RenderLocalError, error_from
from renderlocal.core.job_limits import cancel_grace_seconds, job_timeout_seconds

PAGE = 100  # Render's largest page
EVENTS_WAIT_SECONDS = 25.0
# A kept-alive connection idle this long is opened anew: the server (api/server.py, KEEP_ALIVE_SECONDS)
# closes idle ones later than this, so a request never goes out on a socket it already closed.
REUSE_SECONDS = 20.0


class Unreachable(ControlPlaneUnavailable):
    """The control plane did not answer (it stopped, or never started listening)."""


def quote(text: str) -> str:
    return urllib.parse.quote(text, safe="")


DATA_SECONDS = 6 * 3600  # a restore or a dump of a big database: as long as it takes


class RemoteControlPlane:
    """Safe to share between threads (a connection each)."""

    def __init__(self, endpoint: Endpoint, token: str):
        self.endpoint = endpoint
        parts = urllib.parse.urlsplit(endpoint.url)
        self.host, self.port = parts.hostname, parts.port
        self.prefix = parts.path.rstrip("/")  # /v1
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        self._local = threading.local()
        self.started_process = None  # the Popen of a control plane this process started (connect)
        self.last_status: dict | None = None  # connect() asks once whether it answers: callers reuse that answer

    @property
    def connection(self) -> Connection:
        local = self._local
        if getattr(local, "connection", None) is not None and time.monotonic() - local.used > REUSE_SECONDS:
            local.connection.close()  # a POST on a socket the server closed would fail after it was sent
            local.connection = None
        if getattr(local, "connection", None) is None:
            local.connection = Connection(self.host, self.port, timeout=EVENTS_WAIT_SECONDS + 35)
        local.used = time.monotonic()
        return local.connection

    def reset_connection(self) -> None:
        """Drop this thread's connection (a request interrupted by Ctrl-C left its answer unread on it)."""
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            connection.close()
            self._local.connection = None

    def call(self, method: str, path: str, body=None, query: dict | None = None, timeout: float | None = None):
        """One request; ``path`` under /v1 unless it starts with /local. Raises the core's errors.
        ``timeout``: for requests that take long (a restore), instead of the usual read timeout."""
        url = (path if path.startswith("/local") else self.prefix + path)
        if query:
            url += "?" + urllib.parse.urlencode({k: v for k, v in query.items() if v is not None}, doseq=True)
        payload = None if body is None else json.dumps(body)
        # a long request (a restore) gets a connection of its own with its timeout
        connection = self.connection if timeout is None else Connection(self.host, self.port, timeout=timeout)
        try:
            for attempt in (1, 2):
                try:
                    connection.request(method, url, self.headers, payload)
                except OSError as exc:  # not sent (refused, or a keep-alive the server closed): nothing happened
                    connection.close()
                    if attempt == 2:
                        raise Unreachable(f"the control plane at {self.endpoint.url} does not answer ({exc})") from None
                    continue
                try:
                    status, raw = connection.response()
                    break
                except OSError as exc:
                    connection.close()
                    if method == "GET" and attempt == 1:
                        continue  # a read: asking again changes nothing
                    if method == "GET":
                        raise Unreachable(f"the control plane at {self.endpoint.url} stopped answering ({exc})") from None
                    raise RenderLocalError(
                        f"the control plane at {self.endpoint.url} took the request but did not answer "
                        f"({exc or type(exc).__name__}); it may have been done: check with render-local jobs list") from None
        finally:
            if timeout is not None:
                connection.close()
        if not raw and status < 400:
            return None  # 202 with no body: suspend and resume, as on Render
        try:
            data = json.loads(raw)
        except ValueError:
            raise Unreachable(f"{self.endpoint.url} is not render-local's API (status {status})") from None
        if status >= 400:
            if not isinstance(data, dict):
                raise RenderLocalError(f"the control plane answered {status}")
            raise error_from(data.get("id"), data.get("message") or f"the control plane answered {status}",
                             data.get("field"))
        return data

    def _pages(self, path: str, key: str, query: dict | None = None) -> list[dict]:
        """Every item of a Render-style list, page by page."""
        items, cursor = [], None
        while True:
            page = self.call("GET", path, query=(query or {}) | {"limit": PAGE, "cursor": cursor})
            items.extend(entry[key] for entry in page)
            if len(page) < PAGE:
                return items
            cursor = page[-1]["cursor"]

    # -- Render's routes ---------------------------------------------------------------
    def list_services(self) -> list[dict]:
        return self._pages("/services", "service")

    def get_service(self, ref: str) -> dict:
        return self.call("GET", f"/services/{quote(ref)}")

    def create_job(self, service: dict, start_command: str, plan_id: str | None = None, env=None) -> dict:
        """``service``: its JSON. Sends this process's values of the service's ``sync: false`` vars
        and its job timeout and cancel grace, so the job is the one this process means."""
        body: dict = {"startCommand": start_command}
        if plan_id is not None:
            body["planId"] = plan_id
        if env:
            body["envVars"] = [{"key": k, "value": v} for k, v in env.items()]
        keys = service.get("syncFalseEnvVarKeys") or []
        if keys:
            body["syncFalseEnvVars"] = [{"key": k, "value": os.environ[k]} for k in keys if k in os.environ]
        body["timeoutSeconds"] = job_timeout_seconds()  # this shell's, else the defaults: never the
        body["cancelGraceSeconds"] = cancel_grace_seconds()  # environment the control plane was started with
        return self.call("POST", f"/services/{quote(service['id'])}/jobs", body)

    def find_job(self, job_id: str) -> dict:
        """A job by its id alone."""
        return self.call("GET", f"/local/jobs/{quote(job_id)}")

    def get_job(self, service_id: str, job_id: str, wait: bool = False) -> dict:
        """The job; ``wait``: as it is once it has ended, or after EVENTS_WAIT_SECONDS (one long-poll)."""
        query = {"waitFor": "finished", "timeout": EVENTS_WAIT_SECONDS} if wait else None
        return self.call("GET", f"/services/{quote(service_id)}/jobs/{quote(job_id)}", query=query)

    def cancel_job(self, service_id: str, job_id: str) -> dict:
        return self.call("POST", f"/services/{quote(service_id)}/jobs/{quote(job_id)}/cancel")

    def list_jobs(self, service_id: str | None = None, statuses: list[str] | None = None) -> list[dict]:
        query = {"status": ",".join(statuses) if statuses else None}
        if service_id is None:
            return self._pages("/local/jobs", "job", query)
        return self._pages(f"/services/{quote(service_id)}/jobs", "job", query)

    def list_deploys(self, service_ref: str) -> list[dict]:
        return self._pages(f"/services/{quote(service_ref)}/deploys", "deploy")

    def create_deploy(self, service_ref: str) -> dict:
        return self.call("POST", f"/services/{quote(service_ref)}/deploys", {"clearCache": "do_not_clear"})

    def get_deploy(self, service_id: str, deploy_id: str) -> dict:
        return self.call("GET", f"/services/{quote(service_id)}/deploys/{quote(deploy_id)}")

    def cancel_deploy(self, service_id: str, deploy_id: str) -> dict:
        return self.call("POST", f"/services/{quote(service_id)}/deploys/{quote(deploy_id)}/cancel")

    def suspend(self, service_ref: str) -> None:
        self.call("POST", f"/services/{quote(service_ref)}/suspend")

    def resume(self, service_ref: str) -> None:
        self.call("POST", f"/services/{quote(service_ref)}/resume")

    def compare_plans(self, service_ref: str, start_command: str, plan_ids: list[str] | None = None,
                      sequential: bool = True, env: dict | None = None) -> dict:
        body = {"startCommand": start_command, "sequential": sequential,
                "envVars": [{"key": k, "value": v} for k, v in (env or {}).items()]}
        if plan_ids:
            body["planIds"] = plan_ids
        return self.call("POST", f"/local/services/{quote(service_ref)}/plan-comparisons", body)

    def get_comparison(self, comparison_id: str) -> dict:
        return self.call("GET", f"/local/plan-comparisons/{quote(comparison_id)}")

    # -- a database's data and rehearsals (render-local's own) -------------------------------
    def database_call(self, method: str, ref: str, what: str, body=None) -> dict:
        return self.call(method, f"/local/databases/{quote(ref)}/{what}", body, timeout=DATA_SECONDS)

    def rehearse(self, service_ref: str, start_command: str, plan_id: str | None, database: str | None) -> dict:
        body = {"startCommand": start_command, "planId": plan_id, "database": database}
        return self.call("POST", f"/local/services/{quote(service_ref)}/rehearsals",
                         {k: v for k, v in body.items() if v is not None}, timeout=DATA_SECONDS)

    def get_rehearsal(self, rehearsal_id: str) -> dict:
        return self.call("GET", f"/local/rehearsals/{quote(rehearsal_id)}")

    def decide_rehearsal(self, rehearsal_id: str, keep: bool) -> dict:
        return self.call("POST", f"/local/rehearsals/{quote(rehearsal_id)}/decision", {"keep": keep}, timeout=DATA_SECONDS)

    def billing_statement(self, month: str | None = None) -> dict:
        return self.call("GET", "/local/billing/statement", query={"month": month})

    def forecast(self, service_ref: str, month: str | None = None, duration: int | None = None,
                 per_day: int | None = None) -> dict:
        return self.call("GET", f"/local/services/{quote(service_ref)}/forecast",
                         query={"month": month, "duration": duration, "perDay": per_day})

    def list_databases(self) -> list[dict]:
        return self._pages("/postgres", "postgres")

    def list_key_values(self) -> list[dict]:
        return self._pages("/key-value", "keyValue")

    def get_data_store(self, ref: str) -> tuple[str, dict, dict]:
        """(``postgres`` or ``keyvalue``, its object, its connection info), by id or name."""
        from renderlocal.core.errors import NotFound

        for kind, path in (("postgres", "/postgres"), ("keyvalue", "/key-value")):
            try:
                found = self.call("GET", f"{path}/{quote(ref)}")
            except NotFound:
                continue
            return kind, found, self.call("GET", f"{path}/{quote(found['id'])}/connection-info")
        names = [d["name"] for d in self.list_databases()] + [k["name"] for k in self.list_key_values()]
        raise NotFound(f"unknown database or Key Value {ref!r}; known: {', '.join(names) or 'none'}")

    # -- render-local's own routes -------------------------------------------------------------
    def up(self, names: list[str] | None = None) -> dict:
        """``{"builds": [...], "deploys": [...], "dataStores": [ids]}``: what the control plane started."""
        return self.call("POST", "/local/up", {"services": names} if names else {})

    def down(self, volumes: bool = False) -> dict:
        return self.call("POST", "/local/down", {"volumes": volumes})

    def trigger_cron(self, service_ref: str) -> dict:
        return self.call("POST", f"/local/services/{quote(service_ref)}/cron-runs", {})

    def status(self) -> dict:
        self.last_status = self.call("GET", "/local/status")
        return self.last_status

    def events(self, after: int | None, epoch: str | None, timeout: float = EVENTS_WAIT_SECONDS) -> dict:
        """Changes after ``after`` (None: from now), waiting up to ``timeout`` for one."""
        return self.call("GET", "/local/events", query={"after": after, "epoch": epoch, "timeout": timeout})

    def create_build(self, service_ref: str) -> dict:
        return self.call("POST", f"/local/services/{quote(service_ref)}/builds", {})

    def list_builds(self, service_ref: str) -> list[dict]:
        return self.call("GET", f"/local/services/{quote(service_ref)}/builds")

    def get_build(self, build_id: str) -> dict:
        return self.call("GET", f"/local/builds/{quote(build_id)}")

    def cancel_build(self, build_id: str) -> dict:
        return self.call("POST", f"/local/builds/{quote(build_id)}/cancel", {})

    def running_container(self, ref: str) -> dict:
        """The running container of a job or a service instance: see ControlPlane.running_container."""
        return self.call("GET", f"/local/containers/{quote(ref)}")

    def resource_figures(self, ref: str | None = None):
        """Memory and CPU against the plan's: of one running job or instance (with its history), or of every one."""
        return self.call("GET", "/local/stats" + (f"/{quote(ref)}" if ref else ""))

    def set_watch(self, service_ref: str, on: bool) -> dict:
        return self.call("PUT", f"/local/services/{quote(service_ref)}/watch", {"watch": on})

    def log_stream(self) -> dict:
        return self.call("GET", "/local/log-stream")

    def set_log_stream(self, endpoint: str, tls: bool = False, token: str | None = None, insecure: bool = False,
                       max_queue_bytes: int | None = None) -> dict:
        body = {"endpoint": endpoint, "tls": tls, "insecure": insecure}
        if token is not None:
            body["token"] = token
        if max_queue_bytes is not None:
            body["maxQueueBytes"] = max_queue_bytes
        return self.call("PUT", "/local/log-stream", body)

    def clear_log_stream(self) -> dict:
        return self.call("DELETE", "/local/log-stream")

    def set_log_stream_service(self, service_ref: str, enabled: bool) -> dict:
        return self.call("PUT", f"/local/log-stream/services/{quote(service_ref)}", {"enabled": enabled})

    def stop_if_idle(self, reason: str | None = None) -> dict:
        """Stop a control plane a CLI started in the background, if nothing runs on it (``reason``: for its log)."""
        return self.call("POST", "/local/stop", {"reason": reason} if reason else {})

    # -- waiting -----------------------------------------------------------------------------
    def wait_until(self, check, after: int, epoch: str | None, deadline: float | None = None) -> None:
        """Call ``check(changes or None)`` after every batch of changes until it returns True
        (None: changes were missed, look at everything)."""
        if check(None):
            return
        while deadline is None or time.monotonic() < deadline:
            answer = self.events(after, epoch)
            after, epoch = answer["seq"], answer["epoch"]
            if answer["reset"]:
                if check(None):
                    return
            elif answer["changes"] and check(answer["changes"]):
                return


def load_token(data_dir: Path) -> str | None:
    from renderlocal.api.token import TOKEN_FILE

    try:
        return (Path(data_dir) / TOKEN_FILE).read_text().strip() or None
    except (OSError, UnicodeDecodeError):  # a damaged token file: serve replaces it
        return None
