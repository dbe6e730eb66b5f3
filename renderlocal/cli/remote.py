"""Handing jobs to the data dir's running control plane over its local API.

When ``serve`` or the terminal app runs on the same data dir and blueprint, the
CLI creates jobs through that process's API: the process that stays supervises
them (logs, timeouts, the recorded end), as a single control plane per data dir
should, and the CLI never imports the Docker SDK, a third of a short job's
time. Stdlib only, for the same reason.
"""

from __future__ import annotations

import http.client
import json
import time
import urllib.parse
from pathlib import Path

from renderlocal.api import discovery
from renderlocal.api.token import TOKEN_FILE
from renderlocal.core.envvars import parse_env_overrides
from renderlocal.core.errors import RenderLocalError

FINAL = ("succeeded", "failed", "canceled")
# Seconds: a short job is seen ending within 10 ms; after BRISK a long one is polled gently.
POLL_FIRST, POLL_MOST, BRISK = 0.01, 0.25, 2.0


class Unreachable(Exception):
    """The published control plane does not answer: the caller does the work itself."""


class ApiError(RenderLocalError):
    """The control plane refused the request; its message names the problem."""


class RemotePlane:
    def __init__(self, endpoint: discovery.Endpoint, token: str):
        parts = urllib.parse.urlsplit(endpoint.url)
        self.prefix = parts.path.rstrip("/")
        self.connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    @classmethod
    def find(cls, data_dir: Path, blueprint: Path) -> "RemotePlane | None":
        endpoint = discovery.find(data_dir, blueprint)
        if endpoint is None:
            return None
        try:
            token = (Path(data_dir) / TOKEN_FILE).read_text().strip()
        except OSError:
            return None
        return cls(endpoint, token) if token else None

    def call(self, method: str, path: str, body=None):
        for attempt in (1, 2):
            try:
                self.connection.request(method, self.prefix + path, headers=self.headers,
                                        body=None if body is None else json.dumps(body))
                response = self.connection.getresponse()
                raw = response.read()
                break
            except (OSError, http.client.HTTPException) as exc:
                self.connection.close()
                if method != "GET" or attempt == 2:  # a GET on a keep-alive the server closed: once more
                    raise Unreachable(str(exc)) from None
        try:
            data = json.loads(raw)
        except ValueError:
            raise Unreachable(f"not render-local's API (status {response.status})") from None
        if response.status >= 400:
            message = data.get("message") if isinstance(data, dict) else None
            raise ApiError(message or f"the control plane answered {response.status}")
        return data

    def create_job(self, service: str, start_command: str, plan_id: str | None, env: list[str]) -> dict:
        body: dict = {"startCommand": start_command}
        if plan_id is not None:
            body["planId"] = plan_id
        if env:
            body["envVars"] = [{"key": key, "value": value} for key, value in parse_env_overrides(env).items()]
        return self.call("POST", f"/services/{urllib.parse.quote(service, safe='')}/jobs", body)

    def get_job(self, job: dict) -> dict:
        return self.call("GET", f"/services/{job['serviceId']}/jobs/{job['id']}")

    def wait(self, job: dict) -> dict:
        """Poll until the job has ended: every POLL_FIRST for BRISK seconds, then slower."""
        pause, brisk_until = POLL_FIRST, time.monotonic() + BRISK
        while job["status"] not in FINAL:
            time.sleep(pause)
            if time.monotonic() > brisk_until:
                pause = min(POLL_MOST, pause * 1.5)
            job = self.get_job(job)
        return job
